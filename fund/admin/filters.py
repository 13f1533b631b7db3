"""List filters the back office needs and unfold lacks: a Jalali month, and the members' standing."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import RadioFilter, TextFilter

from fund.jalali import JalaliMonth

YES_NO = (("yes", _("Yes")), ("no", _("No")))


class JalaliMonthFilter(TextFilter):
    """Type a month as 1404/09, 1404-9 or in Persian digits; a bad month says so and shows nothing."""

    title = _("month (e.g. 1404/09)")
    parameter_name = "month"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        text = self.value()
        if not text:
            return queryset
        try:
            month = JalaliMonth.parse(text)
        except ValueError as error:
            messages.warning(request, str(error))
            return queryset.none()
        return queryset.filter(month=month)


class _YesNoAnnotationFilter(RadioFilter):
    """Filters on a boolean annotation that the admin's queryset carries (ledger.members_with_standing)."""

    annotation = ""

    def lookups(self, request: HttpRequest, model_admin: ModelAdmin) -> tuple:
        return YES_NO

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in {"yes", "no"}:
            return queryset.filter(**{self.annotation: self.value() == "yes"})
        return queryset


class PaidThisMonthFilter(_YesNoAnnotationFilter):
    title = _("paid this month")
    parameter_name = "paid"
    annotation = "paid_this_month"


class HasActiveLoanFilter(_YesNoAnnotationFilter):
    title = _("has an active loan")
    parameter_name = "loan"
    annotation = "has_active_loan"
