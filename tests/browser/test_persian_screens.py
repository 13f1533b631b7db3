"""Every admin page and member page in Persian, at desktop (1366 px) and phone (390 px) width:
screenshots in screenshots/persian-<page>-<width>.png for a person to look at, and no page wider
than the screen (a wide table scrolls inside its own box, with a visible scroll bar)."""

from __future__ import annotations

import pytest
from django_q.models import Failure, Schedule, Success

from fund.models import Draw, Loan, Payment, User
from tests.fixtures.browser import page_overflows
from tests.test_persian_pages import example_fund  # noqa: F401  (the crawl's fund)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def admin_pages() -> dict[str, str]:
    member = User.objects.filter(is_member=True).first()
    payment = Payment.objects.filter(status=Payment.Status.REJECTED).first()
    return {
        "dashboard": "/admin/",
        "members": "/admin/fund/user/",
        "member": f"/admin/fund/user/{member.pk}/change/",
        "member-statement": f"/admin/fund/user/{member.pk}/statement/",
        "payments": "/admin/fund/payment/",
        "payment": f"/admin/fund/payment/{payment.pk}/change/",
        "payment-history": f"/admin/fund/payment/{payment.pk}/history/",
        "payment-version": f"/admin/fund/payment/{payment.pk}/history/{payment.history.earliest().history_id}/",
        "record-payment": "/admin/fund/payment/add/",
        "payment-import": "/admin/fund/payment/import/",
        "loans": "/admin/fund/loan/",
        "loan": f"/admin/fund/loan/{Loan.objects.first().pk}/change/",
        "draws": "/admin/fund/draw/",
        "draw": f"/admin/fund/draw/{Draw.objects.first().pk}/change/",
        "configuration": "/admin/fund/fundconfig/1/change/",
        "groups": "/admin/auth/group/",
        "jobs-done": "/admin/django_q/success/",
        "job-done": f"/admin/django_q/success/{Success.objects.first().pk}/change/",
        "jobs-failed": "/admin/django_q/failure/",
        "job-failed": f"/admin/django_q/failure/{Failure.objects.first().pk}/change/",
        "schedules": "/admin/django_q/schedule/",
        "schedule": f"/admin/django_q/schedule/{Schedule.objects.first().pk}/change/",
        "queue": "/admin/django_q/ormq/",
    }


MEMBER_PAGES = {
    "home": "/",
    "statement": "/statement/",
    "draw-table": "/draw/table/",
    "ranking": "/ranking/",
    "not-found": "/no-such-page/",
}


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_persian_page_fits_the_screen(example_fund, new_page, log_in, screenshot, size):  # noqa: F811
    wide = []
    operator = new_page(**WIDTHS[size], language="fa")
    log_in(operator, "operator", "operator-pass-1404", next="/admin/")
    member = new_page(**WIDTHS[size], language="fa")
    log_in(member, "member1", "member-pass-1404")
    pages = [(operator, name, url) for name, url in admin_pages().items()]
    pages += [(member, name, url) for name, url in MEMBER_PAGES.items()]
    for page, name, url in pages:
        page.goto(url)
        assert page.locator("html").get_attribute("dir") == "rtl", url
        screenshot(page, f"persian-{name}-{size}")
        if page_overflows(page):
            wide.append(name)
    assert not wide, f"wider than the {size} screen: {wide}"


def test_the_dashboard_chart_writes_its_numbers_in_persian_digits(example_fund, new_page, log_in):  # noqa: F811
    page = new_page(language="fa")
    log_in(page, "operator", "operator-pass-1404", next="/admin/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas.chart'))")
    labels = page.evaluate(
        """() => { const chart = Chart.getChart(document.querySelector("canvas.chart"));
                   return Object.values(chart.scales).flatMap((scale) => scale.ticks.map((tick) => String(tick.label))); }"""
    )
    tooltip_value = page.evaluate(
        """() => Chart.getChart(document.querySelector("canvas.chart")).scales.y.getLabelForValue(1234.5)"""
    )
    assert labels and not [label for label in labels if any(c.isascii() and c.isdigit() for c in label)]
    assert any(any("۰" <= c <= "۹" for c in label) for label in labels)
    assert tooltip_value == "۱٬۲۳۴٫۵"  # how a tooltip writes a value


def test_an_english_dashboard_chart_keeps_latin_digits(example_fund, new_page, log_in):  # noqa: F811
    page = new_page(language="en")
    log_in(page, "operator", "operator-pass-1404", next="/admin/")
    page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas.chart'))")
    labels = page.evaluate(
        """() => Chart.getChart(document.querySelector("canvas.chart")).scales.y.ticks.map((tick) => String(tick.label))"""
    )
    assert labels and all(label.isascii() for label in labels)


def test_a_month_stays_on_one_line_in_a_list_on_a_phone(example_fund, new_page, log_in):  # noqa: F811
    page = new_page(**WIDTHS["phone"], language="fa")
    log_in(page, "operator", "operator-pass-1404", next="/admin/fund/payment/")
    lines = page.evaluate(
        """() => [...document.querySelectorAll("#result_list .field-month_display")].map((cell) => {
            const range = document.createRange(); range.selectNodeContents(cell);
            return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size; })"""
    )
    assert lines and set(lines) == {1}


def test_a_member_sees_the_score_column_of_the_draw_tables_on_a_phone(example_fund, new_page, log_in):  # noqa: F811
    page = new_page(**WIDTHS["phone"], language="fa")
    log_in(page, "member1", "member-pass-1404")
    assert page.locator("#my-factors").count()
    offscreen = page.evaluate(
        """() => [...document.querySelectorAll("table.report")].map((table) => {
            const score = table.querySelector("thead th:nth-child(3)").getBoundingClientRect();
            return score.left < 0 || score.right > window.innerWidth; })"""
    )
    assert offscreen and not any(offscreen)
