"""Checking with Bitpin again, verifying or rejecting by hand with a note: one implementation for
payments and payouts.

Two ways in, both acting only on a POST with the CSRF token, ``confirmed=yes`` and a note:
- From the list, Django's bulk action (a POST that carries the selection) passes through
  fund.admin.confirm's page, which asks for the note and re-posts the selection.
- On one row's page, the Verify and Reject buttons open unfold's action dialog (``@action(dialog=...)``):
  the GET only shows the note form (htmx loads it into the page's modal window), a POST without a
  note shows it again with the reason, and a valid POST calls the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from unfold.dataclasses import ActionDialog
from unfold.decorators import action, display
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminTextareaWidget

from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import moment
from fund.models import User


class NoteForm(forms.Form):
    """The required note of a decision by hand, on the confirmation page of a bulk action."""

    note = forms.CharField(
        label=_("Note"),
        max_length=500,
        strip=True,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=_("Required: why you decided this. It is kept on the payment and in its history."),
        error_messages={"required": _("Write a note: it is required.")},
    )


class NoteDialogForm(BaseDialogForm, NoteForm):
    """The note in unfold's dialog. Its hidden ``confirmed=yes`` replaces unfold's ``_form_submitted``,
    so that the dialog posts what every confirmation page of the back office posts."""

    _form_submitted = None
    confirmed = forms.ChoiceField(choices=[("yes", "yes")], initial="yes", widget=forms.HiddenInput)


@dataclass(frozen=True)
class DecisionWords:
    """What the operator reads, for payments or for payouts. ``verified`` and ``rejected`` are
    ``ngettext_lazy(..., "count")``: they take ``% {"count": n}``."""

    verify_title: Promise
    verify_question: Promise
    reject_title: Promise
    reject_question: Promise
    verified: Promise
    rejected: Promise
    check_question: Promise  # the list's "Verify with Bitpin (queued)"
    queued: Promise  # ngettext_lazy(..., "count") like ``verified``

    def title(self, *, verify: bool) -> Promise:
        return self.verify_title if verify else self.reject_title

    def question(self, *, verify: bool) -> Promise:
        return self.verify_question if verify else self.reject_question

    def submit(self, *, verify: bool) -> Promise:
        return _("Verify") if verify else _("Reject")


def decision_button(words: DecisionWords, *, verify: bool) -> Callable:
    """The Verify or Reject button on one row's page: unfold's dialog asks for the note, and the
    service runs only after the dialog's valid POST (unfold calls the action with the form)."""

    def decide(model_admin: HandDecisionMixin, request: HttpRequest, form: NoteDialogForm, object_id: str) -> Any:
        return model_admin.decide_one(request, object_id, note=form.cleaned_data["note"], verify=verify)

    # unfold checks a row action's permission with the row only when it finds the function's name
    # in ``actions_detail``: without it, a decided row's button would pass.
    decide.__name__ = "verify_by_hand_detail" if verify else "reject_detail"
    dialog = ActionDialog(
        title=words.title(verify=verify),
        description=words.question(verify=verify),
        form_class=NoteDialogForm,
        form_submit_text=words.submit(verify=verify),
    )
    return action(
        description=_("Verify by hand") if verify else _("Reject"),
        icon="verified" if verify else "block",
        permissions=["decide"],
        url_path="verify" if verify else "reject",
        dialog=dialog,
    )(decide)


class HandDecisionMixin:
    """For an admin (a FundModelAdmin) of a model with a pending/verified/rejected ``status`` and a ``member``.

    The admin sets ``decision_words``, ``refusal`` (its service's refusal, which has a ``message``)
    and ``decide_by_hand`` (calls its service), lists ``verify_by_hand`` and ``reject`` in ``actions``
    and ``verify_by_hand_detail`` / ``reject_detail`` (made by ``decision_button``) in ``actions_detail``.
    """

    decision_words: ClassVar[DecisionWords]
    refusal: ClassVar[type[Exception]]

    def decide_by_hand(self, obj: Any, *, verify: bool, by: User, note: str) -> None:
        """Calls the service; raises ``refusal`` when it says no."""
        raise NotImplementedError

    def requeue(self, ids: list[int]) -> int:
        """Calls the service that queues a Bitpin check for the pending rows among ``ids``."""
        raise NotImplementedError

    @display(description=_("verified or rejected at"))
    def verified_display(self, obj: Any) -> Any:
        return moment(obj.verified_at)

    @display(description=_("next verification attempt"))
    def next_attempt_display(self, obj: Any) -> Any:
        return moment(obj.next_attempt_at)

    @action(description=_("Verify with Bitpin (queued)"), permissions=["operate"])
    def verify_with_bitpin(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        selected = list(queryset.select_related("member"))
        if not is_confirmed(request):
            return render_confirmation(
                request,
                self,
                title=_("Verify with Bitpin"),
                question=self.decision_words.check_question,
                objects=selected,
                bulk_action="verify_with_bitpin",
                submit_label=_("Queue the checks"),
            )
        queued = self.requeue([obj.pk for obj in selected])
        text = self.decision_words.queued % {"count": queued}
        self.message_user(request, text, messages.SUCCESS if queued else messages.WARNING)
        return None

    @action(description=_("Verify by hand, with a note"), permissions=["operate"])
    def verify_by_hand(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._decide_selection(request, queryset, verify=True, bulk_action="verify_by_hand")

    @action(description=_("Reject, with a note"), permissions=["operate"])
    def reject(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._decide_selection(request, queryset, verify=False, bulk_action="reject")

    def has_decide_permission(self, request: HttpRequest, object_id: Any = None) -> bool:
        """The row page's Verify and Reject buttons: for operators, on a row still pending."""
        if not self.has_operate_permission(request):
            return False
        pending = self.model._default_manager.filter(pk=object_id, status=self.model.Status.PENDING)
        return object_id is None or pending.exists()

    def decide_one(self, request: HttpRequest, object_id: str, *, note: str, verify: bool) -> HttpResponse:
        """After the dialog's valid POST: decide, then back to the row's page, which shows the outcome."""
        obj = get_object_or_404(self.model._default_manager.select_related("member"), pk=object_id)
        self._decide(request, [obj], note=note, verify=verify)
        opts = self.model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=(obj.pk,))
        if request.headers.get("HX-Request"):
            # The dialog posted with htmx, which would put a redirect's page inside the dialog:
            # HX-Redirect makes the browser load the page itself (unfold's documented answer).
            return HttpResponse(headers={"HX-Redirect": url})
        return redirect(url)

    def _decide_selection(
        self, request: HttpRequest, queryset: QuerySet, *, verify: bool, bulk_action: str
    ) -> HttpResponse | None:
        """The list's bulk action: the confirmation page asks for the note, its POST decides."""
        selected = list(queryset.select_related("member"))
        form = NoteForm(request.POST if is_confirmed(request) else None)
        if form.is_valid():
            self._decide(request, selected, note=form.cleaned_data["note"], verify=verify)
            return None
        return render_confirmation(
            request,
            self,
            title=self.decision_words.title(verify=verify),
            question=self.decision_words.question(verify=verify),
            form=form,
            objects=selected,
            bulk_action=bulk_action,
            submit_label=self.decision_words.submit(verify=verify),
            danger=not verify,
        )

    def _decide(self, request: HttpRequest, objects: list[Any], *, note: str, verify: bool) -> None:
        """Calls the service for each row and says how many were decided, and why any was refused."""
        done, refusals = 0, []
        for obj in objects:
            try:
                self.decide_by_hand(obj, verify=verify, by=request.user, note=note)
                done += 1
            except self.refusal as refused:
                refusals.append(f"{obj}: {refused.message}")
        if done:
            text = self.decision_words.verified if verify else self.decision_words.rejected
            self.message_user(request, text % {"count": done}, messages.SUCCESS)
        for refusal in refusals:
            self.message_user(request, refusal, messages.ERROR)
