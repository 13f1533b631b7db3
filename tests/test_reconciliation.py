"""Reconciliation with the wallet: readings from Bitpin or typed, compared with the ledger (DESIGN.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fund import ledger, tasks
from fund.models import FundConfig, Payment, Payout, Reconciliation
from fund.reconciliation import ReadingRefused, latest_reading, take_reading
from tests.conftest import THIS_MONTH

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def fund(history, member, other_member, operator):
    """200 USDT of fees in, a loan of 50 paid out: the wallet should hold 150; 20 USDT still pending."""
    history.pay_months(member, THIS_MONTH - 5, 5)
    history.pay_months(other_member, THIS_MONTH - 5, 5)
    loan = history.loan(member, THIS_MONTH - 1, 50)
    Payout.objects.create(
        kind="loan", member=member, loan=loan, amount=Decimal(50), transfer_id="tr-1", status="verified"
    )
    history.pay(other_member, THIS_MONTH, status=Payment.Status.PENDING)
    return operator


def test_the_expected_wallet_balance_is_fees_plus_repayments_minus_payouts_and_refunds(fund):
    assert ledger.expected_wallet_balance() == Decimal(150)
    assert ledger.pending_inflows() == Decimal(20)


def test_a_reading_from_bitpin_that_matches_is_not_flagged(fake_bitpin, fund):
    fake_bitpin.set_wallet("150.004")
    reading = take_reading(by=fund)
    assert (reading.wallet_balance, reading.expected_balance, reading.difference) == (
        Decimal("150.004"),
        Decimal(150),
        Decimal("0.004"),
    )
    assert reading.source == "bitpin" and reading.taken_by == fund and not reading.flagged
    assert reading.pending_inflows == Decimal(20) and reading.tolerance == Decimal("0.01")
    assert fake_bitpin.requests[-1].path == "/v1/mch/wallets/USDT/"


def test_a_difference_beyond_the_tolerance_is_flagged(fake_bitpin, fund):
    fake_bitpin.set_wallet("170")
    reading = take_reading(by=fund)
    assert reading.difference == Decimal(20) and reading.flagged


def test_the_tolerance_comes_from_the_fund_configuration(fake_bitpin, fund):
    FundConfig.objects.update(reconciliation_tolerance=Decimal(25))
    fake_bitpin.set_wallet("170")
    assert not take_reading(by=fund).flagged


@pytest.mark.parametrize("kind", ["error500", "error429", "malformed", "slow", "drip", "unknown"])
def test_an_unreadable_wallet_stores_nothing_and_says_why(fake_bitpin, fund, kind):
    fake_bitpin.set_wallet(kind=kind)
    with pytest.raises(ReadingRefused) as caught:
        take_reading(by=fund)
    assert str(caught.value).startswith("The wallet could not be read: ")
    assert not Reconciliation.objects.exists()


def test_without_a_key_the_operator_types_the_balance(fund, settings):
    settings.BITPIN_API_KEY = ""
    with pytest.raises(ReadingRefused) as caught:
        take_reading(by=fund)
    assert str(caught.value) == "No Bitpin key is configured: type the wallet's balance as the exchange shows it."
    reading = take_reading(typed_balance=Decimal("149"), by=fund)
    assert (reading.source, reading.difference, reading.flagged) == ("typed", Decimal(-1), True)
    assert latest_reading() == reading


def test_a_typed_balance_must_be_an_amount(fund):
    with pytest.raises(ReadingRefused):
        take_reading(typed_balance=Decimal("-5"), by=fund)
    assert not Reconciliation.objects.exists()


def test_the_daily_job_reads_the_wallet_and_says_whether_it_matches(fake_bitpin, fund):
    fake_bitpin.set_wallet("150")
    assert tasks.reconcile_wallet() == "The wallet holds 150.00 USDT; the ledger says 150.00 USDT: they match."
    reading = Reconciliation.objects.get()
    assert reading.taken_by is None and reading.taken_by_job == "daily reconciliation"


def test_the_daily_job_without_a_key_takes_no_reading(fund, settings):
    settings.BITPIN_API_KEY = ""
    assert "No Bitpin key" in tasks.reconcile_wallet()
    assert not Reconciliation.objects.exists()
