"""Loan payouts and refunds: recorded by the operator, checked with Bitpin (the fake server), decided once.

DESIGN.md, "Loan" (states), "Loan payout", "A member leaving".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from fund import ledger, statement, tasks, verification
from fund.draw import run_draw
from fund.models import Loan, Payment, Payout, User
from fund.payments import PaymentRefused, submit_payment
from fund.payouts import (
    PayoutRefused,
    leaving_quote,
    mark_payout_verified,
    record_leaving,
    record_loan_payout,
    reject_payout,
    requeue_verification,
    verify_payout_by_hand,
    verify_payout_with_bitpin,
)
from tests.conftest import THIS_MONTH

pytestmark = pytest.mark.usefixtures("today_in_this_month")
AWAITING, ACTIVE, SETTLED = Loan.State.AWAITING_PAYOUT, Loan.State.ACTIVE, Loan.State.SETTLED


@pytest.fixture
def granted(history, member):
    """Alice won 300 USDT in this month's draw: her loan awaits its payout."""
    history.pay_months(member, THIS_MONTH - 20, 21)  # 420 USDT of fees: the fund can lend 300
    return history.loan(member, THIS_MONTH, 300, state=AWAITING)


def reload(obj):
    return type(obj).objects.get(pk=obj.pk)


def refused(call, *args, **kwargs) -> str:
    with pytest.raises(PayoutRefused) as caught:
        call(*args, **kwargs)
    return caught.value.message


# --- loan states ----------------------------------------------------------------------------------


def test_the_draw_grants_a_loan_awaiting_payout_counted_as_lent(history, member, other_member):
    for person in (member, other_member):
        history.pay_months(person, THIS_MONTH - 5, 6)
    User.objects.filter(pk=member.pk).update(loan_request_amount=100)
    cash_before = ledger.fund_totals().cash
    draw = run_draw(month=THIS_MONTH, triggered_by="test")
    assert draw.loan.state == AWAITING
    totals = ledger.fund_totals()
    assert totals.cash == cash_before - 100  # no longer there to lend
    assert totals.expected_wallet_balance == cash_before  # but still in the wallet


def test_a_member_cannot_hold_a_loan_awaiting_payout_and_an_active_one(history, member):
    from django.db import IntegrityError, transaction

    history.loan(member, THIS_MONTH - 3, 100)
    with pytest.raises(IntegrityError), transaction.atomic():
        history.loan(member, THIS_MONTH, 100, state=AWAITING)


def test_the_draw_skips_a_member_awaiting_a_payout_and_one_who_is_leaving(history, member, other_member):
    dave = history.member("dave", request=20)
    for person in (member, other_member, dave):
        history.pay_months(person, THIS_MONTH - 5, 6)
    history.loan(member, THIS_MONTH - 1, 50, state=AWAITING)
    User.objects.filter(pk=member.pk).update(loan_request_amount=60)
    User.objects.filter(pk=other_member.pk).update(loan_request_amount=60, leaving_since=timezone.now())
    draw = run_draw(month=THIS_MONTH, triggered_by="test")
    reasons = {row["username"]: row["reason"] for row in draw.report["rows"]}
    assert reasons == {"alice": "open_loan", "bob": "leaving", "dave": None}
    assert draw.winner == dave


# --- recording a loan payout -------------------------------------------------------------------------


def test_recording_a_payout_stores_it_pending_and_queues_its_check(
    granted, operator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        payout = record_loan_payout(loan=granted, transfer_id=" tr-1 ", amount=Decimal("300"), by=operator)
    assert (payout.status, payout.kind, payout.transfer_id, payout.amount) == ("pending", "loan", "tr-1", Decimal(300))
    assert payout.member == granted.member and payout.recorded_by == operator
    assert len(callbacks) == 1
    assert reload(granted).state == AWAITING


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": Decimal("299.99")}, "The amount sent must be the loan's amount, 300.00 USDT."),
        ({"transfer_id": ""}, "Enter the Bitpin transfer id."),
        ({"transfer_id": "tr 1"}, "The Bitpin transfer id must be one word of visible characters, at most 100 long."),
        (
            {"transfer_id": "tr\u200b1"},
            "The Bitpin transfer id must be one word of visible characters, at most 100 long.",
        ),
        ({"amount": Decimal("-1")}, None),
    ],
)
def test_a_payout_with_a_wrong_amount_or_id_is_refused_in_words(granted, operator, fields, message):
    values = {"loan": granted, "transfer_id": "tr-1", "amount": Decimal("300"), "by": operator, **fields}
    text = refused(record_loan_payout, **values)
    if message:
        assert text == message
    assert not Payout.objects.exists()


def test_an_active_loan_cannot_be_paid_out_again(history, member, operator):
    loan = history.loan(member, THIS_MONTH - 2, 100)
    assert refused(record_loan_payout, loan=loan, transfer_id="tr-1", amount=Decimal(100), by=operator) == (
        "This loan is active: only a loan awaiting payout can be paid out."
    )


def test_a_second_payout_for_the_same_loan_is_refused(granted, operator):
    record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    message = refused(record_loan_payout, loan=granted, transfer_id="tr-2", amount=Decimal(300), by=operator)
    assert message == "A payout is already recorded for this loan; it is checked with Bitpin."


def test_a_transfer_id_is_used_once(granted, history, other_member, operator):
    record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    other = history.loan(other_member, THIS_MONTH - 1, 50, state=AWAITING)
    message = refused(record_loan_payout, loan=other, transfer_id="tr-1", amount=Decimal(50), by=operator)
    assert message == "This Bitpin transfer id has already been recorded for another payout."


# --- Bitpin decides ---------------------------------------------------------------------------------


def test_a_completed_transfer_verifies_the_payout_and_activates_the_loan(fake_bitpin, granted, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    fake_bitpin.set_transfer("tr-1", "completed", amount="300")
    verify_payout_with_bitpin(payout_id=payout.pk)
    payout, loan = reload(payout), reload(granted)
    assert payout.status == "verified" and payout.note == "Checked with Bitpin: 300.00 USDT sent, completed."
    assert (loan.state, loan.paid_out_month) == (ACTIVE, THIS_MONTH)
    assert fake_bitpin.requests_for("tr-1", "transfers")[0].path == "/v1/mch/transfers/tr-1/"
    totals = ledger.fund_totals()
    assert totals.expected_wallet_balance == totals.fees + totals.repayments - Decimal(300)


@pytest.mark.parametrize(
    ("kind", "amount", "note"),
    [
        ("unknown", None, "Bitpin does not know the transfer id “tr-1”."),
        ("failed", "300", "Bitpin reports the transfer as “failed”, not completed."),
        ("wrong_currency", "300", "Bitpin reports the transfer in BTC, not USDT."),
        ("completed", "299", "Bitpin reports a transfer of 299.00 USDT, not the 300.00 USDT recorded."),
        ("completed", "301", "Bitpin reports a transfer of 301.00 USDT, not the 300.00 USDT recorded."),
    ],
)
def test_a_transfer_bitpin_refuses_rejects_the_payout_and_the_loan_keeps_waiting(
    fake_bitpin, granted, operator, kind, amount, note
):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    fake_bitpin.set_transfer("tr-1", kind, amount=amount)
    verify_payout_with_bitpin(payout_id=payout.pk)
    assert (reload(payout).status, reload(payout).note) == ("rejected", note)
    assert reload(granted).state == AWAITING
    # The operator records it again, with the right transfer.
    again = record_loan_payout(loan=granted, transfer_id="tr-2", amount=Decimal(300), by=operator)
    assert again.status == "pending"


@pytest.mark.parametrize("kind", ["pending", "error500", "error429", "malformed", "slow", "drip"])
def test_a_passing_failure_leaves_the_payout_pending_and_the_sweep_verifies_it_later(
    fake_bitpin, granted, operator, kind
):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    fake_bitpin.transfer_sequence("tr-1", [kind, {"kind": "completed", "amount": "300"}])
    verify_payout_with_bitpin(payout_id=payout.pk)
    waiting = reload(payout)
    assert waiting.status == "pending" and waiting.attempts == 1 and waiting.last_error
    assert waiting.next_attempt_at == timezone.now() + verification.retry_delay(1)
    Payout.objects.filter(pk=payout.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert verification.sweep() == 1
    assert reload(payout).status == "verified"
    assert reload(granted).state == ACTIVE


def test_the_one_sweep_retries_payments_and_payouts_together(fake_bitpin, granted, history, other_member, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    payment = history.pay(other_member, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-1")
    past = timezone.now() - dt.timedelta(seconds=1)
    Payout.objects.update(next_attempt_at=past)
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=past)
    fake_bitpin.set_transfer("tr-1", "completed", amount="300")
    fake_bitpin.set("bp-1", "completed", amount="20")
    assert tasks.sweep_pending_payments() == 2
    assert reload(payout).status == reload(payment).status == "verified"


def test_without_a_key_the_payout_is_verified_at_once_without_asking(fake_bitpin, granted, operator, settings):
    settings.BITPIN_API_KEY = ""
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    verify_payout_with_bitpin(payout_id=payout.pk)
    assert (reload(payout).status, reload(payout).note) == ("verified", "not checked: no Bitpin key configured")
    assert not fake_bitpin.requests


# --- by hand ----------------------------------------------------------------------------------------------


def test_the_operator_verifies_a_payout_by_hand_with_a_note(granted, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    verify_payout_by_hand(payout=payout, by=operator, note="seen in the exchange")
    payout = reload(payout)
    assert (payout.status, payout.verified_by, payout.note) == ("verified", operator, "seen in the exchange")
    assert reload(granted).state == ACTIVE


def test_a_manual_decision_needs_a_note_and_is_taken_once(granted, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    assert refused(reject_payout, payout=payout, by=operator, note="  ") == "Write a note saying why."
    reject_payout(payout=payout, by=operator, note="wrong wallet")
    message = refused(verify_payout_by_hand, payout=payout, by=operator, note="ok after all")
    assert message == "This payout is already rejected; only pending payouts can be verified or rejected."
    assert reload(granted).state == AWAITING


def test_bitpin_answering_after_a_manual_decision_changes_nothing(fake_bitpin, granted, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    reject_payout(payout=payout, by=operator, note="sent to the wrong address")
    fake_bitpin.set_transfer("tr-1", "completed", amount="300")
    assert "already rejected" in verify_payout_with_bitpin(payout_id=payout.pk)
    assert reload(granted).state == AWAITING
    assert not fake_bitpin.requests


def test_requeue_queues_only_pending_payouts(granted, operator, django_capture_on_commit_callbacks):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    with django_capture_on_commit_callbacks() as callbacks:
        assert requeue_verification(payout_ids=[payout.pk, 999]) == 1
    assert len(callbacks) == 1


# --- repayments follow the payout ------------------------------------------------------------------------


def test_repayments_are_refused_before_the_payout_is_verified_and_due_the_month_after(granted, operator, monkeypatch):
    member = granted.member
    next_month = THIS_MONTH.next()
    later = next_month.starts_at() + dt.timedelta(days=3)
    monkeypatch.setattr(timezone, "now", lambda: later.astimezone(dt.UTC))
    with pytest.raises(PaymentRefused) as caught:
        submit_payment(member=member, month=next_month, fee=Decimal(20), repayment=Decimal(20), bitpin_id="bp-a")
    assert caught.value.message == "There is no active loan to repay: leave the repayment at 0."
    # Paid out in the next month: the first repayment is due the month after that.
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    mark_payout_verified(payout=payout, by=operator, note="seen")
    assert reload(granted).paid_out_month == next_month
    with pytest.raises(PaymentRefused):
        submit_payment(member=member, month=next_month, fee=Decimal(20), repayment=Decimal(20), bitpin_id="bp-b")
    after = next_month.next()
    moment = after.starts_at() + dt.timedelta(days=3)
    monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))
    payment = submit_payment(
        member=member, month=after, fee=Decimal(20), repayment=granted.monthly_minimum, bitpin_id="bp-c"
    )
    assert payment.loan == granted and payment.repayment == granted.monthly_minimum


# --- a member leaving ------------------------------------------------------------------------------------


@pytest.fixture
def saver(history):
    """Sara saved 120 USDT over six months; the fund holds more from others."""
    sara = history.member("sara")
    history.pay_months(sara, THIS_MONTH - 6, 6)
    history.pay_months(history.member("omid"), THIS_MONTH - 6, 6)
    return sara


def test_leaving_is_quoted_with_the_refund_and_whether_fund_cash_covers_it(saver):
    quote = leaving_quote(saver)
    assert (quote.refund, quote.fund_cash, quote.covered, quote.refusal) == (Decimal(120), Decimal(240), True, "")


def test_leaving_is_refused_with_an_open_loan(history, saver, operator):
    history.loan(saver, THIS_MONTH - 1, 100, state=AWAITING)
    message = refused(record_leaving, member=saver, transfer_id="tr-9", by=operator)
    assert message == "sara has an open loan (granted 1404/08): they can leave once it is repaid."
    assert reload(saver).leaving_since is None and not Payout.objects.exists()


def test_leaving_is_refused_with_an_active_loan_too(history, saver, operator):
    history.loan(saver, THIS_MONTH - 3, 100)
    assert "has an open loan" in refused(record_leaving, member=saver, transfer_id="tr-9", by=operator)


def test_leaving_is_refused_when_the_fund_cash_is_short_and_says_how_much(history, saver, operator):
    history.loan(history.member("borrower"), THIS_MONTH - 1, 200)  # cash 240 − 200 = 40
    message = refused(record_leaving, member=saver, transfer_id="tr-9", by=operator)
    assert message == ("The refund of 120.00 USDT is more than the fund cash of 40.00 USDT: 80.00 USDT is missing.")
    assert leaving_quote(saver).missing == Decimal(80)
    assert reload(saver).leaving_since is None


def test_leaving_is_refused_while_a_payment_waits_for_bitpin(history, saver, operator):
    history.pay(saver, THIS_MONTH, status=Payment.Status.PENDING)
    assert "waiting for verification" in refused(record_leaving, member=saver, transfer_id="tr-9", by=operator)


def test_a_leaving_member_is_out_of_draws_cannot_pay_and_is_not_unpaid(saver, operator):
    User.objects.filter(pk=saver.pk).update(loan_request_amount=50)
    refund = record_leaving(member=saver, transfer_id="tr-9", by=operator)
    saver = reload(saver)
    assert saver.is_leaving and saver.is_active and saver.loan_request_amount == 0
    assert (refund.kind, refund.amount, refund.status) == ("refund", Decimal(120), "pending")
    assert saver not in ledger.unpaid_members(THIS_MONTH)
    assert ledger.paid_count(THIS_MONTH).total == 1
    with pytest.raises(PaymentRefused) as caught:
        submit_payment(member=saver, month=THIS_MONTH, fee=Decimal(20), bitpin_id="bp-late")
    assert caught.value.message == "sara is leaving the fund and pays nothing more."
    assert ledger.fund_totals().cash == Decimal(120)  # the refund is promised: not to be lent
    assert ledger.balance_of(saver) == Decimal(120)  # until it is verified


def test_the_refund_verified_through_bitpin_makes_the_member_inactive_with_balance_zero(fake_bitpin, saver, operator):
    before = ledger.fund_totals()
    refund = record_leaving(member=saver, transfer_id="tr-9", by=operator)
    fake_bitpin.set_transfer("tr-9", "completed", amount="120")
    verify_payout_with_bitpin(payout_id=refund.pk)
    saver = reload(saver)
    assert reload(refund).status == "verified"
    assert not saver.is_active and saver.left_at is not None
    assert ledger.balance_of(saver) == 0
    after = ledger.fund_totals()
    assert after.cash == before.cash - 120
    assert after.expected_wallet_balance == before.expected_wallet_balance - 120
    assert ledger.monthly_series(THIS_MONTH - 7, THIS_MONTH)[-1].cash_at_end == after.cash
    rows = statement.statement_rows(saver)
    assert (rows[-1].kind, rows[-1].amount, rows[-1].balance) == ("refund", Decimal(120), Decimal(0))
    assert Payment.objects.filter(member=saver).count() == 6  # history stays


def test_a_rejected_refund_keeps_the_member_leaving_until_recorded_again(fake_bitpin, saver, operator):
    refund = record_leaving(member=saver, transfer_id="tr-9", by=operator)
    fake_bitpin.set_transfer("tr-9", "completed", amount="100")
    verify_payout_with_bitpin(payout_id=refund.pk)
    assert reload(refund).status == "rejected"
    assert reload(saver).is_leaving and ledger.fund_totals().cash == Decimal(240)
    again = record_leaving(member=saver, transfer_id="tr-10", by=operator)
    assert again.amount == Decimal(120) and again.status == "pending"
    message = refused(record_leaving, member=saver, transfer_id="tr-11", by=operator)
    assert message == "sara is already leaving; their refund is recorded and checked with Bitpin."


def test_a_member_with_nothing_to_refund_leaves_at_once(history, operator):
    newcomer = history.member("newcomer")
    assert record_leaving(member=newcomer, transfer_id="", by=operator) is None
    assert not reload(newcomer).is_active and not Payout.objects.exists()
