"""The past-loans import, and the loans and repayments the whole-file checks read."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export.fields import Field

from fund.imports.base import BATCH_SIZE, ROW, HistoryResource, RowPlan, chunks, first_rows
from fund.imports.cells import AmountWidget, MemberWidget, MonthWidget
from fund.jalali import JalaliMonth
from fund.loans import history_loan, history_states, settle_earlier_loans, write_history_loans
from fund.models import FundConfig, Loan, Payment
from fund.money import ZERO, format_usdt

# --- loans ------------------------------------------------------------------------------------------


@dataclass
class KnownLoan:
    """A loan as the whole-file check sees it: from the database or from the file."""

    member_id: int
    month: JalaliMonth
    amount: Decimal
    pk: int | None = None
    state: str = Loan.State.ACTIVE
    repaid: Decimal = ZERO  # running total while repayments are walked in month order
    paid_out_month: JalaliMonth | None = None

    def owed(self) -> Decimal:
        return self.amount - self.repaid

    def repayable_in(self, month: JalaliMonth) -> bool:
        """As fund.loans.repayable_in: after its verified payout (imported: after the month granted)."""
        if self.state == Loan.State.AWAITING_PAYOUT:
            return False
        return (self.paid_out_month or self.month) < month


@dataclass(frozen=True)
class Repayment:
    loan_id: int
    member_id: int
    month: JalaliMonth
    amount: Decimal


def loans_of(member_ids: Iterable[int]) -> dict[int, list[KnownLoan]]:
    loans: dict[int, list[KnownLoan]] = defaultdict(list)
    for chunk in chunks(sorted(set(member_ids))):
        for pk, member_id, month, amount, state, paid_out in Loan.objects.filter(member_id__in=chunk).values_list(
            "pk", "member_id", "month", "amount", "state", "paid_out_month"
        ):
            loans[member_id].append(KnownLoan(member_id, month, amount, pk=pk, state=state, paid_out_month=paid_out))
    return loans


def repayments_of(member_ids: Iterable[int]) -> list[Repayment]:
    """Verified repayments already recorded for these members (only verified money counts)."""
    found = []
    for chunk in chunks(sorted(set(member_ids))):
        rows = Payment.objects.filter(
            member_id__in=chunk, status=Payment.Status.VERIFIED, repayment__gt=0, loan__isnull=False
        ).values_list("loan_id", "member_id", "month", "repayment")
        found.extend(Repayment(*row) for row in rows)
    return found


class LoanResource(HistoryResource):
    kind = "loans"
    HEADERS = {
        "member": ("username", "user", "عضو", "نام کاربری"),
        "month": ("month granted", "granted", "ماه", "ماه دریافت", "ماه اعطا"),
        "amount": ("loan", "loan amount", "مبلغ", "مبلغ وام"),
    }
    REQUIRED = ("member", "month", "amount")

    member = Field(attribute="member", column_name="member", widget=MemberWidget())
    month = Field(attribute="month", column_name="month", widget=MonthWidget())
    amount = Field(attribute="amount", column_name="amount", widget=AmountWidget(positive=True))

    class Meta:
        model = Loan
        name = gettext_lazy("Loans")
        fields = ("member", "month", "amount")
        export_order = fields

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.to_settle: list[int] = []
        self.config = FundConfig.load()

    def check_file(self, plans: list[RowPlan]) -> None:
        valid = [plan for plan in plans if "member" in plan.values and "month" in plan.values]
        first_rows(valid, lambda plan: (plan.values["member"].pk, plan.values["month"]), _("the same member and month"))
        member_ids = {plan.values["member"].pk for plan in valid}
        loans = loans_of(member_ids)
        for plan in valid:
            member, month = plan.values["member"], plan.values["month"]
            if any(loan.month == month for loan in loans[member.pk]):
                plan.fail(ROW, _("“%(name)s” already has a loan granted in %(month)s.") % {
                    "name": member.username, "month": month})  # fmt: skip
        self._check_still_repaid(valid, loans, repayments_of(member_ids))
        self._decide_states([plan for plan in valid if plan.ok], loans)

    def _check_still_repaid(
        self, plans: list[RowPlan], loans: dict[int, list[KnownLoan]], repayments: list[Repayment]
    ) -> None:
        """A second loan while one is still being repaid, as far as the recorded payments show.

        Payments may be imported after the loans, so an earlier loan counts as still being repaid
        in month M only when it was not paid off before M and repayments to it are recorded in M
        or later. Missing evidence is checked when the payments are imported.
        """
        by_loan: dict[int, list[Repayment]] = defaultdict(list)
        for repayment in repayments:
            by_loan[repayment.loan_id].append(repayment)
        for plan in plans:
            member, month = plan.values["member"], plan.values["month"]
            for loan in loans[member.pk]:
                paid = by_loan.get(loan.pk or 0, [])
                before = sum((r.amount for r in paid if r.month < month), ZERO)
                if loan.month < month and before < loan.amount and any(r.month >= month for r in paid):
                    plan.fail(ROW, _(
                        "“%(name)s” was still repaying the loan of %(earlier)s in %(month)s "
                        "(its repayments continue after that); a member repays one loan at a time."
                    ) % {"name": member.username, "earlier": loan.month, "month": month})  # fmt: skip

    def _decide_states(self, plans: list[RowPlan], loans: dict[int, list[KnownLoan]]) -> None:
        """Each new loan's state, and the earlier loans to settle first: the loan module decides."""
        added: dict[int, list[RowPlan]] = defaultdict(list)
        for plan in plans:
            added[plan.values["member"].pk].append(plan)
        self.to_settle = []
        for member_id, member_plans in added.items():
            new_loans = [KnownLoan(member_id, plan.values["month"], plan.values["amount"]) for plan in member_plans]
            states, to_settle = history_states(loans[member_id], new_loans)
            for plan, state in zip(member_plans, states, strict=True):
                plan.values["state"] = state
            self.to_settle += to_settle

    def prepare_write(self) -> None:
        # The one-active-loan constraint: settle the earlier loan before the later one is written.
        settle_earlier_loans(self.to_settle)

    def write(self, rows: list[dict[str, Any]]) -> None:
        loans = []
        for values in rows:
            loans.append(Loan())
            self.fill(loans[-1], values)
        write_history_loans(loans, batch_size=BATCH_SIZE)

    def fill(self, instance: Loan, values: dict[str, Any]) -> None:
        history_loan(
            instance, member_id=values["member"].pk, month=values["month"], amount=values["amount"],
            config=self.config, state=values.get("state", Loan.State.ACTIVE), note=self.note,
        )  # fmt: skip

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        return queryset.select_related("member")

    def summary(self, good: list[RowPlan]) -> list[str]:
        if not good:
            return [_("No loans.")]
        months = sorted(plan.values["month"] for plan in good)
        total = sum((plan.values["amount"] for plan in good), ZERO)
        return [
            _("%(count)d loans, %(total)s USDT in all, granted %(first)s–%(last)s.")
            % {"count": len(good), "total": format_usdt(total), "first": months[0], "last": months[-1]}
        ]
