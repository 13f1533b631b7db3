"""A member on a phone, in Persian and in English: logs in, pays, sees the payment pending and then
verified once the verification job ran, changes the loan request, reads the latest draw's table,
starts this month's draw and reads its result. Screenshots go to screenshots/ for a person to check."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fund import draw, tasks
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Payment, User
from tests.fixtures.browser import page_overflows
from tests.fixtures.history import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def fund(db) -> dict[str, User]:
    """Three members with three months of history; last month's draw gave Bob a loan; Bob and Carol
    have paid this month, so Alice's payment is the last one missing."""
    FundConfig.load()
    history = History()
    now = JalaliMonth.current()
    alice = history.member("alice", first_name="Alice", last_name="Karimi")
    bob = history.member("bob", request=50, first_name="Bob", last_name="Ahmadi")
    carol = history.member("carol", first_name="Carol", last_name="Rezaei")
    for person in (alice, bob, carol):
        history.pay_months(person, now - 3, 3)
    last = draw.run_draw(month=now - 1, triggered_by="operator")
    history.paid_out(last.loan, now - 1)  # the loan reached Bob last month
    history.pay(bob, now, 20, 20)  # repays the loan he won last month
    history.pay(carol, now, 20)
    return {"alice": alice, "bob": bob, "carol": carol}


def _switch_to_english(page) -> None:
    with page.expect_navigation():
        page.click("button[name=language][value=en]")


@pytest.mark.parametrize("language", ["fa", "en"])
def test_a_member_pays_sees_it_verified_changes_the_request_and_reads_the_draw_on_a_phone(
    language, fund, fake_bitpin, new_page, log_in, screenshot
):
    now = JalaliMonth.current()
    fake_bitpin.set(f"bp-alice-{language}", "completed", amount="20")
    page = new_page(**PHONE, language="fa")
    page.goto("/login/")
    if language == "en":
        _switch_to_english(page)  # the language switch on the page, as a member would use it
    screenshot(page, f"login-{language}-phone")
    log_in(page, "alice", "alice-pass-1404")

    html = page.locator("html")
    assert html.get_attribute("lang") == language
    assert html.get_attribute("dir") == ("rtl" if language == "fa" else "ltr")
    assert page.locator("#month-status.not_paid").is_visible()
    screenshot(page, f"member-{language}-phone-start")
    assert not page_overflows(page), "the member page is wider than a phone"

    # The latest draw (last month): every member's row, Bob the winner.
    assert page.locator("#latest-draw table.report tbody tr").count() == 3
    assert "Bob Ahmadi" in page.locator("#latest-draw dl").inner_text()
    assert page.locator("#latest-draw tr.mine").count() == 1
    assert page.locator("#projection tr.mine").count() == 1

    # Pay this month: the fee is prefilled with the minimum.
    assert page.input_value("#id_fee") == "20.00"
    page.fill("#id_bitpin_id", f"bp-alice-{language}")
    with page.expect_navigation():
        page.click("#payment-form button[type=submit]")
    assert page.locator("#month-status.pending").is_visible()
    assert page.locator(".messages .success").count() == 1
    assert not page.locator("#payment-form").count()
    screenshot(page, f"member-{language}-phone-pending", full_page=False)

    # Play the worker: the verification job asks the fake Bitpin server over HTTP.
    payment = Payment.objects.get(member=fund["alice"], month=now)
    tasks.verify_payment(payment.pk)
    assert fake_bitpin.requests_for(f"bp-alice-{language}")
    page.reload()
    assert page.locator("#month-status.verified").is_visible()

    # Change the loan request.
    page.fill("#id_amount", "60")
    with page.expect_navigation():
        page.click("#loan-request-form button[type=submit]")
    assert page.locator(".messages .success").count() == 1
    fund["alice"].refresh_from_db()
    assert fund["alice"].loan_request_amount == Decimal("60")
    expected = "۶۰٫۰۰" if language == "fa" else "60.00"
    assert expected in page.locator("#request .figure").inner_text()

    # Everyone has paid: the member may start this month's draw; the worker runs it.
    with page.expect_navigation():
        page.click("#run-draw-form button[type=submit]")
    assert page.locator(".messages .success").count() == 1
    tasks.run_draw(str(now), "alice")
    assert Draw.objects.get(month=now).winner == fund["alice"]
    page.reload()
    assert page.locator("#latest-draw tr.mine.winner").count() == 1
    assert page.locator("#run-draw-form").count() == 0
    assert not page_overflows(page)
    screenshot(page, f"member-{language}-phone")
    for section in ("this-month", "loan-request", "latest-draw", "projection", "payment-history"):
        screenshot(page, f"member-{language}-phone-{section}", selector=f"#{section}")


@pytest.mark.parametrize("language", ["fa", "en"])
def test_desktop_page_ranking_and_printable_statement(language, fund, new_page, log_in, screenshot):
    User.objects.filter(pk=fund["alice"].pk).update(loan_request_amount=Decimal("40"))
    page = new_page(**DESKTOP, language=language)
    log_in(page, "alice", "alice-pass-1404")
    assert page.locator("#payment-form").is_visible()
    assert page.locator("#projection tr.mine.winner").count() == 1  # Alice would win if the draw ran now
    assert ("۱" if language == "fa" else "1") in page.locator("#my-position").inner_text()
    screenshot(page, f"member-{language}-desktop")
    screenshot(page, f"member-{language}-desktop-top", full_page=False)
    screenshot(page, f"ranking-{language}-desktop", selector="#projection")

    with page.expect_navigation():
        page.click("#statement a[href='/statement/']")
    assert page.locator("#statement-table tbody tr").count() == 3  # three verified fees
    screenshot(page, f"statement-{language}-desktop")
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()  # the print stylesheet hides the navigation
    screenshot(page, f"statement-{language}-print")

    phone = new_page(**PHONE, language=language)
    log_in(phone, "alice", "alice-pass-1404", next="/statement/")
    assert not page_overflows(phone)
    screenshot(phone, f"statement-{language}-phone")
