"""The fund configuration: one row, one editable page (no list, no add, no delete)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from fund.admin.base import FundModelAdmin
from fund.models import FundConfig


class FundConfigForm(forms.ModelForm):
    class Meta:
        model = FundConfig
        fields = (
            "name",
            "min_fee",
            "max_repayment_months",
            "min_repayment",
            "auto_draw",
            "reminder_days_before",
            "reconciliation_tolerance",
        )

    def _positive(self, name: str) -> Decimal:
        value = self.cleaned_data[name]
        if value is not None and value <= 0:
            raise forms.ValidationError(_("The amount must be more than zero."))
        return value

    def clean_min_fee(self) -> Decimal:
        return self._positive("min_fee")

    def clean_min_repayment(self) -> Decimal:
        return self._positive("min_repayment")

    def clean_max_repayment_months(self) -> int:
        value = self.cleaned_data["max_repayment_months"]
        if value is not None and value < 1:
            raise forms.ValidationError(_("At least one month."))
        return value


@admin.register(FundConfig)
class FundConfigAdmin(FundModelAdmin):
    form = FundConfigForm
    fieldsets = (
        (None, {"fields": ("name",)}),
        (_("Payments and loans"), {"fields": ("min_fee", "min_repayment", "max_repayment_months")}),
        (_("Draw and reminders"), {"fields": ("auto_draw", "reminder_days_before")}),
        (_("Wallet"), {"fields": ("reconciliation_tolerance",)}),
    )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        config = FundConfig.load()
        return HttpResponseRedirect(reverse("admin:fund_fundconfig_change", args=(config.pk,)))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def response_change(self, request: HttpRequest, obj: FundConfig) -> HttpResponse:
        response = super().response_change(request, obj)
        # Back to the page itself, not to a list that would only redirect here again.
        if "_continue" not in request.POST and "_popup" not in request.POST:
            return HttpResponseRedirect(reverse("admin:fund_fundconfig_change", args=(obj.pk,)))
        return response
