"""/api/loans/…: starting this month's draw, loan history, my loans and one loan.

The original API kept a "loan" row for every drawn month, with state "no_one" when nobody was
chosen. Saghat keeps draws and loans apart, so a loan here is either a Loan (id "12": its number)
or a draw that chose nobody (id "draw-7": the draw's number, state "no_one"). A loan's ``log`` is
its draw's public table; an imported loan, drawn before Saghat, has an empty one.

Who sees what: the operator everything; a member their own loans with their repayments, and any
other loan's public part (amount, state, the draw's table), never its repayments.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Mod
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from ninja.errors import HttpError

from fund import draw, ledger
from fund.admin.roles import is_operator
from fund.api import schemas
from fund.api.errors import responses
from fund.api.tokens import bearer, operator_only
from fund.jalali import JalaliMonth
from fund.models import Draw, Loan, Payment, User
from fund.money import ZERO

router = Router(tags=["loans"], auth=bearer)

_LOAN_ID = re.compile(r"^[0-9]{1,18}$")
_NO_ONE_ID = re.compile(r"^draw-([0-9]{1,18})$")


@router.post(
    "/start",
    summary="Start this month's draw",
    response=responses({201: schemas.StartOut, 409: schemas.AlreadyDrawnOut}, 400, 401, 403),
)
def start(request: HttpRequest) -> Status:
    """Run this month's draw now (any member, or the operator) and return its loan.

    400 names who has not paid; 409 when the month was already drawn, with that draw's loan.
    """
    user = request.auth
    if not (user.is_fund_member or is_operator(user)):
        raise HttpError(403, _("Only an active member of the fund may do this."))
    month = JalaliMonth.current()
    existing = Draw.objects.filter(month=month).first()
    if existing is not None:
        detail = str(draw.DrawRefused.already_drawn(month))
        return Status(409, schemas.AlreadyDrawnOut(detail=detail, loan=_draw_out(existing, user)))
    try:
        # Synchronously, unlike the member page's queued job: the client waits for the loan.
        # run_draw runs a month once, so a second start racing this one gets the same draw.
        drawn = draw.run_draw(month=month, triggered_by=user.username)
    except draw.DrawRefused as refused:
        raise HttpError(400, str(refused)) from None
    return Status(201, schemas.StartOut(loan=_draw_out(drawn, user), message=draw.describe(drawn)))


@router.get(
    "/history",
    summary="Loan history",
    auth=operator_only,
    response=responses({200: list[schemas.LoanOut]}, 401, 403, 422),
)
def history(request: HttpRequest, filters: Query[schemas.HistoryFilters]) -> list[schemas.LoanOut]:
    """Every loan and every month whose draw chose nobody, newest first (operator)."""
    loans = _filter(Loan.objects.all(), filters)
    no_one = _filter(Draw.objects.filter(winner__isnull=True), filters)
    if filters.user_id is not None:
        loans, no_one = loans.filter(member_id=filters.user_id), Draw.objects.none()  # nobody's month
    if filters.state == schemas.NO_ONE:
        loans = Loan.objects.none()
    elif filters.state is not None:
        loans, no_one = loans.filter(state=filters.state), Draw.objects.none()
    entries = [*_loans_out(loans, request.auth), *(_no_one_out(d) for d in no_one)]
    return sorted(entries, key=lambda e: (e.jalali_year, e.jalali_month), reverse=True)


@router.get("/my-history", summary="My loans", response=responses({200: list[schemas.LoanOut]}, 401))
def my_history(request: HttpRequest) -> list[schemas.LoanOut]:
    """My loans, newest first, each with its repayments."""
    return _loans_out(Loan.objects.filter(member=request.auth), request.auth)


@router.get("/{loan_id}", summary="One loan", response=responses({200: schemas.LoanOut}, 401, 403, 404))
def loan_detail(request: HttpRequest, loan_id: str) -> schemas.LoanOut:
    """One loan ("12") or a month that chose nobody ("draw-7")."""
    viewer = request.auth
    if _NO_ONE_ID.match(loan_id):
        no_one = Draw.objects.filter(pk=int(_NO_ONE_ID.match(loan_id).group(1)), winner__isnull=True).first()
        if no_one is None:
            raise HttpError(404, _("There is no such loan."))
        _check_may_read_tables(viewer)
        return _no_one_out(no_one)
    loan = Loan.objects.filter(pk=int(loan_id)).first() if _LOAN_ID.match(loan_id) else None
    if loan is None:
        raise HttpError(404, _("There is no such loan."))
    if loan.member_id != viewer.pk:
        _check_may_read_tables(viewer)
    return _loans_out(Loan.objects.filter(pk=loan.pk), viewer)[0]


# --- reading -----------------------------------------------------------------------------------------


def _check_may_read_tables(viewer: User) -> None:
    """Draw tables are for the fund's members and operators (as on the member page), not outsiders."""
    if not (viewer.is_fund_member or is_operator(viewer)):
        raise HttpError(403, _("Only members of the fund may read the draws."))


def _filter(queryset: QuerySet, filters: schemas.HistoryFilters) -> QuerySet:
    """The month filters, on a Loan or Draw query (both keep the month as year × 100 + month)."""
    try:
        first = JalaliMonth.parse(filters.from_month) if filters.from_month else None
        last = JalaliMonth.parse(filters.to_month) if filters.to_month else None
    except ValueError as error:
        raise HttpError(422, str(error)) from None
    conditions = Q()
    if first is not None:
        conditions &= Q(month__gte=first)
    if last is not None:
        conditions &= Q(month__lte=last)
    if filters.jalali_year_gt is not None:
        conditions &= Q(month__gte=(filters.jalali_year_gt + 1) * 100)
    if filters.jalali_year_lt is not None:
        conditions &= Q(month__lt=filters.jalali_year_lt * 100)
    if filters.jalali_month_gt is not None:
        conditions &= Q(month_number__gt=filters.jalali_month_gt)
    if filters.jalali_month_lt is not None:
        conditions &= Q(month_number__lt=filters.jalali_month_lt)
    return queryset.annotate(month_number=Mod(F("month"), 100)).filter(conditions)


def _loans_out(loans: QuerySet[Loan], viewer: User) -> list[schemas.LoanOut]:
    """The loans, newest first, in four queries whatever their number."""
    rows = list(ledger.with_repaid(loans.select_related("member")).order_by("-month", "-pk"))
    reports = {
        loan_id: report
        for loan_id, report in Draw.objects.filter(loan__in=[loan.pk for loan in rows]).values_list("loan_id", "report")
    }
    repayments: dict[int, list[Payment]] = defaultdict(list)
    for payment in Payment.objects.filter(
        loan__in=[loan.pk for loan in rows if _sees_money(viewer, loan)], status=Payment.Status.VERIFIED
    ).order_by("month", "pk"):
        repayments[payment.loan_id].append(payment)
    return [_loan_out(loan, reports.get(loan.pk), repayments[loan.pk], _sees_money(viewer, loan)) for loan in rows]


def _sees_money(viewer: User, loan: Loan) -> bool:
    return loan.member_id == viewer.pk or is_operator(viewer)


def _loan_out(loan: Loan, report: dict | None, repayments: Iterable[Payment], sees_money: bool) -> schemas.LoanOut:
    return schemas.LoanOut(
        id=str(loan.pk),
        user_id=loan.member_id,
        username=loan.member.username,
        amount=loan.amount,
        state=loan.state,
        jalali_year=loan.month.year,
        jalali_month=loan.month.month,
        min_amount_for_each_payment=loan.monthly_minimum,
        total_paid=loan.repaid if sees_money else None,
        remaining_balance=loan.remaining if sees_money else None,
        log=_log(report),
        payments=[
            schemas.RepaymentOut(id=str(p.pk), amount=p.repayment, jalali_year=p.month.year, jalali_month=p.month.month)
            for p in repayments
        ]
        if sees_money
        else [],
    )


def _no_one_out(drawn: Draw) -> schemas.LoanOut:
    return schemas.LoanOut(
        id=f"draw-{drawn.pk}",
        user_id=None,
        username=None,
        amount=None,
        state=schemas.NO_ONE,
        jalali_year=drawn.month.year,
        jalali_month=drawn.month.month,
        min_amount_for_each_payment=None,
        total_paid=ZERO,
        remaining_balance=ZERO,
        log=_log(drawn.report),
        payments=[],
    )


def _draw_out(drawn: Draw, viewer: User) -> schemas.LoanOut:
    if drawn.loan_id is None:
        return _no_one_out(drawn)
    return _loans_out(Loan.objects.filter(pk=drawn.loan_id), viewer)[0]


def _log(report: dict[str, Any] | None) -> schemas.DrawLogOut:
    """A draw's report as the original's log: who took part with their score, who was out and why."""
    rows = (report or {}).get("rows", [])
    return schemas.DrawLogOut(
        participated=[
            schemas.ParticipatedOut(user_id=row["member_id"], username=row["username"], point=row["score"])
            for row in rows
            if row.get("eligible")
        ],
        not_participated=[
            schemas.NotParticipatedOut(
                user_id=row["member_id"], username=row["username"], reason=draw.reason_label(row.get("reason"))
            )
            for row in rows
            if not row.get("eligible")
        ],
        selected=(report or {}).get("winner_id"),
        random_pool=list((report or {}).get("pool", [])),
    )
