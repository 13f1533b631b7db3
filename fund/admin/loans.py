"""Loans in the back office: granted by draws (or imported), so the operator reads them here.

Amount, month and state are not edited by hand: a loan's state follows its verified repayments
(the payment services settle it). Only the note can be changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display

from fund import ledger
from fund.admin.base import FundModelAdmin, ReadOnlyInlineMixin
from fund.admin.display import badge, change_link, money, month_label, person
from fund.admin.filters import JalaliMonthFilter
from fund.admin.imports import LoanImportExportMixin
from fund.models import Loan, Payment

STATE_LABELS = {Loan.State.ACTIVE: "warning", Loan.State.SETTLED: "success"}


class RepaymentInline(ReadOnlyInlineMixin, TabularInline):
    model = Payment
    fk_name = "loan"
    verbose_name = _("repayment")
    verbose_name_plural = _("repayments (newest first)")
    fields = ("month_display", "repayment_display", "status", "bitpin_id")
    readonly_fields = fields
    ordering = ("-month", "-id")

    @display(description=_("month"))
    def month_display(self, obj: Payment) -> Any:
        return change_link(obj, month_label(obj.month))

    @display(description=_("loan repayment (USDT)"))
    def repayment_display(self, obj: Payment) -> Any:
        return money(obj.repayment)


@admin.register(Loan)
class LoanAdmin(FundModelAdmin, LoanImportExportMixin):
    list_display = (
        "member_display",
        "month_display",
        "amount_display",
        "repaid_display",
        "remaining_display",
        "minimum_display",
        "state_display",
    )
    list_filter = (JalaliMonthFilter, ("state", ChoicesDropdownFilter))
    search_fields = ("member__username", "member__first_name", "member__last_name")
    list_select_related = ("member",)
    list_per_page = 50
    ordering = ("-month", "-id")
    inlines = (RepaymentInline,)
    fields = (
        "member",
        "month_display",
        ("amount_display", "minimum_display"),
        ("repaid_display", "remaining_display"),
        "state_display",
        "settled_display",
        "note",
    )
    readonly_fields = (
        "member",
        "month_display",
        "amount_display",
        "minimum_display",
        "repaid_display",
        "remaining_display",
        "state_display",
        "settled_display",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Loan]:
        return ledger.with_repaid(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # loans come from draws and imports (DESIGN.md, "Loan")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @display(description=_("member"), ordering="member__username")
    def member_display(self, obj: Loan) -> Any:
        return person(obj.member)

    @display(description=_("month granted"), ordering="month")
    def month_display(self, obj: Loan) -> str:
        return month_label(obj.month)

    @display(description=_("amount (USDT)"), ordering="amount")
    def amount_display(self, obj: Loan) -> Any:
        return money(obj.amount)

    @display(description=_("repaid (USDT)"), ordering="repaid")
    def repaid_display(self, obj: Loan) -> Any:
        return money(obj.repaid)

    @display(description=_("remaining (USDT)"), ordering="remaining")
    def remaining_display(self, obj: Loan) -> Any:
        return money(obj.remaining)

    @display(description=_("monthly minimum (USDT)"), ordering="monthly_minimum")
    def minimum_display(self, obj: Loan) -> Any:
        return money(obj.monthly_minimum)

    @display(description=_("state"), ordering="state")
    def state_display(self, obj: Loan) -> Any:
        return badge(obj.state, obj.get_state_display(), STATE_LABELS)

    @display(description=_("month settled"))
    def settled_display(self, obj: Loan) -> str:
        return month_label(obj.settled_month)
