"""A loan request the draw cannot take as it stands is kept, and the member is told what the draw
will do with it (README, "Rules we chose")."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from tests.conftest import THIS_MONTH

LOAN_REQUEST = reverse("member-loan-request")
pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def alice(client, member, config):
    client.force_login(member)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def test_a_request_above_the_balance_is_kept_and_the_member_is_told_the_draw_leaves_them_out(alice, member, history):
    history.pay_months(member, THIS_MONTH - 13, 13)  # balance 260
    page = alice.post(LOAN_REQUEST, {"amount": "300"}, follow=True).content.decode()
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("300")
    assert "Your loan request was saved." in page
    assert "more than your balance (260.00 USDT): the draw leaves you out" in page


def test_a_request_with_an_open_loan_is_kept_and_the_member_is_told_when_it_counts(alice, member, history):
    history.pay_months(member, THIS_MONTH - 3, 3)
    history.loan(member, THIS_MONTH - 1, 100)
    page = alice.post(LOAN_REQUEST, {"amount": "20"}, follow=True).content.decode()
    assert "While your loan is open the draw leaves you out" in page


def test_a_request_within_the_balance_and_no_loan_gets_only_the_confirmation(alice, member, history):
    history.pay_months(member, THIS_MONTH - 3, 3)
    page = alice.post(LOAN_REQUEST, {"amount": "50"}, follow=True).content.decode()
    assert "Your loan request was saved." in page
    assert "leaves you out" not in page
