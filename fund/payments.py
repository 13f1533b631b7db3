"""Payments: submitting and verifying with Bitpin (DESIGN.md, "Payment", "Bitpin verification").

Every change of a payment's state goes through this module, whoever asks: the member page, the
admin, the worker's jobs, the spreadsheet import and the tests. Each refusal is a PaymentRefused
whose message names the rule, for the person who asked.

Races are settled where they happen:
- submissions of one member are serialised by locking the member's row, and the database's unique
  constraints (one payment per member and month, one use of a Bitpin id) catch whatever slips past;
- a payment's decision (verified / rejected) is taken once: every decision first claims the row
  with SELECT … FOR UPDATE and proceeds only while it is still pending, so a Bitpin answer racing
  a manual verification never counts a payment twice or flips a verified payment back;
- a repayment counts only within what is still owed on its loan at that moment, read under the
  loan's row lock by fund.loans, which also settles the loan once it is repaid.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fund import bitpin, ledger, loans, notifications, proof, tasks, verification
from fund.bulk import copy_rows
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, User
from fund.money import ZERO, AmountError, check_amount, format_usdt
from fund.text import TextRefused, normalise_bitpin_id

PENDING, VERIFIED, REJECTED = Payment.Status.PENDING, Payment.Status.VERIFIED, Payment.Status.REJECTED


class PaymentRefused(Exception):
    """A payment rule said no. ``message`` is for the person; ``field`` is the form field it concerns;
    ``code`` names the rule for programs (the JSON API answers "already paid" with 409)."""

    ALREADY_PAID = "already_paid"

    def __init__(self, message: str, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.field = field
        self.code = code


# --- submitting -------------------------------------------------------------------------------


# What this month's repayment must be: the loan module decides (the form reads it, submissions lock it).
RepaymentDue = loans.RepaymentDue
repayment_due = loans.repayment_due


def submit_payment(
    *,
    member: User,
    month: JalaliMonth,
    fee: Decimal,
    repayment: Decimal = ZERO,
    bitpin_id: str,
    source: str = Payment.Source.MEMBER,
    submitted_by: User | None = None,
    loan_request: Decimal | None = None,
) -> Payment:
    """Record a member's payment for ``month`` (DESIGN.md, "Payment", rules 1–7).

    Stored pending and verified by a job once this transaction commits (history, verified as it
    is written, goes through ``write_history_payments``). Raises PaymentRefused, and writes
    nothing, when any rule says no.
    """
    fee, repayment, bitpin_id = _parse_submission(month, fee, repayment, bitpin_id, source)
    # The month's seed commitment is published before its first payment (DESIGN.md, "Proof of the draw").
    proof.ensure_commitment(month, made_by="payment")
    with transaction.atomic():
        # One member's submissions run one at a time: the checks below read what the others wrote.
        member = _lock_member(member)
        loan = _check_submission(member, month, fee, repayment, bitpin_id, source, lock=True)
        if loan_request is not None:
            change_loan_request(member=member, amount=loan_request)
        payment = _create(
            member=member,
            month=month,
            fee=fee,
            repayment=repayment,
            loan=loan,
            bitpin_id=bitpin_id,
            source=source,
            submitted_by=submitted_by,
        )
        tasks.queue(tasks.VERIFY_PAYMENT, payment.pk)
        notifications.payment_received(payment)
    return payment


def check_payment(
    *,
    member: User,
    month: JalaliMonth,
    fee: Decimal,
    repayment: Decimal = ZERO,
    bitpin_id: str,
    source: str = Payment.Source.MEMBER,
) -> None:
    """Every rule of submit_payment, writing nothing: a form shows a refusal on its field with it.

    Raises PaymentRefused like submit_payment. Passing is no promise: submit_payment checks again
    under the member's lock, since another submission may land in between.
    """
    fee, repayment, bitpin_id = _parse_submission(month, fee, repayment, bitpin_id, source)
    current = _member_taking_part(User.objects.filter(pk=member.pk).first(), member)
    _check_submission(current, month, fee, repayment, bitpin_id, source, lock=False)


def _parse_submission(
    month: JalaliMonth, fee: Decimal, repayment: Decimal | None, bitpin_id: str, source: str
) -> tuple[Decimal, Decimal, str]:
    fee = _amount(fee, "fee")
    repayment = _amount(repayment if repayment is not None else ZERO, "repayment")
    bitpin_id = _clean_bitpin_id(bitpin_id)
    _check_month(month, source)
    return fee, repayment, bitpin_id


def _check_submission(
    member: User, month: JalaliMonth, fee: Decimal, repayment: Decimal, bitpin_id: str, source: str, *, lock: bool
) -> Loan | None:
    """The rules that read the database; returns the loan the repayment goes to. With ``lock`` the
    loan's row stays locked until the caller's transaction ends (a submission, not a form's check)."""
    _check_not_paid(member, month, source)
    _check_fee(fee)
    loan = _check_repayment(member, month, repayment, lock=lock)
    _check_bitpin_id_free(bitpin_id)
    return loan


def change_loan_request(*, member: User, amount: Decimal) -> User:
    """Set how much the member asks to borrow if chosen; 0 withdraws the request (DESIGN.md rule 6)."""
    amount = _amount(amount, "loan_request")
    with transaction.atomic():
        member = _lock_member(member)
        member.loan_request_amount = amount
        member.save(update_fields=["loan_request_amount"])
        ledger.draw_inputs_changed()
    return member


def _amount(value: Decimal, field: str) -> Decimal:
    try:
        return check_amount(Decimal(value))
    except (AmountError, ArithmeticError, TypeError, ValueError) as error:
        message = str(error) if isinstance(error, AmountError) else _("Enter an amount.")
        raise PaymentRefused(message, field) from None


def _clean_bitpin_id(bitpin_id: str | None) -> str:
    try:
        bitpin_id = normalise_bitpin_id(bitpin_id)  # the one spelling, for every path (fund.text)
    except TextRefused as refused:
        raise PaymentRefused(str(refused), "bitpin_id") from None
    if not bitpin_id:
        raise PaymentRefused(_("Enter the Bitpin payment id."), "bitpin_id")
    return bitpin_id


def _check_month(month: JalaliMonth, source: str) -> None:
    current = JalaliMonth.current()
    if source == Payment.Source.MEMBER and month != current:
        message = _("You can only pay for the current month, %(current)s, not %(month)s.")
        raise PaymentRefused(message % {"current": current, "month": month}, "month")
    if month > current:
        message = _("%(month)s has not started yet: payments can be recorded up to %(current)s.")
        raise PaymentRefused(message % {"current": current, "month": month}, "month")


def _lock_member(member: User) -> User:
    """The member's row, locked; refused unless an active member of the fund."""
    return _member_taking_part(User.objects.select_for_update().filter(pk=member.pk).first(), member)


def _member_taking_part(row: User | None, member: User) -> User:
    """``row`` (the member as read now), refused unless an active member of the fund."""
    if row is None or not row.is_fund_member:
        name = row.username if row else member.username
        raise PaymentRefused(_("%(member)s is not an active member of the fund.") % {"member": name})
    if row.is_leaving:
        # DESIGN.md, "A member leaving": owes no more fees and cannot pay.
        raise PaymentRefused(_("%(member)s is leaving the fund and pays nothing more.") % {"member": row.username})
    return row


def _check_not_paid(member: User, month: JalaliMonth, source: str) -> None:
    existing = Payment.objects.filter(member=member, month=month).exclude(status=REJECTED).first()
    if existing is not None:
        raise PaymentRefused(
            _already_paid(member, month, source, existing.status), "month", PaymentRefused.ALREADY_PAID
        )


def _already_paid(member: User, month: JalaliMonth, source: str, status: str) -> str:
    values = {"member": member.username, "month": month}
    if source == Payment.Source.MEMBER:
        if status == PENDING:
            return _("You have already paid for %(month)s; the payment is waiting for verification.") % values
        return _("You have already paid for %(month)s.") % values
    return _("%(member)s has already paid for %(month)s.") % values


def _check_fee(fee: Decimal) -> None:
    minimum = FundConfig.load().min_fee
    if fee < minimum:
        message = _("The membership fee must be at least %(min)s USDT.")
        raise PaymentRefused(message % {"min": format_usdt(minimum)}, "fee")


def _check_repayment(member: User, month: JalaliMonth, repayment: Decimal, *, lock: bool) -> Loan | None:
    """DESIGN.md rule 4: the loan the repayment goes to, or None when it carries no repayment."""
    # The loan's row stays locked until the payment is written: an import or a verification
    # counting a repayment on it at the same moment waits, then sees this one (fault 1 of issue 13).
    due = loans.repayment_due(member=member, month=month, lock=lock)
    if due is None:
        if repayment > ZERO:
            raise PaymentRefused(_("There is no active loan to repay: leave the repayment at 0."), "repayment")
        return None
    low, high = due.bounds.minimum, due.bounds.maximum
    if high == ZERO:
        if repayment > ZERO:
            message = _("Your loan is fully covered by payments waiting for verification: leave the repayment at 0.")
            raise PaymentRefused(message, "repayment")
        return None
    if low <= repayment <= high:
        return due.loan
    if low == high:
        message = _("The repayment must be exactly %(amount)s USDT, what is left of the loan.")
        raise PaymentRefused(message % {"amount": format_usdt(high)}, "repayment")
    message = _("The repayment must be between %(min)s and %(max)s USDT.")
    raise PaymentRefused(message % {"min": format_usdt(low), "max": format_usdt(high)}, "repayment")


def _check_bitpin_id_free(bitpin_id: str) -> None:
    if bitpin_id and Payment.objects.filter(bitpin_id=bitpin_id).exclude(status=REJECTED).exists():
        raise PaymentRefused(_bitpin_id_taken(), "bitpin_id")


def _bitpin_id_taken() -> str:
    return _("This Bitpin payment id has already been used for another payment.")


def _create(*, member: User, month: JalaliMonth, bitpin_id: str, source: str, **fields: object) -> Payment:
    try:
        # A savepoint: a concurrent submission that won the unique constraint leaves this
        # transaction usable, so the refusal below can say which rule was hit.
        with transaction.atomic():
            return Payment.objects.create(
                member=member,
                month=month,
                bitpin_id=bitpin_id,
                source=source,
                status=PENDING,
                **fields,
            )
    except IntegrityError:
        if Payment.objects.filter(member=member, month=month).exclude(status=REJECTED).exists():
            message = _already_paid(member, month, source, VERIFIED)
            raise PaymentRefused(message, "month", PaymentRefused.ALREADY_PAID) from None
        if bitpin_id and Payment.objects.filter(bitpin_id=bitpin_id).exclude(status=REJECTED).exists():
            raise PaymentRefused(_bitpin_id_taken(), "bitpin_id") from None
        raise  # not a rule the member broke: never tell them their Bitpin id was taken when it was not


# --- history: payments verified as they are written (the import, the example fund) ----------------


def history_payment(
    *,
    member_id: int,
    month: JalaliMonth,
    fee: Decimal,
    repayment: Decimal,
    loan_id: int | None,
    bitpin_id: str,
    note: str,
    recorded_by_id: int | None,
    at: dt.datetime,
) -> dict[str, Any]:
    """One payment of past history, verified as written, as column values by attribute name.

    The one place such a row is shaped; the caller has checked it (the import's whole-file check,
    or the example fund's own arithmetic) and ``write_history_payments`` writes it.
    """
    return {
        "member_id": member_id, "month": month, "fee": fee, "repayment": repayment, "loan_id": loan_id,
        "bitpin_id": bitpin_id, "status": VERIFIED.value, "source": Payment.Source.IMPORT.value, "note": note,
        "created_at": at, "submitted_by_id": recorded_by_id, "verified_by_id": recorded_by_id, "verified_at": at,
    }  # fmt: skip


def write_history_payments(rows: Iterable[dict[str, Any]], *, batch_size: int = 5000) -> int:
    """Write ``history_payment`` rows in bulk; returns how many. PostgreSQL gets them by COPY, the
    database's fastest write (100,000 payments in about a second, where bulk_create takes five)."""
    written = 0
    if connection.vendor == "postgresql":

        def counted(row: dict[str, Any]) -> dict[str, Any]:
            nonlocal written
            written += 1
            return row | {"month": int(row["month"])}

        copy_rows(Payment, (counted(row) for row in rows))
    else:
        for batch in itertools.batched(rows, batch_size):
            written += len(Payment.objects.bulk_create([Payment(**row) for row in batch]))
    ledger.draw_inputs_changed()
    return written


# --- deciding: verified or rejected -------------------------------------------------------------


def mark_verified(*, payment: Payment, by: User | None, note: str) -> Payment:
    """The payment counts from now on; settles its loan when this repayment completes it.

    A repayment counts only within what is still owed at this moment (under the loan's lock): one
    that would repay the loan past its amount — history imported while it waited, say — is
    rejected instead, with a note saying why. The member may pay the month again.
    """
    with transaction.atomic():
        claimed = _claim_pending(payment)
        refusal = None
        if claimed.loan_id and claimed.repayment > ZERO:
            refusal = loans.check_repayments(
                [(claimed.pk, claimed.loan_id, claimed.repayment)], pending_counts=False, excluding_payment=claimed.pk
            ).get(claimed.pk)
        if refusal is not None:
            verification.decide(
                claimed, REJECTED, by, _("Rejected instead of verified: %(reason)s") % {"reason": refusal}
            )
            return claimed
        verification.decide(claimed, VERIFIED, by, note)
        notifications.payment_verified(claimed)
        if claimed.loan_id and claimed.repayment > ZERO:
            loans.settle_if_repaid(claimed.loan)
    return claimed


def verify_by_hand(*, payment: Payment, by: User, note: str) -> Payment:
    """The operator checked the payment themselves; the note says how (required).

    Raises PaymentRefused when the payment was rejected instead (it would overpay its loan): the
    rejection stands, and the operator reads why.
    """
    decided = mark_verified(payment=payment, by=by, note=verification.required_note(note, PaymentRefused))
    if decided.status == REJECTED:
        raise PaymentRefused(decided.note)
    return decided


def reject_payment(*, payment: Payment, by: User | None, note: str) -> Payment:
    """The payment will never count; the member may submit the month again."""
    note = verification.required_note(note, PaymentRefused)
    with transaction.atomic():
        claimed = _claim_pending(payment)
        verification.decide(claimed, REJECTED, by, note)
        notifications.payment_rejected(claimed)
    return claimed


_ALREADY_DECIDED = gettext_lazy(
    "This payment is already %(status)s; only pending payments can be verified or rejected."
)


def _claim_pending(payment: Payment) -> Payment:
    return verification.claim_pending(payment, PaymentRefused, _ALREADY_DECIDED)


# --- verifying with Bitpin -------------------------------------------------------------------------


def verify_with_bitpin(*, payment_id: int) -> str:
    """The verification job: ask Bitpin about one pending payment and apply the answer (idempotent)."""
    return CHECKED.check(payment_id)


def requeue_verification(*, payment_ids: list[int]) -> int:
    """Queue a Bitpin check for each pending payment among ``payment_ids``; returns how many."""
    return CHECKED.requeue(payment_ids)


def sweep_pending_payments() -> int:
    """Check every pending payment that is due again; returns how many were checked.

    The scheduled job sweeps payouts too (fund.verification.sweep): this is its payments part.
    """
    return verification.sweep([CHECKED])


retry_delay = verification.retry_delay  # the back-off between attempts, the same for every kind


# The retry sweep (fund.verification) checks payments as one of its kinds.
CHECKED = verification.Checked(
    model=Payment,
    ask=lambda payment, client: bitpin.check_payment(payment.bitpin_id, payment.total, client=client),
    verify=lambda payment, note: mark_verified(payment=payment, by=None, note=note),
    reject=lambda payment, note: reject_payment(payment=payment, by=None, note=note),
    refused=PaymentRefused,
    task=tasks.VERIFY_PAYMENT,
)
