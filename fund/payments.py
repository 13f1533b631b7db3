"""Payments: submitting, verifying with Bitpin, settling loans (DESIGN.md, "Payment", "Bitpin verification", "Loan").

Every change of a payment's state goes through this module, whoever asks: the member page, the
admin, the worker's jobs, the spreadsheet import and the tests. Each refusal is a PaymentRefused
whose message names the rule, for the person who asked.

Races are settled where they happen:
- submissions of one member are serialised by locking the member's row, and the database's unique
  constraints (one payment per member and month, one use of a Bitpin id) catch whatever slips past;
- a payment's decision (verified / rejected) is taken once: every decision first claims the row
  with SELECT … FOR UPDATE and proceeds only while it is still pending, so a Bitpin answer racing
  a manual verification never counts a payment twice or flips a verified payment back.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, OuterRef, Q, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fund import bitpin, ledger, notifications, tasks
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, User
from fund.money import ZERO, AmountError, check_amount, format_usdt, quantize

PENDING, VERIFIED, REJECTED = Payment.Status.PENDING, Payment.Status.VERIFIED, Payment.Status.REJECTED
BITPIN_ID_MAX_LENGTH = Payment._meta.get_field("bitpin_id").max_length

# Back-off between Bitpin attempts: 1, 2, 4 … minutes, at most an hour (the sweep runs every minute).
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=1)
# A payment whose verification job never ran (a worker died) is swept after this long.
LOST_JOB_AFTER = dt.timedelta(minutes=1)
# The sweep claims what it will check for this long, so an overlapping sweep leaves it alone.
SWEEP_LEASE = dt.timedelta(minutes=5)
# The sweep stops starting new lookups after this long: the job must end well within django-q's timeout.
SWEEP_TIME_BUDGET_SECONDS = 60.0
SWEEP_BATCH = 5000


class PaymentRefused(Exception):
    """A payment rule said no. ``message`` is for the person; ``field`` is the form field it concerns."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.field = field


def no_key_note() -> str:
    return _("not checked: no Bitpin key configured")


# --- submitting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepaymentDue:
    """This month's repayment on the member's active loan: what the form shows and the rule checks."""

    loan: Loan
    still_owed: Decimal
    bounds: ledger.RepaymentBounds


def repayment_due(*, member: User, month: JalaliMonth) -> RepaymentDue | None:
    """The repayment a payment for ``month`` must carry, or None when no loan is being repaid.

    Still owed = the loan's amount − its verified and pending repayments: a payment waiting for
    Bitpin already covers its share, so two payments can never together overpay the loan.
    A loan is repaid from the month after it was granted (its own month was paid before the draw).
    """
    loan = Loan.objects.filter(member=member, state=Loan.State.ACTIVE, month__lt=month).first()
    if loan is None:
        return None
    # quantize: SQLite sums decimals as floats; the fund's figures have 8 places, not float noise.
    still_owed = max(loan.amount - quantize(ledger.loan_repaid(loan, include_pending=True)), ZERO)
    return RepaymentDue(loan=loan, still_owed=still_owed, bounds=ledger.repayment_bounds(loan, still_owed))


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

    Stored pending and verified by a job once this transaction commits; imported history is
    verified at once. Raises PaymentRefused, and writes nothing, when any rule says no.
    """
    fee = _amount(fee, "fee")
    repayment = _amount(repayment if repayment is not None else ZERO, "repayment")
    bitpin_id = _clean_bitpin_id(bitpin_id, source)
    _check_month(month, source)
    with transaction.atomic():
        # One member's submissions run one at a time: the checks below read what the others wrote.
        member = _lock_member(member, history=source == Payment.Source.IMPORT)
        _check_not_paid(member, month, source)
        _check_fee(fee)
        loan = _check_repayment(member, month, repayment)
        _check_bitpin_id_free(bitpin_id)
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
        if payment.status == PENDING:
            tasks.queue(tasks.VERIFY_PAYMENT, payment.pk)
            notifications.payment_received(payment)
        elif payment.loan_id:
            settle_loan_if_repaid(payment.loan)
    return payment


def change_loan_request(*, member: User, amount: Decimal) -> User:
    """Set how much the member asks to borrow if chosen; 0 withdraws the request (DESIGN.md rule 6)."""
    amount = _amount(amount, "loan_request")
    with transaction.atomic():
        member = _lock_member(member)
        member.loan_request_amount = amount
        member.save(update_fields=["loan_request_amount"])
    return member


def _amount(value: Decimal, field: str) -> Decimal:
    try:
        return check_amount(Decimal(value))
    except (AmountError, ArithmeticError, TypeError, ValueError) as error:
        message = str(error) if isinstance(error, AmountError) else _("Enter an amount.")
        raise PaymentRefused(message, field) from None


def _clean_bitpin_id(bitpin_id: str | None, source: str) -> str:
    bitpin_id = (bitpin_id or "").strip()
    if not bitpin_id and source != Payment.Source.IMPORT:
        raise PaymentRefused(_("Enter the Bitpin payment id."), "bitpin_id")
    if len(bitpin_id) > BITPIN_ID_MAX_LENGTH:
        message = _("The Bitpin payment id is too long (at most %(max)s characters).")
        raise PaymentRefused(message % {"max": BITPIN_ID_MAX_LENGTH}, "bitpin_id")
    if any(ch.isspace() or not ch.isprintable() for ch in bitpin_id):
        raise PaymentRefused(_("The Bitpin payment id cannot contain spaces."), "bitpin_id")
    return bitpin_id


def _check_month(month: JalaliMonth, source: str) -> None:
    current = JalaliMonth.current()
    if source == Payment.Source.MEMBER and month != current:
        message = _("You can only pay for the current month, %(current)s, not %(month)s.")
        raise PaymentRefused(message % {"current": current, "month": month}, "month")
    if month > current:
        message = _("%(month)s has not started yet: payments can be recorded up to %(current)s.")
        raise PaymentRefused(message % {"current": current, "month": month}, "month")


def _lock_member(member: User, history: bool = False) -> User:
    """The member's row, locked; refused unless an active member (history may name one who has left)."""
    locked = User.objects.select_for_update().filter(pk=member.pk).first()
    if locked is None or not (locked.is_member if history else locked.is_fund_member):
        name = locked.username if locked else member.username
        raise PaymentRefused(_("%(member)s is not an active member of the fund.") % {"member": name})
    return locked


def _check_not_paid(member: User, month: JalaliMonth, source: str) -> None:
    existing = Payment.objects.filter(member=member, month=month).exclude(status=REJECTED).first()
    if existing is not None:
        raise PaymentRefused(_already_paid(member, month, source, existing.status), "month")


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


def _check_repayment(member: User, month: JalaliMonth, repayment: Decimal) -> Loan | None:
    """DESIGN.md rule 4: the loan the repayment goes to, or None when it carries no repayment."""
    due = repayment_due(member=member, month=month)
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
    imported = source == Payment.Source.IMPORT
    try:
        # A savepoint: a concurrent submission that won the unique constraint leaves this
        # transaction usable, so the refusal below can say which rule was hit.
        with transaction.atomic():
            return Payment.objects.create(
                member=member,
                month=month,
                bitpin_id=bitpin_id,
                source=source,
                status=VERIFIED if imported else PENDING,
                verified_at=timezone.now() if imported else None,
                note=_("imported history") if imported else "",
                **fields,
            )
    except IntegrityError:
        if Payment.objects.filter(member=member, month=month).exclude(status=REJECTED).exists():
            raise PaymentRefused(_already_paid(member, month, source, VERIFIED), "month") from None
        if bitpin_id and Payment.objects.filter(bitpin_id=bitpin_id).exclude(status=REJECTED).exists():
            raise PaymentRefused(_bitpin_id_taken(), "bitpin_id") from None
        raise  # not a rule the member broke: never tell them their Bitpin id was taken when it was not


# --- deciding: verified or rejected -------------------------------------------------------------


def mark_verified(*, payment: Payment, by: User | None, note: str) -> Payment:
    """The payment counts from now on; settles its loan when this repayment completes it."""
    with transaction.atomic():
        claimed = _claim_pending(payment)
        _decide(claimed, VERIFIED, by, note)
        notifications.payment_verified(claimed)
        if claimed.loan_id and claimed.repayment > ZERO:
            settle_loan_if_repaid(claimed.loan)
    return claimed


def verify_by_hand(*, payment: Payment, by: User, note: str) -> Payment:
    """The operator checked the payment themselves; the note says how (required)."""
    return mark_verified(payment=payment, by=by, note=_required_note(note))


def reject_payment(*, payment: Payment, by: User | None, note: str) -> Payment:
    """The payment will never count; the member may submit the month again."""
    note = _required_note(note)
    with transaction.atomic():
        claimed = _claim_pending(payment)
        _decide(claimed, REJECTED, by, note)
        notifications.payment_rejected(claimed)
    return claimed


def _required_note(note: str | None) -> str:
    note = (note or "").strip()
    if not note:
        raise PaymentRefused(_("Write a note saying why."), "note")
    return note


def _claim_pending(payment: Payment) -> Payment:
    """Lock the payment's row and make sure nobody has decided it yet (the decision is taken once)."""
    claimed = Payment.objects.select_for_update(of=("self",)).select_related("loan").get(pk=payment.pk)
    if claimed.status != PENDING:
        message = _("This payment is already %(status)s; only pending payments can be verified or rejected.")
        raise PaymentRefused(message % {"status": claimed.get_status_display()})
    return claimed


def _decide(payment: Payment, status: str, by: User | None, note: str) -> None:
    payment.status = status
    payment.verified_by = by
    payment.verified_at = timezone.now()
    payment.note = note
    payment.next_attempt_at = None
    payment.save(update_fields=["status", "verified_by", "verified_at", "note", "next_attempt_at"])


# --- loans ----------------------------------------------------------------------------------------


def settle_loan_if_repaid(loan: Loan) -> bool:
    """Settle the loan once its verified repayments reach its amount (DESIGN.md, "Loan")."""
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        if loan.state != Loan.State.ACTIVE:
            return False
        repaid = Payment.objects.filter(loan=loan, status=VERIFIED).aggregate(total=Sum("repayment"), last=Max("month"))
        if quantize(repaid["total"] or ZERO) < loan.amount:
            return False
        loan.state = Loan.State.SETTLED
        loan.settled_month = repaid["last"]
        loan.save(update_fields=["state", "settled_month"])
    return True


def recompute_loan_states(loans: Iterable[Loan] | None = None) -> int:
    """Make each loan's state agree with its verified repayments (after an import). Returns how many changed.

    Settled when verified repayments reach the amount (settled in the month of the last one),
    active otherwise. Settlements are written before re-activations so that the one-active-loan
    constraint holds at every step; a member who would end up with two active loans is refused.
    """
    with transaction.atomic():
        queryset = Loan.objects.all() if loans is None else Loan.objects.filter(pk__in=[loan.pk for loan in loans])
        last_repaid = (
            Payment.objects.filter(loan=OuterRef("pk"), status=VERIFIED).order_by("-month").values("month")[:1]
        )
        rows = list(ledger.with_repaid(queryset.select_for_update()).annotate(last_month=last_repaid).order_by("pk"))
        for loan in rows:
            loan.repaid = quantize(loan.repaid)  # SQLite sums decimals as floats
        settle = [loan for loan in rows if loan.repaid >= loan.amount and loan.state != Loan.State.SETTLED]
        reopen = [loan for loan in rows if loan.repaid < loan.amount and loan.state != Loan.State.ACTIVE]
        _check_one_active_per_member(rows)
        for loan in settle:
            loan.state, loan.settled_month = Loan.State.SETTLED, JalaliMonth.parse(loan.last_month)
            loan.save(update_fields=["state", "settled_month"])
        for loan in reopen:
            loan.state, loan.settled_month = Loan.State.ACTIVE, None
            loan.save(update_fields=["state", "settled_month"])
    return len(settle) + len(reopen)


def _check_one_active_per_member(rows: list[Loan]) -> None:
    """Refuse, before writing anything, a history in which a member owes on two loans at once."""
    owing = [loan for loan in rows if loan.repaid < loan.amount]
    others = Loan.objects.filter(state=Loan.State.ACTIVE, member_id__in={loan.member_id for loan in owing})
    owners: dict[int, list[Loan]] = {}
    for loan in [*others.exclude(pk__in=[loan.pk for loan in rows]), *owing]:
        owners.setdefault(loan.member_id, []).append(loan)
    for loans in owners.values():
        if len(loans) > 1:
            months = ", ".join(sorted(str(loan.month) for loan in loans))
            message = _("%(member)s would have more than one loan not yet repaid (granted %(months)s).")
            member = User.objects.get(pk=loans[0].member_id)
            raise PaymentRefused(message % {"member": member.username, "months": months})


# --- verifying with Bitpin -------------------------------------------------------------------------


def verify_with_bitpin(*, payment_id: int) -> str:
    """The verification job: ask Bitpin about one pending payment and apply the answer.

    Idempotent: a payment that is no longer pending is left alone, so a redelivered job or one
    racing a manual verification changes nothing. Returns a line for the job's result.
    """
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        return f"payment {payment_id} does not exist"
    if payment.status != PENDING:
        return f"payment {payment_id} is already {payment.status}"
    return apply_answer(payment, ask_bitpin(payment))


def ask_bitpin(payment: Payment, client: httpx.Client | None = None) -> bitpin.Answer:
    """Bitpin's answer about a payment; no network at all when no key is configured (development)."""
    if not settings.BITPIN_API_KEY:
        return bitpin.Answer(bitpin.Outcome.VERIFIED, no_key_note())
    return bitpin.check_payment(payment.bitpin_id, payment.total, client=client)


def apply_answer(payment: Payment, answer: bitpin.Answer) -> str:
    try:
        if answer.outcome == bitpin.Outcome.VERIFIED:
            mark_verified(payment=payment, by=None, note=answer.detail)
        elif answer.outcome == bitpin.Outcome.REJECTED:
            reject_payment(payment=payment, by=None, note=answer.detail)
        else:
            _record_retry(payment, answer.detail)
    except PaymentRefused:
        # Someone decided the payment while Bitpin was answering: their decision stands.
        return f"payment {payment.pk} was decided meanwhile; Bitpin said {answer.outcome}"
    return f"payment {payment.pk}: {answer.outcome}: {answer.detail}"


def retry_delay(attempts: int) -> dt.timedelta:
    """Back-off after the ``attempts``-th failed attempt: 1, 2, 4 … minutes, at most an hour."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def _record_retry(payment: Payment, error: str) -> None:
    # A conditional UPDATE: only a still-pending payment is marked for another try.
    attempts = payment.attempts + 1
    Payment.objects.filter(pk=payment.pk, status=PENDING).update(
        attempts=F("attempts") + 1,
        last_error=error,
        next_attempt_at=timezone.now() + retry_delay(attempts),
    )


def requeue_verification(*, payment_ids: list[int]) -> int:
    """Queue a Bitpin check for each pending payment among ``payment_ids``; returns how many."""
    pending = list(Payment.objects.filter(pk__in=payment_ids, status=PENDING).values_list("pk", flat=True))
    for pk in pending:
        tasks.queue(tasks.VERIFY_PAYMENT, pk)
    return len(pending)


def sweep_pending_payments() -> int:
    """Check every pending payment that is due again (the scheduled job). Returns how many were checked.

    Bitpin is asked from a pool of threads sharing one HTTP client, so a slow API does not
    serialise the sweep; answers are applied one by one in this thread, on its database connection.
    """
    payments = _claim_due_payments()
    if not payments:
        return 0
    if not settings.BITPIN_API_KEY:
        for payment in payments:
            apply_answer(payment, ask_bitpin(payment))
        return len(payments)
    deadline = time.monotonic() + SWEEP_TIME_BUDGET_SECONDS
    checked = 0
    with bitpin.make_client() as client, ThreadPoolExecutor(max_workers=settings.BITPIN_SWEEP_CONCURRENCY) as pool:
        language = translation.get_language()
        futures = {pool.submit(_ask_before, deadline, payment, client, language): payment for payment in payments}
        for future in as_completed(futures):
            answer = future.result()
            if answer is not None:
                apply_answer(futures[future], answer)
                checked += 1
    return checked


def _ask_before(deadline: float, payment: Payment, client: httpx.Client, language: str) -> bitpin.Answer | None:
    # Past the budget the payment is left for the next sweep (its lease runs out soon).
    if time.monotonic() > deadline:
        return None
    # The active language is per thread: notes are written in the sweep's language, not the default.
    with translation.override(language):
        return ask_bitpin(payment, client)


def _claim_due_payments() -> list[Payment]:
    """Pending payments due for a check, leased so that an overlapping sweep skips them."""
    now = timezone.now()
    due = Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lte=now - LOST_JOB_AFTER)
    with transaction.atomic():
        # skip_locked: two sweeps at once split the work instead of waiting for each other.
        queryset = Payment.objects.select_for_update(skip_locked=True).filter(due, status=PENDING)
        payments = list(queryset.order_by(F("next_attempt_at").asc(nulls_first=True), "pk")[:SWEEP_BATCH])
        Payment.objects.filter(pk__in=[p.pk for p in payments]).update(next_attempt_at=now + SWEEP_LEASE)
    return payments
