"""Wallet readings in the back office: the history, and "Read the wallet now" (DESIGN.md, "Reconciliation").

With a Bitpin key the action reads the wallet from Bitpin; without one (or when the operator
prefers) it takes the balance the operator types. fund.reconciliation stores the reading.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminTextInputWidget

from fund import ledger, reconciliation
from fund.admin.base import FundModelAdmin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import badge, moment, money
from fund.models import Reconciliation
from fund.money import AmountFormField
from fund.templatetags.saghat import usdt

FLAG_LABELS = {"flagged": "danger", "matches": "success"}


class ReadingForm(forms.Form):
    balance = AmountFormField(
        label=_("Wallet balance (USDT)"),
        required=False,
        widget=UnfoldAdminTextInputWidget(attrs={"dir": "ltr"}),
        help_text=_("The USDT balance the exchange shows for the fund's wallet. Leave empty to read it from Bitpin."),
    )

    def __init__(self, *args: Any, key: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not key:
            self.fields["balance"].required = True
            self.fields["balance"].help_text = _(
                "No Bitpin key is configured: type the USDT balance the exchange shows for the fund's wallet."
            )


def flag(reading: Reconciliation) -> Any:
    if reading.flagged:
        return badge("flagged", str(_("difference")), FLAG_LABELS)
    return badge("matches", str(_("matches")), FLAG_LABELS)


@admin.register(Reconciliation)
class ReconciliationAdmin(FundModelAdmin):
    list_display = (
        "taken_display",
        "wallet_display",
        "expected_display",
        "difference_display",
        "pending_display",
        "flag_display",
        "source",
        "taken_by_display",
    )
    list_filter = ("flagged", "source")
    list_select_related = ("taken_by",)
    list_per_page = 50
    ordering = ("-taken_at", "-id")
    actions_list = ("read_wallet",)
    fields = (
        "taken_display",
        ("wallet_display", "expected_display"),
        ("difference_display", "tolerance_display", "flag_display"),
        "pending_display",
        ("source", "taken_by_display"),
    )
    readonly_fields = (
        "taken_display",
        "wallet_display",
        "expected_display",
        "difference_display",
        "tolerance_display",
        "flag_display",
        "pending_display",
        "source",
        "taken_by_display",
    )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # readings come from the action and the daily job

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @display(description=_("taken at"), ordering="taken_at")
    def taken_display(self, obj: Reconciliation) -> Any:
        return moment(obj.taken_at)

    @display(description=_("wallet (USDT)"), ordering="wallet_balance")
    def wallet_display(self, obj: Reconciliation) -> Any:
        return money(obj.wallet_balance)

    @display(description=_("ledger (USDT)"), ordering="expected_balance")
    def expected_display(self, obj: Reconciliation) -> Any:
        return money(obj.expected_balance)

    @display(description=_("difference (USDT)"), ordering="difference")
    def difference_display(self, obj: Reconciliation) -> Any:
        return money(obj.difference)

    @display(description=_("payments still pending (USDT)"))
    def pending_display(self, obj: Reconciliation) -> Any:
        return money(obj.pending_inflows)

    @display(description=_("tolerance (USDT)"))
    def tolerance_display(self, obj: Reconciliation) -> Any:
        return money(obj.tolerance)

    @display(description=_("result"), ordering="flagged")
    def flag_display(self, obj: Reconciliation) -> Any:
        return flag(obj)

    @display(description=_("taken by"))
    def taken_by_display(self, obj: Reconciliation) -> str:
        if obj.taken_by is not None:
            return obj.taken_by.get_username()
        return obj.taken_by_job or "—"

    @action(
        description=_("Read the wallet now"),
        icon="account_balance_wallet",
        permissions=["operate"],
        url_path="read-wallet",
    )
    def read_wallet(self, request: HttpRequest) -> HttpResponse:
        key = bool(settings.BITPIN_API_KEY)
        form = ReadingForm(request.POST if is_confirmed(request) else None, key=key)
        if form.is_valid():
            try:
                reading = reconciliation.take_reading(typed_balance=form.cleaned_data.get("balance"), by=request.user)
            except reconciliation.ReadingRefused as refused:
                form.add_error("balance", str(refused))
            else:
                level = messages.WARNING if reading.flagged else messages.SUCCESS
                self.message_user(request, reconciliation.describe(reading), level)
                return redirect("admin:fund_reconciliation_changelist")
        return render_confirmation(
            request,
            self,
            title=_("Compare the wallet with the ledger"),
            question=_("Read the fund wallet's USDT balance and compare it with what the ledger expects?"),
            form=form,
            details=[
                _("The ledger expects %(expected)s USDT in the wallet; payments still pending: %(pending)s USDT.")
                % {
                    "expected": usdt(ledger.expected_wallet_balance()),
                    "pending": usdt(ledger.pending_inflows()),
                }
            ],
            submit_label=_("Take the reading"),
        )
