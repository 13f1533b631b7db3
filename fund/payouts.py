"""Payouts: money leaving the fund's wallet, checked with Bitpin (DESIGN.md, "Loan payout", "A member leaving").

Two kinds, one life: the operator sends USDT from the fund's Bitpin wallet, records the transfer id
here, and a job checks the transfer with Bitpin exactly as payments are checked (fund.verification:
same client, same three answer classes, same retry sweep). The operator may also verify or reject
by hand with a note.

- A **loan payout** pays a loan the draw granted. Verified: the loan becomes active and is repaid
  from the following month. Rejected: the loan stays awaiting payout and the operator records the
  payout again (a new transfer id).
- A **refund** pays a leaving member their balance. Recording the leaving and its refund is one
  step (``record_leaving``); verified: the member becomes inactive with a balance of 0. Rejected:
  the member stays leaving and the operator records the refund again.

Races are settled as for payments: a decision claims the payout's row (SELECT … FOR UPDATE) and
proceeds only while it is pending, so Bitpin's answer racing a manual decision decides once.
Recording a leaving takes the same lock as the draw (the configuration row), so a refund and a
loan can never both be promised the same fund cash.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fund import bitpin, ledger, loans, notifications, tasks, verification
from fund.models import FundConfig, Loan, Payment, Payout, User
from fund.money import ZERO, AmountError, check_amount, format_usdt
from fund.text import TextRefused, normalise_bitpin_id

PENDING, VERIFIED, REJECTED = Payout.Status.PENDING, Payout.Status.VERIFIED, Payout.Status.REJECTED
TRANSFER_ID_MAX_LENGTH = Payout._meta.get_field("transfer_id").max_length


class PayoutRefused(Exception):
    """A payout rule said no. ``message`` is for the person; ``field`` is the form field it concerns."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.field = field


# --- loan payouts ---------------------------------------------------------------------------------


def record_loan_payout(*, loan: Loan, transfer_id: str, amount: Decimal, by: User | None) -> Payout:
    """The operator sent the loan's USDT: record the transfer; a job checks it with Bitpin.

    The amount must equal the loan's. Refused, writing nothing, unless the loan is awaiting payout
    with no payout pending or verified.
    """
    transfer_id = _clean_transfer_id(transfer_id)
    amount = _amount(amount)
    with transaction.atomic():
        loan = Loan.objects.select_for_update().select_related("member").get(pk=loan.pk)
        if loan.state != Loan.State.AWAITING_PAYOUT:
            message = _("This loan is %(state)s: only a loan awaiting payout can be paid out.")
            raise PayoutRefused(message % {"state": loan.get_state_display()})
        if loan.payouts.exclude(status=REJECTED).exists():
            raise PayoutRefused(_("A payout is already recorded for this loan; it is checked with Bitpin."))
        if amount != loan.amount:
            message = _("The amount sent must be the loan's amount, %(amount)s USDT.")
            raise PayoutRefused(message % {"amount": format_usdt(loan.amount)}, "amount")
        return _create(
            kind=Payout.Kind.LOAN, member=loan.member, loan=loan, amount=amount, transfer_id=transfer_id, by=by
        )


# --- a member leaving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeavingQuote:
    """What leaving means for a member now: the confirmation page shows it, ``record_leaving`` enforces it."""

    member: User
    refund: Decimal  # the member's balance
    fund_cash: Decimal
    refusal: str  # "" when the member may leave now

    @property
    def covered(self) -> bool:
        return self.refund <= self.fund_cash

    @property
    def missing(self) -> Decimal:
        return max(self.refund - self.fund_cash, ZERO)


def leaving_quote(member: User) -> LeavingQuote:
    """Read-only: the refund and whether the member may leave now (DESIGN.md, "A member leaving")."""
    refund = ledger.balance_of(member)
    cash = ledger.fund_totals().cash
    return LeavingQuote(member=member, refund=refund, fund_cash=cash, refusal=_leaving_refusal(member, refund, cash))


def _leaving_refusal(member: User, refund: Decimal, cash: Decimal) -> str:
    values = {"member": member.username}
    if not member.is_fund_member:
        return _("%(member)s is not an active member of the fund.") % values
    if (
        member.is_leaving
        and Payout.objects.filter(member=member, kind=Payout.Kind.REFUND).exclude(status=REJECTED).exists()
    ):
        return _("%(member)s is already leaving; their refund is recorded and checked with Bitpin.") % values
    loan = Loan.objects.filter(member=member, state__in=Loan.OPEN_STATES).first()
    if loan is not None:
        values["month"] = loan.month
        return _("%(member)s has an open loan (granted %(month)s): they can leave once it is repaid.") % values
    pending = Payment.objects.filter(member=member, status=Payment.Status.PENDING).first()
    if pending is not None:
        values["month"] = pending.month
        message = _("%(member)s has a payment for %(month)s waiting for verification: verify or reject it first.")
        return message % values
    if refund > cash:
        message = _(
            "The refund of %(refund)s USDT is more than the fund cash of %(cash)s USDT: %(missing)s USDT is missing."
        )
        return message % {
            "refund": format_usdt(refund),
            "cash": format_usdt(cash),
            "missing": format_usdt(refund - cash),
        }
    return ""


def record_leaving(*, member: User, transfer_id: str, by: User | None) -> Payout | None:
    """The member leaves: out of draws and owing no fees from now; their balance is refunded.

    The operator has sent the refund and gives its transfer id; it is checked like a loan payout.
    A member with a balance of 0 leaves at once (inactive, nothing to refund). Also records the
    refund again for a leaving member whose refund was rejected. Refused, writing nothing, with an
    open loan, a payment waiting for verification, or a refund larger than the fund cash.
    """
    with transaction.atomic():
        # The draw's lock: a draw and a refund cannot both count on the same fund cash.
        FundConfig.load()
        FundConfig.objects.select_for_update().get(pk=FundConfig.SINGLETON_ID)
        member = User.objects.select_for_update().get(pk=member.pk)
        quote = leaving_quote(member)
        if quote.refusal:
            raise PayoutRefused(quote.refusal)
        if member.leaving_since is None:
            member.leaving_since = timezone.now()
            member.loan_request_amount = ZERO  # not asking for a loan any more
            member.save(update_fields=["leaving_since", "loan_request_amount"])
            ledger.draw_inputs_changed()
        if quote.refund == ZERO:
            _member_left(member)
            return None
        transfer_id = _clean_transfer_id(transfer_id)
        return _create(
            kind=Payout.Kind.REFUND, member=member, loan=None, amount=quote.refund, transfer_id=transfer_id, by=by
        )


def _member_left(member: User) -> None:
    """The refund is verified (or there was nothing to refund): the member is inactive, history kept."""
    member.is_active = False
    member.left_at = timezone.now()
    member.save(update_fields=["is_active", "left_at"])
    ledger.draw_inputs_changed()


# --- recording --------------------------------------------------------------------------------------


def _clean_transfer_id(transfer_id: str | None) -> str:
    """The same spelling rules as a payment's Bitpin id (fund.text): one normalisation for every id."""
    try:
        transfer_id = normalise_bitpin_id(transfer_id)
    except TextRefused:
        message = _("The Bitpin transfer id must be one word of visible characters, at most %(max)s long.")
        raise PayoutRefused(message % {"max": TRANSFER_ID_MAX_LENGTH}, "transfer_id") from None
    if not transfer_id:
        raise PayoutRefused(_("Enter the Bitpin transfer id."), "transfer_id")
    return transfer_id


def _amount(value: Decimal) -> Decimal:
    try:
        return check_amount(Decimal(value))
    except (AmountError, ArithmeticError, TypeError, ValueError) as error:
        message = str(error) if isinstance(error, AmountError) else _("Enter an amount.")
        raise PayoutRefused(message, "amount") from None


def _transfer_id_taken() -> str:
    return _("This Bitpin transfer id has already been recorded for another payout.")


def _create(
    *, kind: str, member: User, loan: Loan | None, amount: Decimal, transfer_id: str, by: User | None
) -> Payout:
    if Payout.objects.filter(transfer_id=transfer_id).exclude(status=REJECTED).exists():
        raise PayoutRefused(_transfer_id_taken(), "transfer_id")
    try:
        with transaction.atomic():  # a savepoint: a concurrent record that won leaves us able to explain
            payout = Payout.objects.create(
                kind=kind, member=member, loan=loan, amount=amount, transfer_id=transfer_id, recorded_by=by
            )
    except IntegrityError:
        if Payout.objects.filter(transfer_id=transfer_id).exclude(status=REJECTED).exists():
            raise PayoutRefused(_transfer_id_taken(), "transfer_id") from None
        raise PayoutRefused(_("A payout is already recorded for this; it is checked with Bitpin.")) from None
    tasks.queue(tasks.VERIFY_PAYOUT, payout.pk)
    if kind == Payout.Kind.REFUND:
        ledger.draw_inputs_changed()  # a pending refund is set aside from the fund cash
    return payout


# --- deciding: verified or rejected ------------------------------------------------------------------


def mark_payout_verified(*, payout: Payout, by: User | None, note: str) -> Payout:
    """The money has left the wallet: a loan becomes active, a leaving member inactive."""
    with transaction.atomic():
        claimed = _claim_pending(payout)
        verification.decide(claimed, VERIFIED, by, note)
        notifications.payout_verified(claimed)
        if claimed.kind == Payout.Kind.LOAN:
            loans.mark_paid_out(claimed.loan)
        else:
            _member_left(User.objects.select_for_update().get(pk=claimed.member_id))
    return claimed


def verify_payout_by_hand(*, payout: Payout, by: User, note: str) -> Payout:
    """The operator checked the transfer themselves; the note says how (required)."""
    return mark_payout_verified(payout=payout, by=by, note=verification.required_note(note, PayoutRefused))


def reject_payout(*, payout: Payout, by: User | None, note: str) -> Payout:
    """The transfer will never count: the loan stays awaiting payout (the member stays leaving)
    until the operator records the payout again."""
    note = verification.required_note(note, PayoutRefused)
    with transaction.atomic():
        claimed = _claim_pending(payout)
        verification.decide(claimed, REJECTED, by, note)
    return claimed


_ALREADY_DECIDED = gettext_lazy("This payout is already %(status)s; only pending payouts can be verified or rejected.")


def _claim_pending(payout: Payout) -> Payout:
    return verification.claim_pending(payout, PayoutRefused, _ALREADY_DECIDED)


# --- checking with Bitpin ---------------------------------------------------------------------------------


def verify_payout_with_bitpin(*, payout_id: int) -> str:
    """The verification job: ask Bitpin about one pending payout and apply the answer (idempotent)."""
    return CHECKED.check(payout_id)


def requeue_verification(*, payout_ids: list[int]) -> int:
    """Queue a Bitpin check for each pending payout among ``payout_ids``; returns how many."""
    return CHECKED.requeue(payout_ids)


# The retry sweep (fund.verification) checks payouts as one of its kinds.
CHECKED = verification.Checked(
    model=Payout,
    ask=lambda payout, client: bitpin.check_transfer(payout.transfer_id, payout.amount, client=client),
    verify=lambda payout, note: mark_payout_verified(payout=payout, by=None, note=note),
    reject=lambda payout, note: reject_payout(payout=payout, by=None, note=note),
    refused=PayoutRefused,
    task=tasks.VERIFY_PAYOUT,
)
