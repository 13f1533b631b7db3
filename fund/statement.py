"""A member's statement: every movement of their money, month by month, with running figures.

Movements are the member's verified membership fees, verified loan repayments, the loans
granted to them and, for a member who left, the verified refund of their balance (DESIGN.md, "A
member leaving"). Pending and rejected payments are not movements (nothing counts until verified,
DESIGN.md "Payment", rule 7). Two queries, whatever the length of the history.

The member page and the admin both call ``statement_rows(member)`` and ``statement_csv(member)``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import DateTimeField, IntegerField, Value
from django.utils.translation import gettext_lazy as _

from fund.jalali import JalaliMonth
from fund.models import Loan, Payment, Payout, User
from fund.money import ZERO, format_usdt
from fund.text import safe_cell

FEE, REPAYMENT, LOAN, REFUND = "fee", "repayment", "loan", "refund"
KIND_LABELS = {
    FEE: _("membership fee"),
    REPAYMENT: _("loan repayment"),
    LOAN: _("loan granted"),
    REFUND: _("refund on leaving"),
}
CSV_HEADER = ["month", "movement", "amount", "balance", "loan_remaining", "bitpin_id"]

# Within a month: the fee and repayments on older loans come first, then the loan the month's draw
# granted (a draw runs only after everyone has paid), then any repayment on that new loan.
_ORDER = {FEE: 0, REPAYMENT: 1, LOAN: 2, REFUND: 4}
_REPAYMENT_ON_NEW_LOAN = 3


@dataclass(frozen=True)
class StatementRow:
    month: JalaliMonth
    kind: str
    amount: Decimal
    balance: Decimal  # the member's balance (verified fees) after this movement
    loan_remaining: Decimal  # what the member still owes on all loans after this movement
    reference: str = ""  # the Bitpin payment id of a fee or repayment, the transfer id of a refund

    @property
    def label(self) -> str:
        return str(KIND_LABELS[self.kind])


@dataclass(frozen=True)
class StatementTotals:
    fees: Decimal
    repayments: Decimal
    loans: Decimal
    balance: Decimal
    loan_remaining: Decimal
    refunds: Decimal = ZERO


@dataclass(frozen=True)
class _Movement:
    key: tuple[int, int, int]
    kind: str
    month: JalaliMonth
    amount: Decimal
    reference: str = ""


def _movements(member: User) -> list[_Movement]:
    movements = []
    payments = Payment.objects.filter(member=member, status=Payment.Status.VERIFIED).select_related("loan")
    for payment in payments:
        month, ref = payment.month, payment.bitpin_id
        movements.append(_Movement((month.index, _ORDER[FEE], payment.pk), FEE, month, payment.fee, ref))
        if payment.repayment > ZERO:
            on_new_loan = payment.loan is not None and payment.loan.month == month
            order = _REPAYMENT_ON_NEW_LOAN if on_new_loan else _ORDER[REPAYMENT]
            movements.append(_Movement((month.index, order, payment.pk), REPAYMENT, month, payment.repayment, ref))
    for pk, amount, month, verified_at, reference in _loans_and_refunds(member):
        if month is not None:
            month = JalaliMonth.from_int(month) if isinstance(month, int) else month
            movements.append(_Movement((month.index, _ORDER[LOAN], pk), LOAN, month, amount))
        else:
            month = JalaliMonth.from_datetime(verified_at)
            movements.append(_Movement((month.index, _ORDER[REFUND], pk), REFUND, month, amount, reference))
    return sorted(movements, key=lambda movement: movement.key)


def _loans_and_refunds(member: User) -> list[tuple]:
    """The member's loans (with their month) and verified refunds (with their moment): one query."""
    loans = (
        Loan.objects.filter(member=member)
        .order_by()
        .values_list("pk", "amount", "month", Value(None, output_field=DateTimeField()), Value(""))
    )
    refunds = (
        Payout.objects.filter(member=member, kind=Payout.Kind.REFUND, status=Payout.Status.VERIFIED)
        .order_by()
        .values_list("pk", "amount", Value(None, output_field=IntegerField()), "verified_at", "transfer_id")
    )
    return list(loans.union(refunds, all=True))


def statement_rows(member: User) -> list[StatementRow]:
    """The member's movements, oldest first, each with the balance and loan remaining after it."""
    balance = owed = ZERO
    rows = []
    for movement in _movements(member):
        if movement.kind == FEE:
            balance += movement.amount
        elif movement.kind == REFUND:
            balance -= movement.amount
        elif movement.kind == REPAYMENT:
            owed -= movement.amount
        else:
            owed += movement.amount
        rows.append(StatementRow(movement.month, movement.kind, movement.amount, balance, owed, movement.reference))
    return rows


def statement_totals(rows: list[StatementRow]) -> StatementTotals:
    def total(kind: str) -> Decimal:
        return sum((row.amount for row in rows if row.kind == kind), ZERO)

    last = rows[-1] if rows else None
    return StatementTotals(
        fees=total(FEE),
        repayments=total(REPAYMENT),
        loans=total(LOAN),
        refunds=total(REFUND),
        balance=last.balance if last else ZERO,
        loan_remaining=last.loan_remaining if last else ZERO,
    )


def _plain(amount: Decimal) -> str:
    """Amounts in the CSV: no thousands separator, so that spreadsheets read them as numbers."""
    return format_usdt(amount, grouped=False)


def statement_csv(member: User) -> str:
    """The statement as CSV text: stable English column names and movement codes, months as 1404/09."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in statement_rows(member):
        # Every cell through the one neutraliser of exports: a Bitpin id is typed by a member.
        cells = [str(row.month), row.kind, _plain(row.amount), _plain(row.balance), _plain(row.loan_remaining)]
        writer.writerow([safe_cell(cell) for cell in [*cells, row.reference]])
    return out.getvalue()


def statement_filename(member: User) -> str:
    return f"saghat-statement-{member.username}.csv"
