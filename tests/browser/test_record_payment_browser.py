"""The operator records a payment through the admin's form in Persian, typing the month in Persian
digits, and finds it in the payments list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from fund.jalali import JalaliMonth, to_persian_digits
from fund.models import FundConfig, Payment, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MONTH = JalaliMonth(1405, 9)


@pytest.fixture
def in_1405_09(monkeypatch) -> None:
    moment = MONTH.starts_at() + dt.timedelta(days=9, hours=12)
    monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))


def test_the_operator_records_a_payment_typing_the_month_in_persian_digits(
    in_1405_09, new_page, log_in, screenshot
):
    FundConfig.load()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    User.objects.create_user("sara", first_name="Sara", last_name="Ahmadi", is_member=True)
    page = new_page(language="fa")
    log_in(page, "operator", "operator-pass-1404", next="/admin/fund/payment/add/")

    month = page.locator("input[name=month]")
    assert month.get_attribute("type") == "text"
    assert month.input_value() == "۱۴۰۵/۰۹"  # the current month by default, in the page's digits
    page.click("#id_member + .select2 .select2-selection")
    page.fill(".select2-search__field", "sara")
    page.click(".select2-results__option:has-text('sara')")
    month.fill("۱۴۰۵/۰۹")
    page.fill("input[name=fee]", "۲۵")
    page.fill("input[name=bitpin_id]", "bp-sara-1405-09")
    screenshot(page, "admin-record-payment-fa")
    with page.expect_navigation():
        page.click("button[name=_save]")

    payment = Payment.objects.get()
    assert (payment.member.username, payment.month, payment.fee) == ("sara", MONTH, Decimal("25"))
    assert (payment.source, payment.status) == (Payment.Source.ADMIN, Payment.Status.PENDING)
    assert payment.submitted_by.username == "operator"
    assert page.url.endswith("/admin/fund/payment/")
    row = page.locator("#result_list tbody tr", has_text="bp-sara-1405-09")
    assert row.count() == 1
    assert MONTH.label("fa") in row.inner_text()
    assert to_persian_digits("25") in row.inner_text()


def test_a_month_that_has_not_begun_is_refused_on_its_field_in_persian(in_1405_09, new_page, log_in):
    FundConfig.load()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    User.objects.create_user("sara", is_member=True)
    page = new_page(language="fa")
    log_in(page, "operator", "operator-pass-1404", next="/admin/fund/payment/add/")
    page.click("#id_member + .select2 .select2-selection")
    page.fill(".select2-search__field", "sara")
    page.click(".select2-results__option:has-text('sara')")
    page.locator("input[name=month]").fill("1405-10")
    page.fill("input[name=fee]", "25")
    page.fill("input[name=bitpin_id]", "bp-early")
    with page.expect_navigation():
        page.click("button[name=_save]")
    assert not Payment.objects.exists()
    assert "۱۴۰۵/۱۰" in page.locator(".errorlist").inner_text()  # the refusal in Persian digits
