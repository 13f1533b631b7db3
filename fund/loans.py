"""Loans: granting one, what is still owed on it, and every change of its state (DESIGN.md, "Loan").

This module is the one writer of a loan's ``state``, ``paid_out_month`` and ``settled_month``,
whoever asks: a verified payout (payouts.py), a verified repayment (payments.py), the draw, the
history import and the example fund. A loan's life (DESIGN.md, "Loan", "Loan payout"):

    awaiting payout ──payout verified──▶ active ──verified repayments reach the amount──▶ settled

The draw grants a loan awaiting payout; imported loans start active or settled. A loan is repaid
from the month after its payout was verified (imported ones: after the month granted), and is
settled when its verified repayments reach its amount, in the month of the last of them.

What is still owed is also decided here, once, under the loan's row lock (``owed_now``): every
path that makes a repayment count — a submission, the admin's record, an import, a verification
by Bitpin or by hand — asks it at that moment, so no interleaving of those paths can repay a
loan past its amount (issue 13, fault 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

from django.db import transaction
from django.db.models import Max, OuterRef, Q, Sum
from django.utils.translation import gettext as _

from fund import ledger
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, User
from fund.money import ZERO, format_usdt, quantize, round_up_to_cent

AWAITING_PAYOUT, ACTIVE, SETTLED = Loan.State.AWAITING_PAYOUT, Loan.State.ACTIVE, Loan.State.SETTLED
PENDING, VERIFIED = Payment.Status.PENDING, Payment.Status.VERIFIED
_CHUNK = 500


class LoanRefused(Exception):
    """A loan rule said no. ``message`` is for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)


# --- granting ----------------------------------------------------------------------------------------


def monthly_minimum(amount: Decimal, config: FundConfig) -> Decimal:
    """DESIGN.md, "Loan": max(minimum repayment, amount ÷ max months rounded up to the cent)."""
    return max(config.min_repayment, round_up_to_cent(amount / config.max_repayment_months))


def grant_loan(*, member: User, amount: Decimal, month: JalaliMonth, config: FundConfig) -> Loan:
    """The draw's loan: awaiting its payout (the draw only decides who receives the money)."""
    loan = Loan.objects.create(
        member=member,
        amount=amount,
        month=month,
        monthly_minimum=monthly_minimum(amount, config),
        state=AWAITING_PAYOUT,
    )
    ledger.draw_inputs_changed()
    return loan


def mark_paid_out(loan: Loan) -> bool:
    """The loan's payout is verified: awaiting payout → active, repaid from the next month on.

    Called by fund.payouts inside the payout's decision (which is taken once); a loan that is no
    longer awaiting its payout is left alone. Returns whether the loan changed.
    """
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        if loan.state != AWAITING_PAYOUT:
            return False
        loan.state = ACTIVE
        loan.paid_out_month = JalaliMonth.current()
        loan.save(update_fields=["state", "paid_out_month"])
        ledger.draw_inputs_changed()
    return True


def repayable_in(month: JalaliMonth) -> Q:
    """Loans whose repayments are due in ``month``: paid out before it (imported ones: granted before it)."""
    return Q(paid_out_month__lt=month) | Q(paid_out_month__isnull=True, month__lt=month)


def history_loan(
    loan: Loan, *, member_id: int, month: JalaliMonth, amount: Decimal, config: FundConfig, state: str, note: str
) -> Loan:
    """Fill an unsaved loan of imported (or example) history, written in bulk by the caller."""
    loan.member_id, loan.month, loan.amount = member_id, month, amount
    loan.monthly_minimum = monthly_minimum(amount, config)
    loan.state = state
    loan.note = note
    return loan


class _HistoryLoan(Protocol):
    """A loan as the history import knows it: recorded already (with ``pk``) or in the file."""

    pk: int | None
    month: JalaliMonth
    state: str


def history_states(recorded: list[_HistoryLoan], added: list[_HistoryLoan]) -> tuple[list[str], list[int]]:
    """One member's loans brought from the past: the state of each loan in ``added``, and which of
    the ``recorded`` ones to settle first (``settle_earlier_loans``).

    Only the member's latest loan can be active (one loan at a time, DESIGN.md "Loan"): earlier
    ones were settled before it was granted. The payment import confirms the states from the
    repayments (``recompute_states``).
    """
    latest = max([*recorded, *added], key=lambda loan: loan.month)
    states = [ACTIVE if loan is latest else SETTLED for loan in added]
    return states, [loan.pk for loan in recorded if loan is not latest and loan.state == ACTIVE and loan.pk]


def write_history_loans(loans: list[Loan], *, batch_size: int = 5000) -> list[Loan]:
    """Write loans ``history_loan`` filled, in bulk (the import's whole-file check or the example
    fund's arithmetic vouched for them)."""
    written = Loan.objects.bulk_create(loans, batch_size=batch_size)
    ledger.draw_inputs_changed()
    return written


# --- what is still owed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owed:
    """A locked loan's position at this moment."""

    loan: Loan
    verified: Decimal
    pending: Decimal

    def still_owed(self, *, pending_counts: bool) -> Decimal:
        counted = self.verified + (self.pending if pending_counts else ZERO)
        return max(self.loan.amount - counted, ZERO)


def owed_now(loan_ids: Iterable[int], *, excluding_payment: int | None = None) -> dict[int, Owed]:
    """Lock the loans' rows and read their verified and pending repayments: the one reading of what is
    still owed that a repayment is checked against (then counted within the same transaction).

    Rows are locked in id order, so two callers locking several loans cannot deadlock. A payment
    being verified is left out (``excluding_payment``): it is the repayment under test.
    """
    found: dict[int, Owed] = {}
    for chunk in _chunks(sorted(set(loan_ids))):
        locked = Loan.objects.select_for_update().filter(pk__in=chunk).order_by("pk")
        found.update(_positions(list(locked), excluding_payment))
    return found


def _positions(loans: list[Loan], excluding_payment: int | None = None) -> dict[int, Owed]:
    repayments = Payment.objects.filter(loan__in=loans, status__in=[VERIFIED, PENDING])
    if excluding_payment is not None:
        repayments = repayments.exclude(pk=excluding_payment)
    sums = {
        row["loan_id"]: row
        for row in repayments.values("loan_id")
        .annotate(
            verified=Sum("repayment", filter=Q(status=VERIFIED)), pending=Sum("repayment", filter=Q(status=PENDING))
        )
        .order_by()
    }
    return {
        loan.pk: Owed(
            loan,
            quantize(sums.get(loan.pk, {}).get("verified") or ZERO),
            quantize(sums.get(loan.pk, {}).get("pending") or ZERO),
        )
        for loan in loans
    }


def overpayment_refusal(owed: Owed, repayment: Decimal, *, pending_counts: bool) -> str | None:
    """Why ``repayment`` cannot count on the loan now, or None when it fits within what is still owed."""
    left = owed.still_owed(pending_counts=pending_counts)
    if repayment <= left:
        return None
    values = {"repayment": format_usdt(repayment), "owed": format_usdt(left), "granted": owed.loan.month}
    if pending_counts and owed.pending:
        return (
            _(
                "The repayment %(repayment)s is more than the %(owed)s USDT still owed on the loan of %(granted)s "
                "(payments waiting for verification count)."
            )
            % values
        )
    return (
        _("The repayment %(repayment)s is more than the %(owed)s USDT still owed on the loan of %(granted)s.") % values
    )


def check_repayments[K](
    repayments: Iterable[tuple[K, int, Decimal]], *, pending_counts: bool = True, excluding_payment: int | None = None
) -> dict[K, str]:
    """The one over-repayment check: (key, loan id, repayment) in the order they count. Returns key → refusal.

    Each repayment must fit within what is still owed once the earlier ones of the list count.
    Call it inside the transaction that then writes or counts them: the loans stay locked until it
    ends. A new payment (a submission, an import) counts the payments waiting for Bitpin, so two of
    them can never together overpay; a verification counts what is verified only.
    """
    repayments = list(repayments)
    owed = owed_now((loan_id for _key, loan_id, _amount in repayments), excluding_payment=excluding_payment)
    added: dict[int, Decimal] = {}
    refusals: dict[K, str] = {}
    for key, loan_id, amount in repayments:
        position = owed[loan_id]
        so_far = replace(position, verified=position.verified + added.get(loan_id, ZERO))
        refusal = overpayment_refusal(so_far, amount, pending_counts=pending_counts)
        if refusal is None:
            added[loan_id] = added.get(loan_id, ZERO) + amount
        else:
            refusals[key] = refusal
    return refusals


@dataclass(frozen=True)
class RepaymentDue:
    """This month's repayment on the member's active loan: what the form shows and the rule checks."""

    loan: Loan
    still_owed: Decimal
    bounds: ledger.RepaymentBounds


def repayment_due(*, member: User, month: JalaliMonth, lock: bool = False) -> RepaymentDue | None:
    """The repayment a payment for ``month`` must carry, or None when no loan is being repaid.

    Still owed = the loan's amount − its verified and pending repayments: a payment waiting for
    Bitpin already covers its share, so two payments can never together overpay the loan.
    A loan is repaid from the month after its payout was verified (DESIGN.md, "Loan payout"); an
    imported loan, paid out before Saghat knew it, from the month after it was granted.
    With ``lock`` the loan's row stays locked until the caller's transaction ends (a submission).
    """
    loan = Loan.objects.filter(repayable_in(month), member=member, state=ACTIVE).first()
    if loan is None:
        return None
    # The page reads without the lock; a submission locks and reads again.
    owed = owed_now([loan.pk])[loan.pk] if lock else _positions([loan])[loan.pk]
    still_owed = owed.still_owed(pending_counts=True)
    return RepaymentDue(loan=owed.loan, still_owed=still_owed, bounds=ledger.repayment_bounds(owed.loan, still_owed))


# --- settling ----------------------------------------------------------------------------------------


def settle_if_repaid(loan: Loan) -> bool:
    """Settle the loan once its verified repayments reach its amount (DESIGN.md, "Loan")."""
    with transaction.atomic():
        loan = Loan.objects.select_for_update().get(pk=loan.pk)
        if loan.state != ACTIVE:
            return False
        repaid = Payment.objects.filter(loan=loan, status=VERIFIED).aggregate(total=Sum("repayment"), last=Max("month"))
        if quantize(repaid["total"] or ZERO) < loan.amount:
            return False
        loan.state = SETTLED
        loan.settled_month = repaid["last"]
        loan.save(update_fields=["state", "settled_month"])
        ledger.draw_inputs_changed()
    return True


def recompute_states(loans: Iterable[Loan] | None = None) -> int:
    """Make each loan's state agree with its verified repayments (after an import). Returns how many changed.

    Settled when verified repayments reach the amount (settled in the month of the last one),
    active otherwise. Settlements are written before re-activations so that the one-active-loan
    constraint holds at every step; a member who would end up with two active loans is refused.
    A loan the loan import settled before its repayments were known gets its month here too.
    """
    with transaction.atomic():
        queryset = Loan.objects.all() if loans is None else Loan.objects.filter(pk__in=[loan.pk for loan in loans])
        last_repaid = (
            Payment.objects.filter(loan=OuterRef("pk"), status=VERIFIED).order_by("-month").values("month")[:1]
        )
        rows = list(ledger.with_repaid(queryset.select_for_update()).annotate(last_month=last_repaid).order_by("pk"))
        settle = [loan for loan in rows if loan.repaid >= loan.amount and loan.state != SETTLED]
        # A loan awaiting payout is not being repaid yet: only a settled one can reopen.
        reopen = [loan for loan in rows if loan.repaid < loan.amount and loan.state == SETTLED]
        undated = [loan for loan in rows if loan.repaid >= loan.amount and loan.state == SETTLED and loan.last_month]
        undated = [loan for loan in undated if loan.settled_month is None]
        _check_one_active_per_member(rows)
        for loan in settle:
            loan.state, loan.settled_month = SETTLED, JalaliMonth.parse(loan.last_month)
            loan.save(update_fields=["state", "settled_month"])
        for loan in reopen:
            loan.state, loan.settled_month = ACTIVE, None
            loan.save(update_fields=["state", "settled_month"])
        for loan in undated:
            # Not a change of state: the month of a settlement the loan import could not know yet.
            Loan.objects.filter(pk=loan.pk).update(settled_month=loan.last_month)
        if settle or reopen:
            ledger.draw_inputs_changed()
    return len(settle) + len(reopen)


def _check_one_active_per_member(rows: list[Loan]) -> None:
    """Refuse, before writing anything, a history in which a member owes on two loans at once."""
    owing = [loan for loan in rows if loan.repaid < loan.amount]
    others = Loan.objects.filter(state__in=Loan.OPEN_STATES, member_id__in={loan.member_id for loan in owing})
    owners: dict[int, list[Loan]] = {}
    for loan in [*others.exclude(pk__in=[loan.pk for loan in rows]), *owing]:
        owners.setdefault(loan.member_id, []).append(loan)
    for member_loans in owners.values():
        if len(member_loans) > 1:
            months = ", ".join(sorted(str(loan.month) for loan in member_loans))
            message = _("%(member)s would have more than one loan not yet repaid (granted %(months)s).")
            member = User.objects.get(pk=member_loans[0].member_id)
            raise LoanRefused(message % {"member": member.username, "months": months})


def settle_earlier_loans(loan_ids: list[int]) -> None:
    """The loan import: a member's earlier loans were finished before the later one it writes
    (one loan at a time). Settled now, before the new loan is written (the one-active-loan
    constraint); their month comes with the repayments (``recompute_states``)."""
    for chunk in _chunks(loan_ids):
        Loan.objects.filter(pk__in=chunk).update(state=SETTLED)
    if loan_ids:
        ledger.draw_inputs_changed()


def settle_in_history(loan: Loan, month: JalaliMonth) -> None:
    """An unsaved or bulk-written loan of generated history, repaid in ``month``: see ``write_settlements``."""
    loan.state, loan.settled_month = SETTLED, month


def write_settlements(loans: list[Loan]) -> None:
    """Write the settlements ``settle_in_history`` marked (the example fund, in bulk)."""
    Loan.objects.bulk_update(loans, ["state", "settled_month"], batch_size=5000)
    ledger.draw_inputs_changed()


def loans_of_members(member_ids: Iterable[int]) -> list[Loan]:
    loans: list[Loan] = []
    for chunk in _chunks(sorted(set(member_ids))):
        loans += list(Loan.objects.filter(member_id__in=chunk).only("pk"))
    return loans


def _chunks(items: list, size: int = _CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
