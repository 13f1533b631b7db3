"""Payouts in the back office: loan payouts and refunds, checked with Bitpin, decided by hand if need be.

A payout is recorded from its loan's page (fund.admin.loans) or a leaving member's page
(fund.admin.members); here the operator follows its check and may verify or reject it with a note.
Every change goes through fund.payouts.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import display

from fund import payouts
from fund.admin.base import FundModelAdmin, ReadOnlyInlineMixin
from fund.admin.decisions import DecisionWords, HandDecisionMixin, decision_button
from fund.admin.display import badge, change_link, loan_link, moment, money, person
from fund.models import Payout, User

STATUS_LABELS = {
    Payout.Status.PENDING: "warning",
    Payout.Status.VERIFIED: "success",
    Payout.Status.REJECTED: "danger",
}
KIND_LABELS = {Payout.Kind.LOAN: "primary", Payout.Kind.REFUND: "info"}


class PayoutInline(ReadOnlyInlineMixin, TabularInline):
    """A loan's or a member's payouts, newest first, each linking to its page."""

    model = Payout
    fk_name = "loan"
    verbose_name = _("payout")
    verbose_name_plural = _("payouts (newest first)")
    fields = ("recorded_display", "kind_display", "amount_display", "transfer_id", "status_display", "note")
    readonly_fields = fields
    ordering = ("-created_at", "-id")

    @display(description=_("recorded"))
    def recorded_display(self, obj: Payout) -> Any:
        return change_link(obj, str(moment(obj.created_at)))

    @display(description=_("kind"))
    def kind_display(self, obj: Payout) -> Any:
        return badge(obj.kind, obj.get_kind_display(), KIND_LABELS)

    @display(description=_("amount (USDT)"))
    def amount_display(self, obj: Payout) -> Any:
        return money(obj.amount)

    @display(description=_("status"))
    def status_display(self, obj: Payout) -> Any:
        return badge(obj.status, obj.get_status_display(), STATUS_LABELS)


class MemberPayoutInline(PayoutInline):
    fk_name = "member"


@admin.register(Payout)
class PayoutAdmin(HandDecisionMixin, FundModelAdmin):
    list_display = (
        "recorded_display",
        "kind_display",
        "member_display",
        "amount_display",
        "transfer_id",
        "status_display",
        "note_display",
    )
    list_filter = (("kind", ChoicesDropdownFilter), ("status", ChoicesDropdownFilter))
    search_fields = ("member__username", "member__first_name", "member__last_name", "=transfer_id")
    list_select_related = ("member", "loan")
    list_per_page = 50
    ordering = ("-created_at", "-id")
    actions = ("verify_with_bitpin", "verify_by_hand", "reject")
    actions_detail = ("verify_by_hand_detail", "reject_detail")
    decision_words = DecisionWords(
        verify_title=_("Verify payouts by hand"),
        verify_question=_("Mark these payouts verified? Write how you checked: the note is kept on each."),
        reject_title=_("Reject payouts"),
        reject_question=_("Reject these payouts? The loan keeps waiting for its payout (the member stays leaving)."),
        verified=ngettext_lazy("%(count)d payout verified.", "%(count)d payouts verified.", "count"),
        rejected=ngettext_lazy("%(count)d payout rejected.", "%(count)d payouts rejected.", "count"),
        check_question=_("Queue a Bitpin check for these payouts? Only pending payouts are checked."),
        queued=ngettext_lazy(
            "%(count)d payout was queued for a Bitpin check.",
            "%(count)d payouts were queued for a Bitpin check.",
            "count",
        ),
    )
    refusal = payouts.PayoutRefused
    fieldsets = (
        (None, {"fields": ("kind_display", "member", "loan_display", "amount_display", "transfer_id")}),
        (
            _("Verification"),
            {
                "fields": (
                    "status_display",
                    ("recorded_by", "recorded_display"),
                    ("verified_by", "verified_display"),
                    "note",
                    ("attempts", "next_attempt_display"),
                    "last_error",
                )
            },
        ),
    )
    readonly_fields = (
        "kind_display",
        "member",
        "loan_display",
        "amount_display",
        "transfer_id",
        "status_display",
        "recorded_by",
        "recorded_display",
        "verified_by",
        "verified_display",
        "note",
        "attempts",
        "next_attempt_display",
        "last_error",
    )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # recorded from the loan's or the leaving member's page

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # every change goes through an action

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    # --- columns ----------------------------------------------------------------------------------

    @display(description=_("recorded"), ordering="created_at")
    def recorded_display(self, obj: Payout) -> Any:
        return moment(obj.created_at)

    @display(description=_("kind"), ordering="kind")
    def kind_display(self, obj: Payout) -> Any:
        return badge(obj.kind, obj.get_kind_display(), KIND_LABELS)

    @display(description=_("member"), ordering="member__username")
    def member_display(self, obj: Payout) -> Any:
        return person(obj.member)

    @display(description=_("loan"))
    def loan_display(self, obj: Payout) -> Any:
        return loan_link(obj.loan)

    @display(description=_("amount (USDT)"), ordering="amount")
    def amount_display(self, obj: Payout) -> Any:
        return money(obj.amount)

    @display(description=_("status"), ordering="status")
    def status_display(self, obj: Payout) -> Any:
        return badge(obj.status, obj.get_status_display(), STATUS_LABELS)

    @display(description=_("verification note"))
    def note_display(self, obj: Payout) -> str:
        return Truncator(obj.note or obj.last_error).chars(60) or "—"

    # --- checking with Bitpin, verifying or rejecting by hand (fund.admin.decisions): the list's bulk
    # actions and the page's buttons

    verify_by_hand_detail = decision_button(decision_words, verify=True)
    reject_detail = decision_button(decision_words, verify=False)

    def requeue(self, ids: list[int]) -> int:
        return payouts.requeue_verification(payout_ids=ids)

    def decide_by_hand(self, payout: Payout, *, verify: bool, by: User, note: str) -> None:
        decide = payouts.verify_payout_by_hand if verify else payouts.reject_payout
        decide(payout=payout, by=by, note=note)
