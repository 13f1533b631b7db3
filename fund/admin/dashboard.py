"""The operator's dashboard: this month at a glance, the last 24 months, and the projected ranking.

Every figure comes from fund.ledger and fund.draw (the same code as the member page and the
draw), in a fixed number of queries whatever the size of the fund.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from fund import draw, health, ledger, proof, reconciliation
from fund.admin.display import month_label
from fund.admin.roles import is_operator
from fund.jalali import JalaliMonth
from fund.models import Loan, Payment, Payout, User
from fund.report_rows import pool_names, present_rows

CHART_MONTHS = 24
LATE_PAYERS_SHOWN = 30
RANKING_ROWS_SHOWN = 15
AWAITING_SHOWN = 10


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    month = JalaliMonth.current()
    state = draw.draw_state(month)
    commitment = proof.ensure_commitment(month, made_by="dashboard")
    context.update(
        month=month,
        month_label=month_label(month),
        days_left=month.days_left(),
        paid=ledger.paid_count(month),
        totals=ledger.fund_totals(),
        pending=Payment.objects.filter(status=Payment.Status.PENDING).count(),
        draw_state=state,
        commitment=commitment,
        deadline_days_left=state.deadline.days_left() if state.deadline else None,
        late_payers=_late_payers(month),
        chart=_chart(month),
        projection=_projection(month, state),
        links=_links(),
        can_operate=is_operator(request.user),
        reading=reconciliation.latest_reading(),
        awaiting_payout=_awaiting_payout(),
        leaving=_leaving(),
        worker=health.worker_health(),
    )
    return context


def _awaiting_payout() -> dict[str, Any]:
    """Loans the draw granted whose money has not reached the winner yet, oldest first, with their age."""
    in_check = Payout.objects.filter(loan=OuterRef("pk"), status=Payout.Status.PENDING)
    loans = (
        Loan.objects.filter(state=Loan.State.AWAITING_PAYOUT)
        .select_related("member")
        .annotate(payout_in_check=Exists(in_check))
        .order_by("created_at", "pk")
    )
    shown = list(loans[:AWAITING_SHOWN])
    now = timezone.now()
    for loan in shown:
        loan.age_days = (now - loan.created_at).days
    count = len(shown) if len(shown) < AWAITING_SHOWN else loans.count()
    return {"shown": shown, "count": count, "more": max(0, count - len(shown))}


def _leaving() -> list[User]:
    """Members recorded as leaving whose refund is not verified yet (few: a short list)."""
    return list(User.objects.filter(is_active=True, leaving_since__isnull=False).order_by("leaving_since")[:20])


def _late_payers(month: JalaliMonth) -> dict[str, Any]:
    unpaid = ledger.unpaid_members(month)
    return {"shown": unpaid[:LATE_PAYERS_SHOWN], "more": max(0, len(unpaid) - LATE_PAYERS_SHOWN), "count": len(unpaid)}


def _chart(month: JalaliMonth) -> str:
    """Chart.js data for unfold's bar chart: monthly inflow as bars, fund cash at month end as a line."""
    series = ledger.monthly_series(month - (CHART_MONTHS - 1), month)
    data = {
        "labels": [month_label(figures.month) for figures in series],
        "datasets": [
            {
                "label": _("Inflow (fees + repayments)"),
                "data": [float(figures.inflow) for figures in series],
                "backgroundColor": "var(--color-primary-400)",
                "displayYAxis": True,
                "order": 2,
            },
            {
                "type": "line",
                "label": _("Fund cash at month end"),
                "data": [float(figures.cash_at_end) for figures in series],
                "borderColor": "var(--color-primary-700)",
                "backgroundColor": "var(--color-primary-700)",
                "tension": 0.25,
                "order": 1,
            },
        ],
    }
    return json.dumps(data)


def _projection(month: JalaliMonth, state: draw.DrawState) -> dict[str, Any]:
    """ "If the draw ran now": this month's until its draw has run, then next month's."""
    target = draw.projection_month(month, state)
    # Recomputed only after a write (a second per visit in a fund of 10,000 members otherwise).
    report = draw.current_projection(target)
    total = len(report.get("rows", []))
    return {
        "month_label": month_label(target),
        "report": report,
        "rows": present_rows(report, rows=report.get("rows", [])[:RANKING_ROWS_SHOWN]),
        "more": max(0, total - RANKING_ROWS_SHOWN),
        "eligible": draw.report_index(report).eligible,
        "pool_names": pool_names(report),
    }


def _links() -> dict[str, str]:
    members = reverse("admin:fund_user_changelist")
    payments = reverse("admin:fund_payment_changelist")
    return {
        "members": members,
        "unpaid": f"{members}?paid=no&is_member__exact=1&is_active__exact=1",
        "pending": f"{payments}?status__exact={Payment.Status.PENDING}",
        "loans": f"{reverse('admin:fund_loan_changelist')}?state__exact=active",
        "awaiting_payout": f"{reverse('admin:fund_loan_changelist')}?state__exact=awaiting_payout",
        "readings": reverse("admin:fund_reconciliation_changelist"),
        "read_wallet": reverse("admin:fund_reconciliation_read_wallet"),
        "draws": reverse("admin:fund_draw_changelist"),
        "run_draw": reverse("admin:fund_draw_run_monthly_draw"),
    }


def pending_payments_badge(request: HttpRequest) -> str:
    """The sidebar's count of payments waiting for verification ("" when none)."""
    count = Payment.objects.filter(status=Payment.Status.PENDING).count()
    return str(count) if count else ""
