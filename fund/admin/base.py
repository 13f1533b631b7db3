"""The base of every back-office class: unfold's look, the audit trail, and the two roles.

Operators may change things (through the actions, which call the services); inspectors may read
everything, history included, and change nothing. History is an audit trail, never an undo
button: reverting a row from its history would bypass the services, so it is refused for all.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminTextInputWidget

from fund.admin.history import ReadableHistory
from fund.admin.roles import is_operator, may_read
from fund.jalali import JalaliMonthField
from fund.money import AmountField

# Bulk actions that change nothing (django-import-export's "export selected").
READ_ONLY_ACTIONS = frozenset({"export_admin_action"})


class RoleAdminMixin:
    """Permissions by role (fund.admin.roles) instead of per-model permission rows."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_read(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_read(request.user)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_operator(request.user)

    def has_operate_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Named in the ``permissions=["operate"]`` of every action that changes something."""
        return is_operator(request.user)

    def get_actions(self, request: HttpRequest) -> dict:
        """A safety net under the per-action permissions: a reader gets only the actions that read."""
        actions = super().get_actions(request)
        if is_operator(request.user):
            return actions
        return {name: spec for name, spec in actions.items() if name in READ_ONLY_ACTIONS}

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        # Django filters by the posted ids as they are: a forged one that is not an id raised a
        # server error there. Such a selection does nothing and says so.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if isinstance(self.model._meta.pk, IntegerField) and not all(map(_looks_like_an_id, selected)):
            self.message_user(request, _("The selection is not valid: nothing was done."), messages.WARNING)
            return None
        return super().response_action(request, queryset)

    def get_urls(self) -> list:
        # unfold's detail actions, simple-history's pages and our own views look a row up by the id
        # in the address as typed, and text there ("abc") raised a server error: such an address is a 404.
        return [_ids_checked(pattern, self.model) for pattern in super().get_urls()]

    # django-import-export asks these (its default lets anyone with admin access import).
    def has_import_permission(self, request: HttpRequest) -> bool:
        return is_operator(request.user)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return may_read(request.user)


ID_KEYWORDS = ("object_id", "id", "version_id")


def _ids_checked(pattern: Any, model: type[Model]) -> Any:
    """The URL pattern, its view refusing with 404 an id that cannot be one of ``model``'s."""
    if not isinstance(pattern, URLPattern) or not isinstance(model._meta.pk, IntegerField):
        return pattern
    view = pattern.callback

    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        ids = [*args, *(kwargs[name] for name in ID_KEYWORDS if name in kwargs)]
        if not all(_looks_like_an_id(value) for value in ids):
            raise Http404
        return view(request, *args, **kwargs)

    return URLPattern(pattern.pattern, checked, pattern.default_args, pattern.name)


def _looks_like_an_id(value: Any) -> bool:
    text = str(value)
    return text.isdecimal() and len(text) <= 18  # fits a 64-bit integer column


class FundModelAdmin(RoleAdminMixin, SimpleHistoryAdmin, ModelAdmin):
    """Every model of the fund: unfold, role permissions, read-only history."""

    list_filter_submit = True
    warn_unsaved_form = True
    # Months and amounts are typed as text, in Persian or Latin digits: unfold's number inputs (for
    # their integer and decimal columns) take neither "1404/09" nor "۲۵".
    formfield_overrides = {
        JalaliMonthField: {"widget": UnfoldAdminTextInputWidget(attrs={"dir": "ltr", "maxlength": 20})},
        AmountField: {
            "widget": UnfoldAdminTextInputWidget(attrs={"dir": "ltr", "inputmode": "decimal", "maxlength": 60})
        },
    }
    object_history_list_template = "admin/fund/history_list.html"
    object_history_form_template = "admin/fund/history_form.html"

    def revert_disabled(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def get_historical_record_context_helper(self, request: HttpRequest, historical_record: Any) -> ReadableHistory:
        return ReadableHistory(self.model, historical_record)  # the diff in the reader's words

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        # simple-history saves the old version on POST whatever revert_disabled says.
        if request.method != "GET":
            raise PermissionDenied
        # The version, for the banner above it (its date); simple-history looks it up the same way.
        history = getattr(self.model, self.model._meta.simple_history_manager_attribute).model
        version = get_object_or_404(history, history_id=version_id, **{self.model._meta.pk.attname: object_id})
        extra_context = {**(extra_context or {}), "version": version}
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyInlineMixin:
    """Inlines that show related rows (bounded by unfold's inline pagination) and change nothing."""

    extra = 0
    can_delete = False
    show_change_link = False
    show_title = False  # each row links to its page from its first column instead
    per_page = 10

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_read(request.user)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
