"""The past-payments import: each repayment tied to the loan it repays, then loan states recomputed."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export.fields import Field

from fund import proof
from fund.imports.base import LOOKUP_ALL_ABOVE, ROW, HistoryResource, RowPlan, chunks, first_rows
from fund.imports.cells import AmountWidget, BitpinIdWidget, MemberWidget, MonthWidget
from fund.imports.loans import KnownLoan, Repayment, loans_of, repayments_of
from fund.jalali import JalaliMonth
from fund.loans import check_repayments, loans_of_members, recompute_states
from fund.models import Payment
from fund.money import ZERO, format_usdt
from fund.payments import history_payment, write_history_payments

# --- payments ---------------------------------------------------------------------------------------


class PaymentResource(HistoryResource):
    kind = "payments"
    HEADERS = {
        "member": ("username", "user", "عضو", "نام کاربری"),
        "month": ("ماه",),
        "fee": ("membership fee", "membership_fee", "حق عضویت", "حق_عضویت"),
        "repayment": ("loan repayment", "loan_repayment", "instalment", "installment", "قسط", "قسط وام", "بازپرداخت"),
        "bitpin_id": ("bitpin", "bitpin id", "bitpin payment id", "payment id", "شناسه بیت پین", "شناسه پرداخت"),
    }
    REQUIRED = ("member", "month", "fee")

    member = Field(attribute="member", column_name="member", widget=MemberWidget())
    month = Field(attribute="month", column_name="month", widget=MonthWidget())
    fee = Field(attribute="fee", column_name="fee", widget=AmountWidget())
    repayment = Field(attribute="repayment", column_name="repayment", widget=AmountWidget(required=False))
    bitpin_id = Field(attribute="bitpin_id", column_name="bitpin_id", widget=BitpinIdWidget())

    class Meta:
        model = Payment
        name = gettext_lazy("Payments")
        fields = ("member", "month", "fee", "repayment", "bitpin_id")
        export_order = fields

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repaying_members: set[int] = set()
        self.loan_months: dict[int, JalaliMonth] = {}
        self.now = timezone.now()

    def check_file(self, plans: list[RowPlan]) -> None:
        for plan in plans:
            if plan.values.get("fee") == ZERO and plan.values.get("repayment") == ZERO:
                plan.fail(ROW, _("A payment needs a membership fee or a loan repayment."))
        for plan in plans:
            member = plan.values.get("member")
            if member is not None and member.leaving_since is not None:
                # The refund was the balance when they left: a fee added later would never be refunded.
                plan.fail("member", _(
                    "“%(name)s” has left the fund or is leaving: their history is closed, "
                    "since their refund was computed from it."
                ) % {"name": member.username})  # fmt: skip
        valid = [plan for plan in plans if "member" in plan.values and "month" in plan.values]
        first_rows(valid, lambda plan: (plan.values["member"].pk, plan.values["month"]), _("the same member and month"))
        self._check_already_paid(valid)
        self._check_bitpin_ids(plans)
        self._tie_repayments([plan for plan in valid if plan.ok])
        # Under the loans' row locks, with the payments still waiting for Bitpin: the walk above
        # read the verified history only (fault 1 of issue 13).
        tied = sorted(
            (plan for plan in valid if plan.ok and plan.values.get("loan_id")), key=lambda p: p.values["month"]
        )
        refusals = check_repayments((plan.number, plan.values["loan_id"], plan.values["repayment"]) for plan in tied)
        for plan in tied:
            if plan.number in refusals:
                plan.fail("repayment", refusals[plan.number])

    def _check_already_paid(self, plans: list[RowPlan]) -> None:
        if not plans:
            return
        months = [plan.values["month"] for plan in plans]
        recorded = Payment.objects.exclude(status=Payment.Status.REJECTED).filter(
            month__gte=min(months), month__lte=max(months)
        )
        paid: set[tuple[int, JalaliMonth]] = set()
        # Only the file's members: a fund's other payments (millions in a large one) cannot clash.
        for chunk in chunks(sorted({plan.values["member"].pk for plan in plans})):
            paid.update(recorded.filter(member_id__in=chunk).values_list("member_id", "month"))
        for plan in plans:
            member, month = plan.values["member"], plan.values["month"]
            if (member.pk, month) in paid:
                plan.fail(ROW, _("“%(name)s” already has a payment for %(month)s.") % {
                    "name": member.username, "month": month})  # fmt: skip

    def _check_bitpin_ids(self, plans: list[RowPlan]) -> None:
        first = first_rows(plans, lambda plan: plan.values.get("bitpin_id") or None, _("the same Bitpin id"))
        in_use = Payment.objects.exclude(status=Payment.Status.REJECTED).exclude(bitpin_id="")
        used: set[str] = set()
        if len(first) > LOOKUP_ALL_ABOVE:
            # One pass over the ids in use beats hundreds of IN (…) queries for a large file.
            used.update(in_use.values_list("bitpin_id", flat=True).iterator(chunk_size=10_000))
        for chunk in chunks(list(first)) if len(first) <= LOOKUP_ALL_ABOVE else ():
            used.update(in_use.filter(bitpin_id__in=chunk).values_list("bitpin_id", flat=True))
        for plan in plans:
            if plan.values.get("bitpin_id") in used:
                plan.fail("bitpin_id", _("The Bitpin id “%(id)s” is already used by another payment.") % {
                    "id": plan.values["bitpin_id"]})  # fmt: skip

    def _tie_repayments(self, plans: list[RowPlan]) -> None:
        """Tie each repayment to the loan active in its month, walking each member's months in order.

        The loan active in month M: granted before M (a loan is repaid from the month after it
        is granted) and not yet repaid by the repayments of the months before M — those already
        recorded (verified) and the earlier rows of this file. More than one such loan breaks the
        rule of one loan at a time.
        """
        repaying = [plan for plan in plans if plan.values["repayment"] > ZERO]
        self.repaying_members = {plan.values["member"].pk for plan in repaying}
        loans = loans_of(self.repaying_members)
        self.loan_months = {loan.pk: loan.month for member_loans in loans.values() for loan in member_loans if loan.pk}
        by_pk = {loan.pk: loan for member_loans in loans.values() for loan in member_loans}
        events: dict[int, list[tuple[JalaliMonth, Repayment | RowPlan]]] = defaultdict(list)
        for recorded in repayments_of(self.repaying_members):
            events[recorded.member_id].append((recorded.month, recorded))
        for plan in repaying:
            events[plan.values["member"].pk].append((plan.values["month"], plan))
        for member_id, member_events in events.items():
            last_row: RowPlan | None = None
            for month, event in sorted(member_events, key=lambda item: item[0]):
                if isinstance(event, Repayment):
                    if event.loan_id in by_pk:
                        by_pk[event.loan_id].repaid += event.amount
                else:
                    self._tie(event, month, loans[member_id])
                    last_row = event
            # Once a repayment of this member is refused the final positions mean nothing.
            if last_row is not None and all(plan.ok for _month, plan in member_events if isinstance(plan, RowPlan)):
                self._check_one_loan_owed(last_row, loans[member_id])

    def _tie(self, plan: RowPlan, month: JalaliMonth, loans: list[KnownLoan]) -> None:
        name, repayment = plan.values["member"].username, plan.values["repayment"]
        open_loans = [loan for loan in loans if loan.repayable_in(month) and loan.owed() > ZERO]
        if not open_loans:
            plan.fail("repayment", _(
                "“%(name)s” had no loan being repaid in %(month)s "
                "(a loan is repaid from the month after it is paid out, until it is paid off)."
            ) % {"name": name, "month": month})  # fmt: skip
        elif len(open_loans) > 1:
            granted = ", ".join(str(loan.month) for loan in sorted(open_loans, key=lambda loan: loan.month))
            plan.fail("repayment", _(
                "“%(name)s” owed on more than one loan in %(month)s (granted %(granted)s); "
                "a member repays one loan at a time."
            ) % {"name": name, "month": month, "granted": granted})  # fmt: skip
        elif repayment > open_loans[0].owed():
            plan.fail("repayment", _(
                "The repayment %(repayment)s is more than the %(owed)s USDT still owed on the loan of %(granted)s."
            ) % {"repayment": format_usdt(repayment), "owed": format_usdt(open_loans[0].owed()),
                 "granted": open_loans[0].month})  # fmt: skip
        else:
            open_loans[0].repaid += repayment
            plan.values["loan_id"] = open_loans[0].pk

    def _check_one_loan_owed(self, last_row: RowPlan, loans: list[KnownLoan]) -> None:
        """After the file a member may still owe on one loan at most (the one-active-loan rule)."""
        owed = sorted((loan for loan in loans if loan.owed() > ZERO), key=lambda loan: loan.month)
        if len(owed) > 1:
            last_row.fail(ROW, _(
                "After this file “%(name)s” would still owe on %(count)d loans (granted %(granted)s): "
                "the repayments that finish the loan of %(first)s are missing."
            ) % {"name": last_row.values["member"].username, "count": len(owed),
                 "granted": ", ".join(str(loan.month) for loan in owed), "first": owed[0].month})  # fmt: skip

    def write(self, rows: list[dict[str, Any]]) -> None:
        # The current month's seed commitment comes before any of its payments, imported ones too
        # (DESIGN.md, "Proof of the draw"): members can see it before the month's draw.
        if any(values["month"] == self.latest for values in rows):
            proof.ensure_commitment(self.latest, made_by="import")
        write_history_payments(self.history_row(values) for values in rows)

    def history_row(self, values: dict[str, Any]) -> dict[str, Any]:
        # Ids, not objects: the relation descriptors cost more than the rest of the row.
        return history_payment(
            member_id=values["member"].pk, month=values["month"], fee=values["fee"], repayment=values["repayment"],
            loan_id=values.get("loan_id"), bitpin_id=values["bitpin_id"], note=self.note,
            recorded_by_id=self.user.pk if self.user else None, at=self.now,
        )  # fmt: skip

    def fill(self, instance: Payment, values: dict[str, Any]) -> None:
        for name, value in self.history_row(values).items():
            setattr(instance, name, value)

    def after_write(self) -> None:
        if self.repaying_members:
            recompute_states(loans_of_members(self.repaying_members))

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        # History is what was verified: pending and rejected payments would come back as verified.
        return queryset.filter(status=Payment.Status.VERIFIED).select_related("member")

    def preview_headers(self) -> list[str]:
        return [*super().preview_headers(), _("repays the loan of")]

    def preview_row(self, values: dict[str, Any]) -> list[str]:
        loan_month = self.loan_months.get(values.get("loan_id") or 0)
        return [*super().preview_row(values), str(loan_month) if loan_month else ""]

    def summary(self, good: list[RowPlan]) -> list[str]:
        if not good:
            return [_("No payments.")]
        months = sorted(plan.values["month"] for plan in good)
        fees = sum((plan.values["fee"] for plan in good), ZERO)
        repaid = [plan.values["repayment"] for plan in good if plan.values["repayment"] > ZERO]
        members = {plan.values["member"].pk for plan in good}
        return [
            _("%(count)d payments from %(members)d members, %(first)s–%(last)s.")
            % {"count": len(good), "members": len(members), "first": months[0], "last": months[-1]},
            _("Membership fees %(fees)s USDT; %(repayments)d loan repayments, %(repaid)s USDT.")
            % {"fees": format_usdt(fees), "repayments": len(repaid), "repaid": format_usdt(sum(repaid, ZERO))},
        ]
