"""Confirmation pages for every action that changes something.

unfold's list, row and detail actions are plain GET links (unfold's ``@action`` views): a crawler or a
prefetching browser would trigger them. So an action shows this page on GET and acts only on a
POST with a valid CSRF token. Django's bulk actions are POSTs already, but they too pass through
this page first (to confirm, and to collect the note where one is required).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib.admin import ModelAdmin, helpers
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminTextareaWidget

CONFIRMED = "confirmed"


class ConfirmForm(forms.Form):
    """Nothing to type: the POST itself (with its CSRF token) is the confirmation."""


class NoteForm(forms.Form):
    note = forms.CharField(
        label=_("Note"),
        max_length=500,
        strip=True,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=_("Required: why you decided this. It is kept on the payment and in its history."),
        error_messages={"required": _("Write a note: it is required.")},
    )


def is_confirmed(request: HttpRequest) -> bool:
    """True on the confirmation page's own POST (not on the changelist's first action POST)."""
    return request.method == "POST" and request.POST.get(CONFIRMED) == "yes"


def render_confirmation(
    request: HttpRequest,
    model_admin: ModelAdmin,
    *,
    title: str,
    question: str,
    form: forms.Form | None = None,
    objects: Iterable[Any] = (),
    bulk_action: str | None = None,
    submit_label: str = "",
    danger: bool = False,
    details: Iterable[str] = (),
    cancel_url: str = "",
) -> TemplateResponse:
    """The page that asks "are you sure?"; for bulk actions it re-posts the selection."""
    opts = model_admin.model._meta
    objects = list(objects)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "form": form or ConfirmForm(),
        "objects": objects,
        "details": list(details),
        "bulk_action": bulk_action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirmed_name": CONFIRMED,
        "submit_label": submit_label or _("Confirm"),
        "danger": danger,
        "opts": opts,
        "cancel_url": cancel_url or reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    return TemplateResponse(request, "admin/fund/confirm.html", context)
