"""Payments in the back office: the big list, recording a payment, and the verification actions.

The list never counts the whole table (unfold's InfinitePaginator, no full result count) and
reads each page with one joined query. State changes only through the actions, which call the
payment services (fund.payments); the form shows the state fields read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display
from unfold.paginator import InfinitePaginator

from fund import payments
from fund.admin.base import FundModelAdmin
from fund.admin.decisions import DecisionWords, HandDecisionMixin, decision_button
from fund.admin.display import badge, loan_link, moment, money, month_label, person, typed
from fund.admin.filters import JalaliMonthFilter
from fund.admin.imports import PaymentImportExportMixin
from fund.jalali import JalaliMonth
from fund.models import Payment, User

STATUS_LABELS = {
    Payment.Status.PENDING: "warning",
    Payment.Status.VERIFIED: "success",
    Payment.Status.REJECTED: "danger",
}
SOURCE_LABELS = {Payment.Source.MEMBER: "info", Payment.Source.ADMIN: "primary", Payment.Source.IMPORT: "default"}


class RecordPaymentForm(forms.ModelForm):
    """The operator records a payment for any month up to the current one (DESIGN.md, rule 1).

    The month is text in any form Saghat accepts (1405/09, 1405-9, ۱۴۰۵/۰۹), the current month by
    default. The form only validates, with the payment service's own rules (``check_payment``) so
    that a refusal lands on the field it concerns; PaymentAdmin.save_model records the payment.
    """

    class Meta:
        model = Payment
        fields = ("member", "month", "fee", "repayment", "bitpin_id")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        member = str(self.data.get("member", "")) if self.is_bound else ""
        if member and not (member.strip().isdecimal() and len(member.strip()) <= 18):
            # Django's autocomplete widget looks the posted value up again to show it, and a value
            # that is not an id raises there (a server error) instead of "select a valid choice".
            self.data = self.data.copy()
            self.data["member"] = "0" if member.strip() else ""
        self.fields["month"].initial = JalaliMonth.current()
        self.fields["month"].help_text = _("Any month up to the current one, like 1404/09.")
        self.fields["repayment"].required = False
        self.fields["repayment"].help_text = _("Only for a member with an active loan.")
        self.fields["bitpin_id"].required = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            payments.check_payment(source=Payment.Source.ADMIN, **self.submission())
        except payments.PaymentRefused as refused:
            self.add_error(refused.field if refused.field in self.fields else None, refused.message)
        return cleaned

    def submission(self) -> dict[str, Any]:
        """The payment as the service takes it."""
        data = self.cleaned_data
        return {
            "member": data["member"],
            "month": data["month"],
            "fee": data["fee"],
            "repayment": data.get("repayment") or None,
            "bitpin_id": data["bitpin_id"],
        }


@admin.register(Payment)
class PaymentAdmin(HandDecisionMixin, FundModelAdmin, PaymentImportExportMixin):
    add_form = RecordPaymentForm
    list_display = (
        "month_display",
        "member_display",
        "fee_display",
        "repayment_display",
        "total_display",
        "bitpin_id_display",
        "status_display",
        "source_display",
        "note_display",
    )
    list_filter = (JalaliMonthFilter, ("status", ChoicesDropdownFilter), ("source", ChoicesDropdownFilter))
    search_fields = ("member__username", "member__first_name", "member__last_name", "=bitpin_id")
    list_select_related = ("member",)
    # Big table: no COUNT(*) over all payments, ever (3 queries a page).
    paginator = InfinitePaginator
    show_full_result_count = False
    list_disable_select_all = True
    list_per_page = 50
    ordering = ("-month", "-id")
    autocomplete_fields = ("member",)
    actions = ("verify_with_bitpin", "verify_by_hand", "reject")
    actions_detail = ("verify_by_hand_detail", "reject_detail")
    decision_words = DecisionWords(
        verify_title=_("Verify by hand"),
        verify_question=_("Mark these payments verified? Write why: the note is kept on each payment."),
        reject_title=_("Reject payments"),
        reject_question=_("Reject these payments? Write why: the member sees the note."),
        verified=ngettext_lazy("%(count)d payment verified.", "%(count)d payments verified.", "count"),
        rejected=ngettext_lazy("%(count)d payment rejected.", "%(count)d payments rejected.", "count"),
        check_question=_("Queue a Bitpin check for these payments? Only pending payments are checked."),
        queued=ngettext_lazy(
            "%(count)d payment was queued for a Bitpin check.",
            "%(count)d payments were queued for a Bitpin check.",
            "count",
        ),
    )
    refusal = payments.PaymentRefused
    readonly_fields = (
        "member",
        "month_display",
        "fee_display",
        "repayment_display",
        "total_display",
        "loan_display",
        "bitpin_id",
        "status_display",
        "source_display",
        "submitted_by",
        "created_display",
        "verified_by",
        "verified_display",
        "note",
        "attempts",
        "last_error",
        "next_attempt_display",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "member",
                    "month_display",
                    ("fee_display", "repayment_display", "total_display"),
                    "loan_display",
                    "bitpin_id",
                )
            },
        ),
        (
            _("Verification"),
            {
                "fields": (
                    "status_display",
                    "source_display",
                    ("submitted_by", "created_display"),
                    ("verified_by", "verified_display"),
                    "note",
                    ("attempts", "next_attempt_display"),
                    "last_error",
                )
            },
        ),
    )
    add_fieldsets = ((None, {"fields": ("member", "month", "fee", "repayment", "bitpin_id")}),)

    # --- forms: record a payment; an existing one is read-only ------------------------------------

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple:
        return self.readonly_fields if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # every change goes through an action

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # a wrong payment is rejected, never deleted: the trail stays

    def save_model(self, request: HttpRequest, obj: Payment, form: Any, change: bool) -> None:
        """Records the payment through the service; ``obj`` becomes the stored payment for the admin's log."""
        payment = payments.submit_payment(source=Payment.Source.ADMIN, submitted_by=request.user, **form.submission())
        vars(obj).update(vars(payment))

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        try:
            return super().add_view(request, form_url, extra_context)
        except payments.PaymentRefused as refused:
            # Another submission landed between the form's check and the save (the admin's
            # transaction has rolled back): say why and offer the form again.
            self.message_user(request, refused.message, messages.ERROR)
            return redirect(request.get_full_path())

    # --- list columns ----------------------------------------------------------------------------

    @display(description=_("month"), ordering="month")
    def month_display(self, obj: Payment) -> str:
        return month_label(obj.month)

    @display(description=_("member"), ordering="member__username")
    def member_display(self, obj: Payment) -> Any:
        return person(obj.member)

    @display(description=_("fee (USDT)"), ordering="fee")
    def fee_display(self, obj: Payment) -> Any:
        return money(obj.fee)

    @display(description=_("repayment (USDT)"), ordering="repayment")
    def repayment_display(self, obj: Payment) -> Any:
        return money(obj.repayment)

    @display(description=_("total (USDT)"))
    def total_display(self, obj: Payment) -> Any:
        return money(obj.total)

    @display(description=_("status"), ordering="status")
    def status_display(self, obj: Payment) -> Any:
        return badge(obj.status, obj.get_status_display(), STATUS_LABELS)

    @display(description=_("source"), ordering="source")
    def source_display(self, obj: Payment) -> Any:
        return badge(obj.source, obj.get_source_display(), SOURCE_LABELS)

    @display(description=_("loan"))
    def loan_display(self, obj: Payment) -> Any:
        return loan_link(obj.loan)

    @display(description=_("Bitpin payment id"), ordering="bitpin_id")
    def bitpin_id_display(self, obj: Payment) -> Any:
        return typed(obj.bitpin_id)

    @display(description=_("verification note"))
    def note_display(self, obj: Payment) -> Any:
        return typed(Truncator(obj.note or obj.last_error).chars(60))

    @display(description=_("submitted"))
    def created_display(self, obj: Payment) -> Any:
        return moment(obj.created_at)

    # --- checking with Bitpin, verifying or rejecting by hand (fund.admin.decisions): the list's bulk
    # actions and the page's buttons

    verify_by_hand_detail = decision_button(decision_words, verify=True)
    reject_detail = decision_button(decision_words, verify=False)

    def requeue(self, ids: list[int]) -> int:
        return payments.requeue_verification(payment_ids=ids)

    def decide_by_hand(self, payment: Payment, *, verify: bool, by: User, note: str) -> None:
        decide = payments.verify_by_hand if verify else payments.reject_payment
        decide(payment=payment, by=by, note=note)
