"""Loans in the back office: granted by draws (or imported), so the operator reads them here.

Amount, month and state are not edited by hand: a loan waits for its payout until the operator's
recorded transfer is verified (fund.payouts), then follows its verified repayments (the payment
services settle it). Only the note can be changed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminTextInputWidget

from fund import ledger, payouts
from fund.admin.base import FundModelAdmin, ReadOnlyInlineMixin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import badge, change_link, money, month_label, person
from fund.admin.filters import JalaliMonthFilter
from fund.admin.imports import LoanImportExportMixin
from fund.admin.payouts import PayoutInline
from fund.models import Loan, Payment, Payout
from fund.money import AmountFormField
from fund.templatetags.saghat import usdt

STATE_LABELS = {Loan.State.AWAITING_PAYOUT: "info", Loan.State.ACTIVE: "warning", Loan.State.SETTLED: "success"}


class PayoutForm(forms.Form):
    """What the operator sent from the fund's wallet: the rules are fund.payouts'."""

    transfer_id = forms.CharField(
        label=_("Bitpin transfer id"),
        max_length=100,
        widget=UnfoldAdminTextInputWidget(attrs={"dir": "ltr", "autocomplete": "off"}),
        help_text=_("The id Bitpin shows for the transfer you sent from the fund's wallet."),
    )
    amount = AmountFormField(
        label=_("Amount sent (USDT)"),
        widget=UnfoldAdminTextInputWidget(attrs={"dir": "ltr"}),
        help_text=_("It must be the loan's amount."),
    )


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
    inlines = (PayoutInline, RepaymentInline)
    actions_row = ("record_payout_row",)
    actions_detail = ("record_payout",)
    fields = (
        "member",
        "month_display",
        ("amount_display", "minimum_display"),
        ("repaid_display", "remaining_display"),
        ("state_display", "paid_out_display"),
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
        "paid_out_display",
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

    @display(description=_("month paid out"))
    def paid_out_display(self, obj: Loan) -> str:
        if obj.state == Loan.State.AWAITING_PAYOUT:
            return str(_("not yet"))
        return month_label(obj.paid_out_month or obj.month)

    # --- recording the payout (DESIGN.md, "Loan payout") --------------------------------------------

    def has_payout_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        """The "Record payout" button: for operators, on a loan awaiting payout with none in play."""
        if not self.has_operate_permission(request):
            return False
        if object_id is None:
            return True
        in_play = Payout.objects.filter(loan=OuterRef("pk")).exclude(status=Payout.Status.REJECTED)
        return Loan.objects.filter(pk=object_id, state=Loan.State.AWAITING_PAYOUT).filter(~Exists(in_play)).exists()

    @action(description=_("Record payout"), icon="send_money", permissions=["payout"], url_path="record-payout")
    def record_payout(self, request: HttpRequest, object_id: str) -> HttpResponse:
        loan = get_object_or_404(Loan.objects.select_related("member"), pk=object_id)
        if not self.has_payout_permission(request, loan.pk):
            message = _("Only a loan awaiting payout, with no payout being checked, can have its payout recorded.")
            self.message_user(request, message, messages.WARNING)
            return redirect("admin:fund_loan_change", loan.pk)
        form = PayoutForm(request.POST if is_confirmed(request) else None, initial={"amount": loan.amount})
        if form.is_valid():
            try:
                payouts.record_loan_payout(
                    loan=loan,
                    transfer_id=form.cleaned_data["transfer_id"],
                    amount=form.cleaned_data["amount"],
                    by=request.user,
                )
            except payouts.PayoutRefused as refused:
                form.add_error(refused.field if refused.field in form.fields else None, refused.message)
            else:
                self.message_user(
                    request,
                    _(
                        "The payout was recorded; it is checked with Bitpin now and the loan becomes active once verified."
                    ),
                    messages.SUCCESS,
                )
                return redirect("admin:fund_loan_change", loan.pk)
        return render_confirmation(
            request,
            self,
            title=_("Record the payout of a loan"),
            question=_("Did you send %(amount)s USDT to %(member)s from the fund's Bitpin wallet?")
            % {"amount": usdt(loan.amount), "member": loan.member.get_full_name() or loan.member.username},
            form=form,
            details=[
                _("Loan granted in %(month)s: %(amount)s USDT, monthly minimum %(minimum)s USDT.")
                % {
                    "month": month_label(loan.month),
                    "amount": usdt(loan.amount),
                    "minimum": usdt(loan.monthly_minimum),
                },
                _(
                    "Bitpin is asked about the transfer; once it is verified the loan becomes active and "
                    "its repayments are due from the following month."
                ),
            ],
            submit_label=_("Record the payout"),
            cancel_url=reverse("admin:fund_loan_change", args=(loan.pk,)),
        )

    @action(description=_("Record payout"), icon="send_money", permissions=["payout"], url_path="record-payout-row")
    def record_payout_row(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self.record_payout(request, object_id)
