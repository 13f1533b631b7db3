"""Submitting payments (DESIGN.md, "Payment", rules 1–7), repayments and settling loans."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import tablib
from django.utils import timezone, translation

from fund import ledger, tasks
from fund.health import queued_jobs
from fund.imports import run_import
from fund.jalali import JalaliMonth
from fund.loans import LoanRefused, recompute_states, settle_if_repaid
from fund.models import Loan, Payment, User
from fund.money import quantize
from fund.payments import (
    PaymentRefused,
    change_loan_request,
    mark_verified,
    reject_payment,
    repayment_due,
    submit_payment,
    verify_by_hand,
    verify_with_bitpin,
)
from tests.conftest import THIS_MONTH


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


pytestmark = pytest.mark.usefixtures("today_in_this_month")


def pay(member: User, **fields) -> Payment:
    fields.setdefault("month", THIS_MONTH)
    fields.setdefault("fee", Decimal("20"))
    fields.setdefault("bitpin_id", f"bp-{member.username}-{fields['month']}")
    return submit_payment(member=member, **fields)


def refusal(**fields) -> PaymentRefused:
    with pytest.raises(PaymentRefused) as caught:
        pay(**fields)
    return caught.value


# --- storing ------------------------------------------------------------------------------------


def test_it_stores_a_member_payment_as_pending(config, member):
    payment = pay(member, fee=Decimal("25"), bitpin_id="  bp-77 ")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert (payment.month, payment.fee, payment.repayment, payment.bitpin_id) == (
        THIS_MONTH,
        Decimal("25"),
        Decimal("0"),
        "bp-77",
    )
    assert payment.source == Payment.Source.MEMBER
    assert payment.loan is None


@pytest.mark.redis
def test_it_queues_verification_once_the_transaction_commits(config, member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payment = pay(member)
    assert not queued_jobs()
    for callback in callbacks:
        callback()
    # The verification job (the "payment received" notification's delivery job is queued beside it).
    [queued] = [job for job in queued_jobs() if job.func == tasks.VERIFY_PAYMENT]
    assert queued.args == (payment.pk,)


def test_a_refused_payment_queues_nothing(config, member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(PaymentRefused):
        pay(member, fee=Decimal("1"))
    assert callbacks == []


def test_nothing_counts_until_the_payment_is_verified(config, member):
    payment = pay(member, fee=Decimal("30"))
    assert ledger.balance_of(member) == 0
    assert ledger.fund_totals().cash == 0
    assert ledger.paid_count(THIS_MONTH).paid == 0
    mark_verified(payment=payment, by=None, note="checked")
    assert ledger.balance_of(member) == Decimal("30")
    assert ledger.paid_count(THIS_MONTH).paid == 1


# --- rule 1: the month ---------------------------------------------------------------------------


@pytest.mark.parametrize("month", [THIS_MONTH.previous(), THIS_MONTH.next()])
def test_a_member_pays_for_the_current_month_only(config, member, month):
    error = refusal(member=member, month=month)
    assert error.message == f"You can only pay for the current month, 1404/09, not {month}."
    assert error.field == "month"
    assert not Payment.objects.exists()


def test_the_operator_may_record_a_past_month(config, member, operator):
    payment = pay(member, month=JalaliMonth(1403, 1), source=Payment.Source.ADMIN, submitted_by=operator)
    assert payment.month == JalaliMonth(1403, 1)
    assert payment.source == Payment.Source.ADMIN
    assert payment.submitted_by == operator
    assert payment.status == Payment.Status.PENDING


def test_the_operator_may_not_record_a_future_month(config, member, operator):
    error = refusal(member=member, month=THIS_MONTH.next(), source=Payment.Source.ADMIN)
    assert error.message == "1404/10 has not started yet: payments can be recorded up to 1404/09."
    assert error.field == "month"


def test_the_current_month_follows_tehran_time(config, member, monkeypatch):
    # 20:45 UTC on the last day of 1404/08 is already 1404/09 in Tehran (UTC+3:30).
    first_moment = THIS_MONTH.starts_at()
    monkeypatch.setattr(timezone, "now", lambda: first_moment.astimezone(dt.UTC) + dt.timedelta(minutes=15))
    assert pay(member).month == THIS_MONTH


# --- who may pay ----------------------------------------------------------------------------------


def test_someone_who_is_not_a_member_cannot_pay(config, outsider):
    error = refusal(member=outsider)
    assert error.message == "carol is not an active member of the fund."


def test_a_member_who_left_cannot_pay(config, member):
    member.is_active = False
    member.save()
    assert refusal(member=member).message == "alice is not an active member of the fund."


# --- rule 2: one payment per member and month ------------------------------------------------------


def test_a_second_payment_for_a_verified_month_is_refused(config, member):
    mark_verified(payment=pay(member), by=None, note="ok")
    error = refusal(member=member, bitpin_id="bp-other")
    assert error.message == "You have already paid for 1404/09."
    assert error.field == "month"
    assert Payment.objects.count() == 1


def test_a_second_payment_while_the_first_is_pending_is_refused(config, member):
    pay(member)
    error = refusal(member=member, bitpin_id="bp-other")
    assert error.message == "You have already paid for 1404/09; the payment is waiting for verification."


def test_the_operator_is_told_who_has_already_paid(config, member, operator):
    pay(member)
    error = refusal(member=member, bitpin_id="bp-other", source=Payment.Source.ADMIN)
    assert error.message == "alice has already paid for 1404/09."


def test_a_rejected_payment_can_be_submitted_again(config, member):
    first = pay(member, bitpin_id="bp-1")
    reject_payment(payment=first, by=None, note="Bitpin does not know it")
    second = pay(member, bitpin_id="bp-2")
    assert second.status == Payment.Status.PENDING
    assert Payment.objects.filter(member=member, month=THIS_MONTH).count() == 2


def test_another_member_may_pay_the_same_month(config, member, other_member):
    pay(member)
    pay(other_member)
    assert Payment.objects.filter(month=THIS_MONTH).count() == 2


# --- rule 3: the membership fee ------------------------------------------------------------------------


def test_the_fee_must_reach_the_configured_minimum(config, member):
    error = refusal(member=member, fee=Decimal("19.99999999"))
    assert error.message == "The membership fee must be at least 20.00 USDT."
    assert error.field == "fee"


def test_the_minimum_fee_comes_from_the_configuration(config, member):
    config.min_fee = Decimal("50")
    config.save()
    assert refusal(member=member, fee=Decimal("49")).message == "The membership fee must be at least 50.00 USDT."
    assert pay(member, fee=Decimal("50")).fee == Decimal("50")


@pytest.mark.parametrize(
    ("fee", "message"),
    [
        (Decimal("NaN"), "The amount must be a finite number."),
        (Decimal("-20"), "The amount cannot be negative."),
        (Decimal("20.123456789"), "Use at most 8 decimal places."),
        ("twenty", "Enter an amount."),
    ],
)
def test_a_bad_fee_gets_a_clear_message_and_writes_nothing(config, member, fee, message):
    error = refusal(member=member, fee=fee)
    assert (error.message, error.field) == (message, "fee")
    assert not Payment.objects.exists()


# --- rule 4: repayments ------------------------------------------------------------------------------------


@pytest.fixture
def borrower(history, member):
    """Alice borrowed 480 USDT in 1404/05: 24 months → 20 USDT a month."""
    history.loan(member, "1404/05", 480)
    return member


def test_a_repayment_is_required_with_an_active_loan(borrower):
    error = refusal(member=borrower)
    assert error.message == "The repayment must be between 20.00 and 480.00 USDT."
    assert error.field == "repayment"


def test_a_repayment_below_the_monthly_minimum_is_refused(borrower):
    assert refusal(member=borrower, repayment=Decimal("19.99")).field == "repayment"


def test_a_repayment_above_what_is_owed_is_refused(borrower):
    error = refusal(member=borrower, repayment=Decimal("480.01"))
    assert error.message == "The repayment must be between 20.00 and 480.00 USDT."


def test_a_repayment_within_bounds_is_tied_to_the_active_loan(borrower):
    loan = Loan.objects.get(member=borrower)
    payment = pay(borrower, repayment=Decimal("100"))
    assert payment.loan == loan
    assert payment.total == Decimal("120")


def test_the_final_instalment_may_be_smaller_than_the_monthly_minimum(borrower, history):
    loan = Loan.objects.get(member=borrower)
    for month in ["1404/06", "1404/07", "1404/08"]:
        history.pay(borrower, month, 20, 155, loan=loan)  # 465 repaid, 15 left
    error = refusal(member=borrower, repayment=Decimal("20"))
    assert error.message == "The repayment must be exactly 15.00 USDT, what is left of the loan."
    payment = pay(borrower, repayment=Decimal("15"))
    assert payment.loan == loan


def test_pending_repayments_count_as_covering_the_loan(borrower, history, operator):
    loan = Loan.objects.get(member=borrower)
    history.pay(borrower, "1404/06", 20, 400, loan=loan, status=Payment.Status.PENDING)
    error = refusal(member=borrower, repayment=Decimal("100"))
    assert error.message == "The repayment must be between 20.00 and 80.00 USDT."


def test_a_loan_fully_covered_by_pending_repayments_takes_no_more(borrower, history):
    loan = Loan.objects.get(member=borrower)
    history.pay(borrower, "1404/06", 20, 480, loan=loan, status=Payment.Status.PENDING)
    error = refusal(member=borrower, repayment=Decimal("1"))
    assert error.message == "Your loan is fully covered by payments waiting for verification: leave the repayment at 0."
    assert pay(borrower).loan is None


def test_rejected_repayments_do_not_cover_the_loan(borrower, history):
    loan = Loan.objects.get(member=borrower)
    history.pay(borrower, "1404/06", 20, 400, loan=loan, status=Payment.Status.REJECTED)
    assert pay(borrower, repayment=Decimal("480")).repayment == Decimal("480")


def test_no_repayment_without_an_active_loan(config, member):
    error = refusal(member=member, repayment=Decimal("20"))
    assert error.message == "There is no active loan to repay: leave the repayment at 0."
    assert error.field == "repayment"


def test_a_settled_loan_takes_no_repayment(config, member, history):
    history.loan(member, "1404/01", 100, state=Loan.State.SETTLED)
    assert refusal(member=member, repayment=Decimal("20")).field == "repayment"


def test_the_month_a_loan_was_granted_carries_no_repayment(borrower, operator):
    payment = pay(borrower, month=JalaliMonth(1404, 5), source=Payment.Source.ADMIN)
    assert payment.loan is None


def test_repayment_due_shows_the_next_months_bounds_never_above_what_is_left(borrower, history):
    loan = Loan.objects.get(member=borrower)
    history.pay(borrower, "1404/06", 20, 470, loan=loan)
    due = repayment_due(member=borrower, month=THIS_MONTH)
    assert due.loan == loan
    assert (due.bounds.minimum, due.bounds.maximum, due.still_owed) == (Decimal("10"), Decimal("10"), Decimal("10"))


def test_a_big_loan_has_a_monthly_minimum_of_its_amount_over_the_months(config, member, history):
    history.loan(member, "1404/05", 1000)  # 1000 / 24 = 41.666… → 41.67
    error = refusal(member=member, repayment=Decimal("41.66"))
    assert error.message == "The repayment must be between 41.67 and 1,000.00 USDT."


# --- rule 5: the Bitpin id ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bitpin_id", ["", "   ", None])
def test_the_bitpin_id_is_required(config, member, bitpin_id):
    error = refusal(member=member, bitpin_id=bitpin_id)
    assert (error.message, error.field) == ("Enter the Bitpin payment id.", "bitpin_id")


def test_the_bitpin_id_has_a_length_limit(config, member):
    error = refusal(member=member, bitpin_id="x" * 101)
    assert error.message == "The Bitpin payment id is too long (at most 100 characters)."
    assert pay(member, bitpin_id="x" * 100).bitpin_id == "x" * 100


def test_the_bitpin_id_cannot_contain_spaces(config, member):
    assert refusal(member=member, bitpin_id="bp 1").message == "The Bitpin payment id cannot contain spaces."


def test_a_bitpin_id_can_be_used_once(config, member, other_member):
    pay(member, bitpin_id="bp-1")
    error = refusal(member=other_member, bitpin_id="bp-1")
    assert error.message == "This Bitpin payment id has already been used for another payment."
    assert error.field == "bitpin_id"


def test_the_id_of_a_rejected_payment_can_be_used_again(config, member, other_member):
    reject_payment(payment=pay(member, bitpin_id="bp-1"), by=None, note="not ours")
    assert pay(other_member, bitpin_id="bp-1").status == Payment.Status.PENDING


def test_imported_history_may_have_no_bitpin_id_and_is_verified_at_once(config, member):
    assert _import("payments", [member.username, "1403/02", "20", "0"]).ok
    payment = Payment.objects.get(member=member, month=JalaliMonth(1403, 2))
    assert payment.status == Payment.Status.VERIFIED
    assert payment.bitpin_id == ""
    assert ledger.balance_of(member) == Decimal("20")


# --- rule 6: the loan request ----------------------------------------------------------------------------------


def test_the_loan_request_can_change_with_the_payment(config, member):
    pay(member, loan_request=Decimal("300"))
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("300")


def test_a_bad_loan_request_refuses_the_whole_submission(config, member):
    error = refusal(member=member, loan_request=Decimal("-1"))
    assert (error.message, error.field) == ("The amount cannot be negative.", "loan_request")
    member.refresh_from_db()
    assert member.loan_request_amount == 0
    assert not Payment.objects.exists()


def test_a_refused_payment_leaves_the_loan_request_alone(config, member):
    with pytest.raises(PaymentRefused):
        pay(member, fee=Decimal("1"), loan_request=Decimal("300"))
    member.refresh_from_db()
    assert member.loan_request_amount == 0


def test_the_loan_request_can_change_on_its_own(config, member):
    change_loan_request(member=member, amount=Decimal("250.5"))
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("250.5")
    change_loan_request(member=member, amount=Decimal("0"))
    member.refresh_from_db()
    assert member.loan_request_amount == 0


def test_only_members_may_ask_for_a_loan(config, outsider):
    with pytest.raises(PaymentRefused, match="not an active member"):
        change_loan_request(member=outsider, amount=Decimal("100"))


# --- settling loans ---------------------------------------------------------------------------------------------


def test_a_loan_settles_when_verified_repayments_reach_its_amount(borrower, history):
    loan = Loan.objects.get(member=borrower)
    history.pay(borrower, "1404/06", 20, 400, loan=loan)
    payment = pay(borrower, repayment=Decimal("80"))
    loan.refresh_from_db()
    assert loan.state == Loan.State.ACTIVE  # pending money does not repay anything
    mark_verified(payment=payment, by=None, note="ok")
    loan.refresh_from_db()
    assert loan.state == Loan.State.SETTLED
    assert loan.settled_month == THIS_MONTH


def test_a_partly_repaid_loan_stays_active(borrower):
    mark_verified(payment=pay(borrower, repayment=Decimal("479.99")), by=None, note="ok")
    loan = Loan.objects.get(member=borrower)
    assert loan.state == Loan.State.ACTIVE
    assert quantize(ledger.active_loan(borrower).remaining) == Decimal("0.01")


def test_a_rejected_repayment_does_not_settle(borrower):
    reject_payment(payment=pay(borrower, repayment=Decimal("480")), by=None, note="failed")
    assert Loan.objects.get(member=borrower).state == Loan.State.ACTIVE


def test_after_settling_the_member_pays_without_repayment(borrower, history):
    mark_verified(payment=pay(borrower, repayment=Decimal("480")), by=None, note="ok")
    next_month = JalaliMonth(1404, 10)
    assert repayment_due(member=borrower, month=next_month) is None


def test_settle_is_a_no_op_for_an_unpaid_or_settled_loan(borrower, history):
    loan = Loan.objects.get(member=borrower)
    assert settle_if_repaid(loan) is False
    history.pay(borrower, "1404/06", 20, 480, loan=loan)
    assert settle_if_repaid(loan) is True
    assert settle_if_repaid(loan) is False


# --- recomputing loan states after an import -------------------------------------------------------------------


def test_recompute_settles_imported_loans_that_were_repaid(history):
    alice, bob = history.member("alice"), history.member("bob")
    repaid = history.loan(alice, "1403/01", 40)
    history.pay(alice, "1403/02", 20, 20, loan=repaid)
    history.pay(alice, "1403/03", 20, 20, loan=repaid)
    owing = history.loan(bob, "1403/01", 40)
    history.pay(bob, "1403/02", 20, 20, loan=owing)
    assert recompute_states() == 1
    repaid.refresh_from_db()
    owing.refresh_from_db()
    assert (repaid.state, repaid.settled_month) == (Loan.State.SETTLED, JalaliMonth(1403, 3))
    assert (owing.state, owing.settled_month) == (Loan.State.ACTIVE, None)
    assert recompute_states() == 0


def test_recompute_settles_before_reopening_so_one_loan_stays_active(history):
    alice = history.member("alice")
    # Imported as if the old loan were still open and the new one settled: the truth is the reverse.
    old = history.loan(alice, "1402/01", 40)
    new = history.loan(alice, "1403/01", 100, state=Loan.State.SETTLED)
    history.pay(alice, "1402/02", 20, 40, loan=old)
    assert recompute_states([old, new]) == 2
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, new.state) == (Loan.State.SETTLED, Loan.State.ACTIVE)


def test_recompute_refuses_a_member_owing_on_two_loans(history):
    alice = history.member("alice")
    history.loan(alice, "1402/01", 40)
    newer = history.loan(alice, "1403/01", 100, state=Loan.State.SETTLED)
    with pytest.raises(LoanRefused) as caught:
        recompute_states([newer])
    assert caught.value.message == "alice would have more than one loan not yet repaid (granted 1402/01, 1403/01)."
    newer.refresh_from_db()
    assert newer.state == Loan.State.SETTLED


def test_history_may_be_imported_for_a_member_who_has_left(config, member):
    member.is_active = False
    member.save()
    assert _import("payments", [member.username, "1403/02", "20", "0"]).ok
    payment = Payment.objects.get(member=member, month=JalaliMonth(1403, 2))
    assert payment.status == Payment.Status.VERIFIED


# --- never repaid past its amount (issue 13, fault 1) -------------------------------------------------------------


def _import(kind: str, *rows: list[object]):
    header = {"loans": ["member", "month", "amount"], "payments": ["member", "month", "fee", "repayment"]}[kind]
    return run_import(kind=kind, dataset=tablib.Dataset(*rows, headers=header), file_name=f"{kind}.csv")


def test_a_repayment_waiting_for_bitpin_makes_an_import_that_would_overpay_the_loan_refused(
    config, member, operator, fake_bitpin
):
    """The issue's scenario: a loan of 40, a repayment of 40 left pending by Bitpin, then history
    repaying the same 40: only one of them may ever count."""
    assert _import("loans", [member.username, "1404/06", "40"]).ok
    pending = submit_payment(
        member=member, month=JalaliMonth(1404, 7), fee=Decimal("20"), repayment=Decimal("40"),
        bitpin_id="bp-late", source=Payment.Source.ADMIN, submitted_by=operator,
    )  # fmt: skip
    fake_bitpin.set("bp-late", "pending")
    verify_with_bitpin(payment_id=pending.pk)
    assert Payment.objects.get(pk=pending.pk).status == Payment.Status.PENDING

    outcome = _import("payments", [member.username, "1404/08", "20", "40"])

    assert not outcome.ok
    assert [str(p) for p in outcome.problems] == [
        "row 1 (line 2), repayment: The repayment 40.00 is more than the 0.00 USDT still owed on the loan of "
        "1404/06 (payments waiting for verification count)."
    ]
    fake_bitpin.set("bp-late", "completed", amount="60")
    verify_with_bitpin(payment_id=pending.pk)
    loan = Loan.objects.get(member=member)
    assert ledger.loan_repaid(loan) == Decimal("40")
    assert (loan.state, loan.settled_month) == (Loan.State.SETTLED, JalaliMonth(1404, 7))


def test_a_repayment_that_would_overpay_at_verification_is_rejected_with_a_note(
    config, member, operator, history, fake_bitpin
):
    loan = history.loan(member, "1404/06", 40)
    pending = submit_payment(
        member=member, month=JalaliMonth(1404, 8), fee=Decimal("20"), repayment=Decimal("40"),
        bitpin_id="bp-late", source=Payment.Source.ADMIN, submitted_by=operator,
    )  # fmt: skip
    # Meanwhile the loan was repaid by another way (here: history written directly).
    history.pay(member, "1404/07", 20, 40, loan=loan)
    fake_bitpin.set("bp-late", "completed", amount="60")

    verify_with_bitpin(payment_id=pending.pk)

    pending.refresh_from_db()
    assert pending.status == Payment.Status.REJECTED
    assert pending.note == (
        "Rejected instead of verified: The repayment 40.00 is more than the 0.00 USDT still owed on the loan of 1404/06."
    )
    assert ledger.loan_repaid(loan) == Decimal("40")


def test_verifying_by_hand_a_repayment_that_would_overpay_rejects_it_and_says_why(config, member, operator, history):
    loan = history.loan(member, "1404/06", 40)
    history.pay(member, "1404/07", 20, 30, loan=loan)
    pending = submit_payment(
        member=member, month=JalaliMonth(1404, 8), fee=Decimal("20"), repayment=Decimal("10"),
        bitpin_id="bp-late", source=Payment.Source.ADMIN, submitted_by=operator,
    )  # fmt: skip
    history.pay(member, "1404/06", 20, 5, loan=loan)  # 35 verified: 5 left, the 10 would overpay

    with pytest.raises(PaymentRefused) as caught:
        verify_by_hand(payment=pending, by=operator, note="bank statement")

    assert "more than the 5.00 USDT still owed" in caught.value.message
    assert Payment.objects.get(pk=pending.pk).status == Payment.Status.REJECTED
    assert ledger.loan_repaid(loan) == Decimal("35")


def test_an_import_counts_its_own_repayments_in_month_order_against_what_is_owed(config, member, history):
    loan = history.loan(member, "1404/04", 50)
    submit_payment(
        member=member, month=JalaliMonth(1404, 5), fee=Decimal("20"), repayment=Decimal("20"),
        bitpin_id="bp-5", source=Payment.Source.ADMIN,
    )  # fmt: skip
    outcome = _import("payments", [member.username, "1404/07", "20", "20"], [member.username, "1404/06", "20", "20"])
    assert [str(p) for p in outcome.problems] == [
        "row 1 (line 2), repayment: The repayment 20.00 is more than the 10.00 USDT still owed on the loan of "
        "1404/04 (payments waiting for verification count)."
    ]
    assert ledger.loan_repaid(loan, include_pending=True) == Decimal("20")
