"""Draws in the back office: the list, each draw's full report, re-deriving the winner from the
seed, and the "Run monthly draw" action (queued; the draw service decides whether it may run)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action, display

from fund import draw
from fund.admin.base import FundModelAdmin
from fund.admin.confirm import is_confirmed, render_confirmation
from fund.admin.display import badge, loan_link, moment, money, month_label, typed
from fund.jalali import JalaliMonth
from fund.models import Draw, SeedCommitment
from fund.report_rows import pool_names, present_rows, winner_label

OUTCOME_LABELS = {"won": "success", "none": "default"}


# Who started a draw, when not a person: stored in English (fund.draw, the launch command).
COMMITMENT_MAKERS = {
    "schedule": _("the schedule"),
    "payment": _("the month's first payment"),
    "draw": _("the draw"),
    "member page": _("the member page"),
}
TRIGGERS = {"schedule": _("the schedule"), "example fund": _("the example fund")}


@admin.register(Draw)
class DrawAdmin(FundModelAdmin):
    list_display = (
        "month_display",
        "outcome_display",
        "amount_display",
        "cash_display",
        "run_display",
        "triggered_display",
    )
    list_select_related = ("winner", "loan")
    search_fields = ("winner__username", "winner__first_name", "winner__last_name")
    ordering = ("-month",)
    list_per_page = 50
    fields = (
        "month_display",
        "outcome_display",
        ("amount_display", "cash_display"),
        "loan_display",
        ("run_display", "triggered_display"),
    )
    readonly_fields = (
        "month_display",
        "outcome_display",
        "amount_display",
        "cash_display",
        "loan_display",
        "run_display",
        "triggered_display",
    )
    change_form_after_template = "admin/fund/draw/report.html"
    actions_list = ("run_monthly_draw",)
    actions_detail = ("rederive",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Draw]:
        # A report holds a row per member (megabytes in a large fund): the list never reads it,
        # and the change view loads it on its own.
        return super().get_queryset(request).defer("report")

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # draws are made by the draw service only

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # a draw is a record: read it, never edit it

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        the_draw = get_object_or_404(Draw, pk=object_id)
        extra_context = {
            **(extra_context or {}),
            "report": the_draw.report,
            "report_hash": the_draw.report_hash,
            "report_rows": present_rows(the_draw.report),
            "pool_names": pool_names(the_draw.report),
            "winner_label": winner_label(the_draw.report),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- columns ---------------------------------------------------------------------------------

    @display(description=_("triggered by"))
    def triggered_display(self, obj: Draw) -> Any:
        """The schedule and the example fund are named in the reader's language; a person by user name."""
        return TRIGGERS.get(obj.triggered_by) or typed(obj.triggered_by)

    @display(description=_("month"), ordering="month")
    def month_display(self, obj: Draw) -> str:
        return month_label(obj.month)

    @display(description=_("outcome"))
    def outcome_display(self, obj: Draw) -> Any:
        if obj.winner_id is None:
            return badge("none", str(_("no one qualified")), OUTCOME_LABELS)
        return badge("won", obj.winner.get_full_name() or obj.winner.username, OUTCOME_LABELS)

    @display(description=_("loan"))
    def loan_display(self, obj: Draw) -> Any:
        return loan_link(obj.loan)

    @display(description=_("loan amount (USDT)"), ordering="amount")
    def amount_display(self, obj: Draw) -> Any:
        return money(obj.amount)

    @display(description=_("fund cash at the draw (USDT)"), ordering="fund_cash")
    def cash_display(self, obj: Draw) -> Any:
        return money(obj.fund_cash)

    @display(description=_("run at"), ordering="created_at")
    def run_display(self, obj: Draw) -> Any:
        return moment(obj.created_at)

    # --- actions ---------------------------------------------------------------------------------

    @action(description=_("Run monthly draw"), icon="casino", permissions=["operate"], url_path="run-monthly-draw")
    def run_monthly_draw(self, request: HttpRequest) -> HttpResponse:
        month = JalaliMonth.current()
        if not is_confirmed(request):
            state = draw.draw_state(month)
            details = [state.refusal] if state.refusal else []
            if state.draw is not None:
                details = [str(_("This month's draw has already run."))]
            return render_confirmation(
                request,
                self,
                title=_("Run monthly draw"),
                question=_("Run the draw for %(month)s now? The worker runs it within moments; it runs once.")
                % {"month": month_label(month)},
                details=details,
                submit_label=_("Run the draw"),
            )
        try:
            draw.queue_draw(month=month, triggered_by=request.user.get_username())
        except draw.DrawRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
        else:
            self.message_user(
                request,
                _("The draw for %(month)s was queued; its report appears in this list shortly.")
                % {"month": month_label(month)},
                messages.SUCCESS,
            )
        return redirect("admin:fund_draw_changelist")

    @action(description=_("Re-derive the winner"), icon="replay", permissions=["view"], url_path="rederive")
    def rederive(self, request: HttpRequest, object_id: str) -> HttpResponse:
        # Reads only: re-runs the seeded tie-break from the report and compares.
        the_draw = get_object_or_404(Draw.objects.select_related("winner"), pk=object_id)
        derived = draw.rederive_winner(the_draw)
        names = {row["member_id"]: row.get("username", "") for row in the_draw.report.get("rows", [])}
        who = names.get(derived, str(_("no one"))) if derived is not None else str(_("no one"))
        if derived == the_draw.winner_id:
            self.message_user(
                request,
                _("Re-derived from the seed and the pool: %(who)s. This matches the recorded winner.") % {"who": who},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Re-derived from the seed and the pool: %(who)s. This does NOT match the recorded winner.")
                % {"who": who},
                messages.ERROR,
            )
        return redirect("admin:fund_draw_change", the_draw.pk)


@admin.register(SeedCommitment)
class SeedCommitmentAdmin(FundModelAdmin):
    """Each month's published commitment; the secret itself is shown only in the draw's report."""

    list_display = ("month_display", "commitment_display", "published_display", "made_by_display", "beacon_round")
    ordering = ("-month",)
    fields = (
        "month_display",
        "commitment_display",
        "published_display",
        "made_by_display",
        "beacon_url",
        "beacon_round",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # made by fund.proof only, at the start of the month or on demand

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # a commitment never changes once published

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @display(description=_("month"), ordering="month")
    def month_display(self, obj: SeedCommitment) -> str:
        return month_label(obj.month)

    @display(description=_("commitment (SHA-256 of the secret)"))
    def commitment_display(self, obj: SeedCommitment) -> Any:
        return typed(obj.commitment)  # a hash is read as written, in Latin digits

    @display(description=_("made by"))
    def made_by_display(self, obj: SeedCommitment) -> str:
        # Stored in English by fund.proof's callers; shown in the reader's language.
        return str(COMMITMENT_MAKERS.get(obj.made_by, obj.made_by))

    @display(description=_("published at"), ordering="created_at")
    def published_display(self, obj: SeedCommitment) -> Any:
        return moment(obj.created_at)
