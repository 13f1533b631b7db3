"""The operator in a real browser, in Persian and in English: logs in, reads the dashboard's figures,
runs the monthly draw (the queued job is then run here, as the worker would), opens the draw and
reads the winner and the table. Screenshots of the dashboard, the payments list and the draw report
in Persian (right to left) at desktop and phone width go to screenshots/ for a person to check."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_q.brokers import get_broker

from fund import draw, tasks
from fund.health import queued_jobs
from fund.jalali import JalaliMonth, to_persian_digits
from fund.models import Draw, FundConfig, Payment, User
from tests.fixtures.browser import page_overflows
from tests.fixtures.history import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def fund(db) -> dict[str, User]:
    """Three members with four months of history, everyone paid this month, two asking for a loan;
    last month's draw gave Bob a loan he is repaying. One payment waits for Bitpin."""
    FundConfig.load()
    history = History()
    now = JalaliMonth.current()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    alice = history.member("alice", request=60, first_name="Alice", last_name="Karimi")
    bob = history.member("bob", request=50, first_name="Bob", last_name="Ahmadi")
    carol = history.member("carol", request=40, first_name="Carol", last_name="Rezaei")
    for person in (alice, bob, carol):
        history.pay_months(person, now - 4, 4, fee=25)
    last = draw.run_draw(month=now - 1, triggered_by="operator")
    history.paid_out(last.loan, now - 1)
    winner = Draw.objects.get().winner
    for person in (alice, bob, carol):
        repayment = 20 if person == winner else 0
        history.pay(person, now, 25, repayment)
    history.pay(carol, now - 5, 25, status=Payment.Status.PENDING, bitpin_id="bp-waiting")
    return {"alice": alice, "bob": bob, "carol": carol, "last_winner": winner}


def digits(text: str, language: str) -> str:
    return to_persian_digits(text) if language == "fa" else text


def run_queued_draw() -> None:
    """What the worker does with the job the admin queued."""
    [job] = queued_jobs()
    assert job.func == tasks.RUN_DRAW
    tasks.run_draw(*job.args)
    get_broker().purge_queue()


@pytest.mark.parametrize("language", ["fa", "en"])
def test_the_operator_reads_the_dashboard_runs_the_draw_and_reads_its_report(
    language, fund, new_page, log_in, screenshot
):
    page = new_page(**DESKTOP, language=language)
    log_in(page, "operator", "operator-pass-1404", next="/admin/")

    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == (language, "rtl" if language == "fa" else "ltr")
    paid = page.locator("#figure-paid").inner_text().strip()
    assert paid == "3 of 3" if language == "en" else paid.count("۳") == 2
    assert page.locator("#figure-pending").inner_text().strip() == digits("1", language)
    assert page.locator("#projected-ranking table tbody tr").count() == 3
    screenshot(page, f"admin-dashboard-{language}-desktop")

    page.click("a[href='/admin/fund/draw/run-monthly-draw/']")
    assert page.locator("#confirm-form").count() == 1  # the link only asks
    assert not queued_jobs()
    with page.expect_navigation():
        page.click("#confirm-form button[type=submit]")
    assert page.url.endswith("/admin/fund/draw/")
    # The message names this month, which has no draw in the list yet.
    assert JalaliMonth.current().label(language) in page.content()

    run_queued_draw()
    this_draw = Draw.objects.get(month=JalaliMonth.current())
    page.reload()
    with page.expect_navigation():
        page.click(f"a[href='/admin/fund/draw/{this_draw.pk}/change/']")

    winner = this_draw.winner
    assert winner is not None and winner != fund["last_winner"]
    assert page.locator("#draw-winner").inner_text().strip() == f"{winner.get_full_name()} ({winner.username})"
    rows = page.locator("#report-table tbody tr")
    assert rows.count() == 3
    assert winner.get_full_name() in page.locator("#report-table tr.winner").inner_text()
    screenshot(page, f"admin-draw-report-{language}-desktop")


def test_the_persian_pages_fit_a_phone_and_a_desktop(fund, new_page, log_in, screenshot):
    tasks.run_draw(str(JalaliMonth.current()), "operator")
    report = Draw.objects.get(month=JalaliMonth.current())
    pages = {
        "dashboard": "/admin/",
        "payments": "/admin/fund/payment/",
        "draw-report": f"/admin/fund/draw/{report.pk}/change/",
        "members": "/admin/fund/user/",
    }
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(**size, language="fa")
        log_in(page, "operator", "operator-pass-1404", next="/admin/")
        for name, url in pages.items():
            page.goto(url)
            assert page.locator("html").get_attribute("dir") == "rtl"
            screenshot(page, f"admin-{name}-fa-{size_name}")
            if name in {"dashboard", "payments", "draw-report"} and size_name == "phone":
                # Wide tables scroll inside their box; the page itself must not scroll sideways.
                assert not page_overflows(page), f"{name} is wider than a phone"
    assert Decimal(report.amount) > 0
