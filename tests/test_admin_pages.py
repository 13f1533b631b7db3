"""Every back-office page opens for the operator, in Persian and English, with Jalali months and USDT."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from fund.models import FundConfig, Payment
from tests.conftest import THIS_MONTH

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def fund(history, member, other_member):
    history.pay_months(member, THIS_MONTH - 6, 6)
    history.pay_months(other_member, THIS_MONTH - 6, 5, fee=30)
    loan = history.loan(other_member, THIS_MONTH - 3, 100)
    history.pay(other_member, THIS_MONTH - 1, 30, 20, loan=loan, bitpin_id="repay-1")
    history.pay(member, THIS_MONTH, 20, status=Payment.Status.PENDING, bitpin_id="pending-1")
    return {"loan": loan}


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


PAGES = [
    "admin:index",
    "admin:fund_user_changelist",
    "admin:fund_user_add",
    "admin:fund_payment_changelist",
    "admin:fund_payment_add",
    "admin:fund_loan_changelist",
    "admin:fund_draw_changelist",
    "admin:django_q_failure_changelist",
    "admin:django_q_success_changelist",
    "admin:django_q_schedule_changelist",
    "admin:django_q_ormq_changelist",
]


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("language", ["fa", "en"])
def test_every_page_opens_for_the_operator(operator_client, fund, name, language):
    response = operator_client.get(reverse(name), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert f'lang="{language}"' in response.content.decode()


def test_persian_is_the_default_and_right_to_left(operator_client, fund):
    page = operator_client.get(reverse("admin:index")).content.decode()
    assert 'dir="rtl"' in page


def test_the_payment_list_shows_jalali_months_and_usdt(operator_client, fund):
    page = operator_client.get(reverse("admin:fund_payment_changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Azar 1404" in page  # 1404/09
    assert "pending-1" in page
    assert "30.00" in page


def test_detail_pages_open(operator_client, fund, member):
    payment = Payment.objects.get(bitpin_id="pending-1")
    for url in (
        reverse("admin:fund_user_change", args=(member.pk,)),
        reverse("admin:fund_payment_change", args=(payment.pk,)),
        reverse("admin:fund_loan_change", args=(fund["loan"].pk,)),
        reverse("admin:fund_payment_history", args=(payment.pk,)),
    ):
        response = operator_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 200, url


def test_the_fund_configuration_list_goes_straight_to_its_one_page(operator_client, config):
    response = operator_client.get(reverse("admin:fund_fundconfig_changelist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:fund_fundconfig_change", args=(FundConfig.SINGLETON_ID,))
    assert operator_client.get(response["Location"]).status_code == 200


def test_the_fund_configuration_cannot_be_added_or_deleted(operator_client, config):
    assert operator_client.get(reverse("admin:fund_fundconfig_add")).status_code == 403
    delete = reverse("admin:fund_fundconfig_delete", args=(config.pk,))
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert FundConfig.objects.count() == 1


def test_the_operator_edits_the_fund_configuration(operator_client, config):
    url = reverse("admin:fund_fundconfig_change", args=(config.pk,))
    data = {"name": "Our fund", "min_fee": "۲۵", "min_repayment": "30", "max_repayment_months": "12", "auto_draw": "on"}
    response = operator_client.post(url, data)
    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.name, config.min_fee, config.min_repayment, config.max_repayment_months, config.auto_draw) == (
        "Our fund", Decimal("25"), Decimal("30"), 12, True
    )  # fmt: skip


def test_a_zero_fee_in_the_configuration_is_refused_with_a_message(operator_client, config):
    url = reverse("admin:fund_fundconfig_change", args=(config.pk,))
    data = {"name": "Our fund", "min_fee": "0", "min_repayment": "20", "max_repayment_months": "24"}
    response = operator_client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "The amount must be more than zero." in response.content.decode()
    config.refresh_from_db()
    assert config.min_fee == Decimal("20")
