"""The fund configuration: one row, one editable page (no list, no add, no delete)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from fund import configuration
from fund.admin.base import FundModelAdmin
from fund.models import FundConfig


class FundConfigForm(forms.ModelForm):
    """Validates with the configuration service's rules (fund.configuration); the admin saves through it."""

    class Meta:
        model = FundConfig
        fields = configuration.FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "reconciliation_tolerance" in self.fields:  # not for an inspector, who reads only
            self.fields["reconciliation_tolerance"].required = False  # empty keeps the current tolerance

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "reconciliation_tolerance" in cleaned and cleaned["reconciliation_tolerance"] is None:
            cleaned["reconciliation_tolerance"] = self.instance.reconciliation_tolerance
        given = {field: cleaned[field] for field in configuration.FIELDS if field in cleaned}
        for field, message in configuration.problems(**given).items():
            if field in cleaned:
                self.add_error(field, message)
        return cleaned


@admin.register(FundConfig)
class FundConfigAdmin(FundModelAdmin):
    form = FundConfigForm
    fieldsets = (
        (None, {"fields": ("name",)}),
        (_("Payments and loans"), {"fields": ("min_fee", "min_repayment", "max_repayment_months")}),
        (_("Draw and reminders"), {"fields": ("auto_draw", "payment_deadline_day", "reminder_days_before")}),
        (_("Wallet"), {"fields": ("reconciliation_tolerance",)}),
    )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        config = FundConfig.load()
        return HttpResponseRedirect(reverse("admin:fund_fundconfig_change", args=(config.pk,)))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: FundConfig, form: Any, change: bool) -> None:
        saved = configuration.update_config(**{field: form.cleaned_data[field] for field in configuration.FIELDS})
        vars(obj).update(vars(saved))

    def response_change(self, request: HttpRequest, obj: FundConfig) -> HttpResponse:
        response = super().response_change(request, obj)
        # Back to the page itself, not to a list that would only redirect here again.
        if "_continue" not in request.POST and "_popup" not in request.POST:
            return HttpResponseRedirect(reverse("admin:fund_fundconfig_change", args=(obj.pk,)))
        return response
