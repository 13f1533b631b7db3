"""The confirmation page, for the actions that do not fit unfold's action dialog.

unfold's list, row and detail actions are plain GET links (unfold's ``@action`` views): a crawler or
a prefetching browser would trigger them. So every action that changes something acts only on a
POST with a valid CSRF token and ``confirmed=yes``; a GET only asks.

Where the question is fixed and the operator types at most a note, the action uses unfold's dialog
(``@action(dialog=...)``): verifying or rejecting one payment or payout by hand
(fund.admin.decisions). The dialog's GET shows its form, and unfold calls the action only after a
valid POST. The dialog does not fit the others, which stay on this page:
- Django's bulk actions (a selection from the list): their POST carries the action's name and the
  selected rows, and the dialog's form posts neither back (it posts its own fields to the address it
  was opened from), so the confirming POST would lose the selection. This page re-posts it.
- Actions whose question states figures for the row or the month before the operator agrees (the
  payout's amount and recipient, a leaving member's refund, the wallet's expected balance, the draw's
  month and whether it may run). The dialog's title and description are fixed when the class is
  defined (figures would need a template of the form's own), and without JavaScript its address
  shows a bare form with no page around it. Here the question, the figures and the form are one
  page that works with or without JavaScript.
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

CONFIRMED = "confirmed"


class ConfirmForm(forms.Form):
    """Nothing to type: the POST itself (with its CSRF token) is the confirmation."""


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
