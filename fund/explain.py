"""How a member's draw factors follow from their statement (DESIGN.md, "Monthly draw", §3).

The member page links the member's own row of a draw table to their statement with the draw's
month; this module says, for each factor, which statement lines it counts and what they add up
to, using the factor definitions of the draw: payments up to and including the draw month, loans
granted before it. Pure: it reads the statement rows it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.utils.translation import gettext_lazy as _

from fund.jalali import JalaliMonth
from fund.money import ZERO, canonical_amount
from fund.statement import FEE, LOAN, REPAYMENT, StatementRow

FACTOR_LABELS: dict[str, Any] = {
    "balance": _("Balance"),
    "months_without_loan": _("Months without loan"),
    "loan_payment_count": _("Repayment months"),
    "last_payment_amount": _("Last payment"),
    "previous_loan_amount": _("Previous loan"),
    "total_loan_amount_received": _("Total borrowed"),
    "total_loans_received": _("Loans"),
}
FACTOR_RULES: dict[str, Any] = {
    "balance": _("the sum of your membership fees up to and including the draw month"),
    "months_without_loan": _("the number of your monthly payments without a loan repayment, up to the draw month"),
    "loan_payment_count": _("the number of your monthly payments with a loan repayment, up to the draw month"),
    "last_payment_amount": _("fee plus repayment of your latest payment up to the draw month"),
    "previous_loan_amount": _("the amount of your latest loan granted before the draw month"),
    "total_loan_amount_received": _("the sum of your loans granted before the draw month"),
    "total_loans_received": _("the number of your loans granted before the draw month"),
}


@dataclass
class FactorExplanation:
    name: str
    value: str  # from the statement
    in_report: str | None  # what the draw's row says, when there is one
    lines: list[int] = field(default_factory=list)  # positions in the statement, from 1

    @property
    def label(self) -> str:
        return str(FACTOR_LABELS[self.name])

    @property
    def rule(self) -> str:
        return str(FACTOR_RULES[self.name])

    @property
    def agrees(self) -> bool:
        return self.in_report is None or Decimal(self.in_report) == Decimal(self.value)


@dataclass
class Explanation:
    month: JalaliMonth
    factors: list[FactorExplanation]
    counted: dict[int, list[str]]  # statement line (from 1) → labels of the factors it counts in
    line_count: int = 0

    @cached_property
    def marks(self) -> list[str]:
        """For each statement line, in order: the factors it counts in, as one text."""
        return [", ".join(self.counted.get(n, [])) for n in range(1, self.line_count + 1)]


def explain(rows: list[StatementRow], month: JalaliMonth, report_row: dict[str, Any] | None) -> Explanation:
    numbered = list(enumerate(rows, start=1))
    fees = [(n, r) for n, r in numbered if r.kind == FEE and r.month <= month]
    repayments = [(n, r) for n, r in numbered if r.kind == REPAYMENT and r.month <= month]
    loans = [(n, r) for n, r in numbered if r.kind == LOAN and r.month < month]
    repaid_months = {r.month for _n, r in repayments}
    without = [(n, r) for n, r in fees if r.month not in repaid_months]
    last_month = max((r.month for _n, r in fees), default=None)
    last = [(n, r) for n, r in fees + repayments if r.month == last_month]
    latest_loan = max(loans, key=lambda pair: (pair[1].month, pair[0]), default=None)

    def total(pairs: list[tuple[int, StatementRow]]) -> Decimal:
        return sum((r.amount for _n, r in pairs), ZERO)

    found = {
        "balance": (canonical_amount(total(fees)), fees),
        "months_without_loan": (str(len(without)), without),
        "loan_payment_count": (str(len(repayments)), repayments),
        "last_payment_amount": (canonical_amount(total(last)), last),
        "previous_loan_amount": (
            canonical_amount(latest_loan[1].amount) if latest_loan else "0",
            [latest_loan] if latest_loan else [],
        ),
        "total_loan_amount_received": (canonical_amount(total(loans)), loans),
        "total_loans_received": (str(len(loans)), loans),
    }
    factors, counted = [], {}
    for name, (value, pairs) in found.items():
        in_report = None if report_row is None else str(report_row.get(name))
        factors.append(FactorExplanation(name, value, in_report, sorted(n for n, _r in pairs)))
        for n, _r in pairs:
            counted.setdefault(n, []).append(str(FACTOR_LABELS[name]))
    return Explanation(month=month, factors=factors, counted=counted, line_count=len(rows))
