"""The member's self-service page (DESIGN.md, "Member page"), the statement and the password pages.

Views are thin: they read figures from fund.ledger and fund.draw, and every write goes through a
service (fund.payments.submit_payment, change_loan_request, fund.draw.queue_draw). The member is
always ``request.user`` and the month always the current one: nothing in a POST can choose them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from fund import draw, explain, ledger, payments, proof, reconciliation, statement
from fund.forms import LoanRequestForm, PaymentForm
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User
from fund.notify_views import notification_settings
from fund.report_rows import present_rows

# --- reading the page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThisMonth:
    """The member's payment for the current month: the one that counts, or the last rejected one."""

    month: JalaliMonth
    payment: Payment | None

    @property
    def state(self) -> str:
        return self.payment.status if self.payment else "not_paid"

    @property
    def payment_due(self) -> bool:
        # A rejected payment may be submitted again (DESIGN.md, "Payment", rule 2).
        return self.payment is None or self.payment.status == Payment.Status.REJECTED


def this_month(member: User, month: JalaliMonth) -> ThisMonth:
    submitted = list(Payment.objects.filter(member=member, month=month).order_by("-pk"))
    counting = [p for p in submitted if p.status != Payment.Status.REJECTED]
    return ThisMonth(month, counting[0] if counting else (submitted[0] if submitted else None))


@dataclass(frozen=True)
class LoanPosition:
    loan: Loan  # annotated with repaid and remaining (verified repayments)
    due: payments.RepaymentDue | None  # this month's repayment; None for a loan granted this month


def loan_position(member: User, month: JalaliMonth) -> LoanPosition | None:
    loan = ledger.active_loan(member)
    if loan is None:
        return None
    return LoanPosition(loan, payments.repayment_due(member=member, month=month))


def latest_draw() -> Draw | None:
    # Without its report (a row per member): draw.stored_report reads that once per process.
    return Draw.objects.select_related("winner").defer("report").order_by("-month").first()


# A draw table on the member page shows the first rows and the member's own; the whole table, a
# row per member (thousands in a large fund), is one link away instead of in every visit.
TABLE_ROWS = 25


@dataclass(frozen=True)
class ReportTable:
    rows: list[dict]  # the rows shown, each with its reason label and whether it is the member's
    total: int  # rows in the whole report
    pool: list[int]

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)


def report_table(report: dict | None, member: User, limit: int | None = TABLE_ROWS) -> ReportTable:
    report = report or {}
    rows = report.get("rows", [])
    shown = rows if limit is None else rows[:limit]
    position = draw.report_index(report).positions.get(member.pk) if rows else None
    if limit is not None and position is not None and position >= limit:
        shown = [*shown, rows[position]]
    return ReportTable(present_rows(report, viewer_id=member.pk, rows=shown), len(rows), list(report.get("pool", [])))


def _member_context(member: User, payment_form: PaymentForm | None, loan_form: LoanRequestForm | None) -> dict:
    config = ledger.fund_config()
    month = JalaliMonth.current()
    position = loan_position(member, month)
    due = position.due if position else None
    status = this_month(member, month)
    state = draw.draw_state(month, names=False, config=config)
    last = latest_draw()
    last_report = draw.stored_report(last) if last else None
    payment_due = status.payment_due and not member.is_leaving  # a leaving member pays nothing more
    if payment_form is None and payment_due:
        payment_form = PaymentForm(has_loan=_repaying(due), initial=_payment_initial(config, due))
    return {
        "member": member,
        "config": config,
        "month": month,
        "balance": ledger.balance_of(member),
        "position": position,
        "this_month": status,
        "payment_form": payment_form if payment_due else None,
        "awaiting_payout": None
        if position
        else Loan.objects.filter(member=member, state=Loan.State.AWAITING_PAYOUT).first(),
        "reading": reconciliation.latest_reading(),
        "loan_form": loan_form or LoanRequestForm(initial={"amount": member.loan_request_amount}),
        "payments": member.payments.order_by("-month", "-pk"),
        "loans": ledger.with_repaid(Loan.objects.filter(member=member)).order_by("-month", "-pk"),
        "draw_state": state,
        # Published before any payment of the month is due (DESIGN.md, "Proof of the draw").
        "commitment": proof.ensure_commitment(month, made_by="member page"),
        "deadline_days_left": state.deadline.days_left() if state.deadline else None,
        "latest_draw": last,
        "latest_table": report_table(last_report, member),
        "previous_month": _previous_month(last_report),
        "projection": _projection(month, state, member, config=config),
        "notify": notification_settings(member),
    }


def _previous_month(report: dict | None) -> JalaliMonth | None:
    """The month of the draw before this one, whose report the chain links to."""
    previous = (report or {}).get("previous_month")
    return JalaliMonth.parse(previous) if previous else None


def _repaying(due: payments.RepaymentDue | None) -> bool:
    """Whether this month's payment carries a repayment field: a loan with something left to repay."""
    return due is not None and due.bounds.maximum > 0


def _payment_initial(config: Any, due: payments.RepaymentDue | None) -> dict[str, Decimal]:
    initial = {"fee": config.min_fee}
    if _repaying(due):
        initial["repayment"] = due.bounds.minimum
    return initial


@dataclass(frozen=True)
class Projection:
    month: str
    projected_at: str
    fund_cash: str
    table: ReportTable
    winner_id: int | None
    mine: dict | None
    eligible_count: int

    @property
    def rows(self) -> list[dict]:
        return self.table.rows

    @property
    def pool(self) -> list[int]:
        return self.table.pool


def _projection(
    month: JalaliMonth,
    state: draw.DrawState,
    member: User,
    limit: int | None = TABLE_ROWS,
    config: FundConfig | None = None,
) -> Projection:
    """What "if the draw ran now" says: for this month until its draw has run, then for the next one."""
    target = draw.projection_month(month, state)
    report = draw.current_projection(target, config)
    table = report_table(report, member, limit)
    return Projection(
        month=report.get("month", str(target)),
        projected_at=report.get("projected_at", ""),
        fund_cash=report.get("fund_cash", "0"),
        table=table,
        winner_id=report.get("winner_id"),
        mine=next((row for row in table.rows if row["mine"]), None),
        eligible_count=draw.report_index(report).eligible,
    )


def _render_page(
    request: HttpRequest,
    *,
    payment_form: PaymentForm | None = None,
    loan_form: LoanRequestForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(request, "fund/home.html", _member_context(request.user, payment_form, loan_form), status=status)


def _not_a_member(request: HttpRequest, status: int = 200) -> HttpResponse:
    # An operator who is not a member still links a chat here, for the operators' notifications.
    context = {"notify": notification_settings(request.user)} if request.method == "GET" else {}
    return render(request, "fund/not_member.html", context, status=status)


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in and an active member of the fund; anyone else gets the page that says so (a 403 for
    a POST, which changes nothing)."""

    @login_required
    @functools.wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_fund_member:
            return _not_a_member(request, status=403 if request.method == "POST" else 200)
        return view(request, *args, **kwargs)

    return checked


@member_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _render_page(request)


# --- writing: each POST calls one service ---------------------------------------------------------


@member_required
@require_POST
def pay(request: HttpRequest) -> HttpResponse:
    member = request.user
    month = JalaliMonth.current()
    form = PaymentForm(request.POST, has_loan=_repaying(payments.repayment_due(member=member, month=month)))
    if form.is_valid():
        try:
            payment = payments.submit_payment(
                member=member,
                month=month,
                fee=form.cleaned_data["fee"],
                repayment=form.repayment_amount(),
                bitpin_id=form.cleaned_data["bitpin_id"],
                source=Payment.Source.MEMBER,
                submitted_by=member,
                loan_request=form.cleaned_data.get("loan_request"),
            )
        except payments.PaymentRefused as refused:
            if refused.field not in form.fields:
                # E.g. already paid: the page's status explains it better than a form would.
                messages.error(request, refused.message)
                return redirect("member-home")
            form.add_error(refused.field, refused.message)
        else:
            messages.success(
                request,
                _("Your payment for %(month)s was received and is waiting for verification with Bitpin.")
                % {"month": payment.month.label(get_language())},
            )
            return redirect("member-home")
    return _render_page(request, payment_form=form)


@member_required
@require_POST
def change_loan_request(request: HttpRequest) -> HttpResponse:
    member = request.user
    form = LoanRequestForm(request.POST)
    if form.is_valid():
        try:
            member = payments.change_loan_request(member=member, amount=form.cleaned_data["amount"])
        except payments.PaymentRefused as refused:
            form.attach_refusal(refused.field, refused.message)
        else:
            messages.success(request, _("Your loan request was saved."))
            outlook = draw.request_outlook(member)
            if outlook:
                messages.warning(request, outlook)
            return redirect("member-home")
    return _render_page(request, loan_form=form)


@member_required
@require_POST
def run_draw(request: HttpRequest) -> HttpResponse:
    member = request.user
    month = JalaliMonth.current()
    try:
        draw.queue_draw(month=month, triggered_by=member.username)
    except draw.DrawRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            _("The draw for %(month)s was queued; its result appears here shortly.")
            % {"month": month.label(get_language())},
        )
    return redirect("member-home")


# --- the whole tables ------------------------------------------------------------------------------


@member_required
@require_GET
def draw_table(request: HttpRequest) -> HttpResponse:
    """The latest draw's whole table: every member's factors, score or reason (DESIGN.md, "Member page")."""
    last = latest_draw()
    report = draw.stored_report(last) if last else None
    context = {
        "latest_draw": last,
        "table": report_table(report, request.user, None),
        "previous_month": _previous_month(report),
        # Every draw's report, newest first, for members who check the whole chain.
        "all_draws": Draw.objects.order_by("-month").values("month", "report_hash", "created_at"),
    }
    return render(request, "fund/draw_table.html", context)


@member_required
@require_GET
def ranking(request: HttpRequest) -> HttpResponse:
    """The whole projected ranking ("if the draw ran now")."""
    month = JalaliMonth.current()
    projection = _projection(month, draw.draw_state(month, names=False), request.user, limit=None)
    return render(request, "fund/ranking.html", {"projection": projection})


# --- checking a draw yourself (DESIGN.md, "Proof of the draw") ---------------------------------------

VERIFIER_PATH = Path(__file__).resolve().parent / "static" / "fund" / "verify_draw.py"


@login_required
@require_GET
def draw_report_json(request: HttpRequest, year: int, month: int) -> HttpResponse:
    """A draw's report in its canonical form, with its hash: what the verifier reads."""
    if not request.user.is_fund_member:
        return _not_a_member(request)
    try:
        parsed = JalaliMonth(year, month)
    except ValueError:
        raise Http404 from None
    the_draw = Draw.objects.filter(month=parsed).defer("report").first()
    if the_draw is None:
        raise Http404
    body = proof.downloadable(draw.stored_report(the_draw), the_draw.report_hash)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="saghat-draw-{parsed.year:04d}-{parsed.month:02d}.json"'
    return response


@login_required
@require_GET
def draw_verifier(request: HttpRequest) -> HttpResponse:
    """The standalone verifier, the same file as in the repository."""
    if not request.user.is_fund_member:
        return _not_a_member(request)
    response = HttpResponse(VERIFIER_PATH.read_bytes(), content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="verify_draw.py"'
    return response


def _explanation(member: User, rows: list[statement.StatementRow], month_text: str) -> explain.Explanation | None:
    """For ``?draw=1404/09``: how the member's factors in that draw (or its projection) follow from ``rows``."""
    try:
        month = JalaliMonth.parse(month_text)
    except ValueError:
        return None
    the_draw = Draw.objects.filter(month=month).defer("report").first()
    report = draw.stored_report(the_draw) if the_draw else draw.current_projection(month)
    position = draw.report_index(report).positions.get(member.pk)
    row = report["rows"][position] if position is not None else None
    return explain.explain(rows, month, row)


# --- the statement --------------------------------------------------------------------------------


def statement_context(member: User, *, csv_url: str, back_url: str = "") -> dict[str, Any]:
    """What templates/fund/statement.html needs; the admin renders the same page for any member."""
    rows = statement.statement_rows(member)
    return {
        "member": member,
        "config": ledger.fund_config(),
        "rows": rows,
        "totals": statement.statement_totals(rows),
        "csv_url": csv_url,
        "back_url": back_url,
    }


@member_required
@require_GET
def statement_page(request: HttpRequest) -> HttpResponse:
    context = statement_context(request.user, csv_url=reverse("member-statement-csv"), back_url=reverse("member-home"))
    if request.GET.get("draw"):
        context["explanation"] = _explanation(request.user, context["rows"], request.GET["draw"])
    return render(request, "fund/statement.html", context)


@member_required
@require_GET
def statement_csv(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(statement.statement_csv(request.user), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{statement.statement_filename(request.user)}"'
    return response


# --- passwords ------------------------------------------------------------------------------------


class PasswordSetView(auth_views.PasswordResetConfirmView):
    """The operator's set-password link and the e-mailed reset link both land here."""

    template_name = "registration/password_set_form.html"
    success_url = reverse_lazy("password-set-complete")
    title = gettext_lazy("Choose your password")

    def form_valid(self, form: Any) -> HttpResponse:
        # Nobody is logged in yet: the audit trail names the member who followed their own link.
        form.user._history_user = form.user
        return super().form_valid(form)


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password-reset-done")
