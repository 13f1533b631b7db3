"""Scenario 1: the monthly draw over the whole fund, against a per-member baseline.

Ours is ``fund.draw.run_draw`` as the job calls it. The baseline is the same draw with the factors
read the straightforward way: one query per factor per member (written here, for the benchmark
only). Both write the draw and its loan; each repetition is rolled back so that every run draws
the same month of the same fund. The two reports must agree row for row, or the baseline is not
computing the same factors and the run stops.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.db.models import F, Sum

from fund import ledger
from fund.draw import run_draw
from fund.jalali import JalaliMonth
from fund.ledger import MemberFactors
from fund.models import Loan, Payment, User
from fund.money import ZERO, money_add, quantize
from tests.perf.fund import Fund, Sizes
from tests.perf.harness import Figure, Row, repeat

VERIFIED = Payment.Status.VERIFIED


def per_member_factors(month: JalaliMonth, members: Iterable[User] | None = None) -> list[MemberFactors]:
    """The draw factors, one query per factor per member: what a first version would write.

    Eight factors (DESIGN.md, "Monthly draw", §3) and the two facts eligibility needs (an active
    loan, this month's payment): ten queries per member.
    """
    factors = []
    for member in User.objects.members().order_by("pk"):
        paid = Payment.objects.filter(member=member, status=VERIFIED, month__lte=month)
        loans = Loan.objects.filter(member=member, month__lt=month)
        last = paid.order_by("-month").annotate(total=money_add(F("fee"), F("repayment"))).values_list("total", flat=True).first()
        previous = loans.order_by("-month").values_list("amount", flat=True).first()
        factors.append(
            MemberFactors(
                member_id=member.pk,
                username=member.username,
                display_name=member.get_full_name() or member.username,
                balance=quantize(paid.aggregate(total=Sum("fee"))["total"] or ZERO),
                months_without_loan=paid.filter(repayment=0).count(),
                loan_payment_count=paid.filter(repayment__gt=0).count(),
                last_payment_amount=quantize(last or ZERO),
                previous_loan_amount=quantize(previous or ZERO),
                total_loan_amount_received=quantize(loans.aggregate(total=Sum("amount"))["total"] or ZERO),
                total_loans_received=loans.count(),
                # A factor too: read with its own query, like the others.
                loan_request_amount=quantize(
                    User.objects.values_list("loan_request_amount", flat=True).get(pk=member.pk)
                ),
                has_open_loan=Loan.objects.filter(member=member, state__in=Loan.OPEN_STATES).exists(),
                paid_this_month=paid.filter(month=month).exists(),
            )
        )
    return factors


def per_member_inputs(month: JalaliMonth, members: Iterable[User] | None = None) -> tuple[list[MemberFactors], Any]:
    """What run_draw reads: the factors member by member, and the fund's totals (two queries)."""
    return per_member_factors(month, members), ledger.fund_totals()


@contextmanager
def per_member_draw() -> Iterator[None]:
    """Let run_draw read its inputs the per-member way (the baseline), then put the ledger's back."""
    original = ledger.draw_factors_and_totals
    ledger.draw_factors_and_totals = per_member_inputs
    try:
        yield
    finally:
        ledger.draw_factors_and_totals = original


def _draw_and_roll_back(month: JalaliMonth, reports: list[dict]) -> None:
    with transaction.atomic():
        draw = run_draw(month=month, triggered_by="benchmark")
        reports.append(draw.report)
        transaction.set_rollback(True)


def _comparable(report: dict) -> tuple:
    # Not the seed (nor so the winner among tied members): it is drawn afresh each time.
    return report["fund_cash"], report["pool"], report["rows"]


def run(fund: Fund, sizes: Sizes) -> list[Row]:
    month = fund.last_month
    ours_reports: list[dict] = []
    baseline_reports: list[dict] = []
    ours = repeat(lambda: _draw_and_roll_back(month, ours_reports), times=sizes.reps, warmup=1)
    with per_member_draw():
        baseline = repeat(lambda: _draw_and_roll_back(month, baseline_reports), times=sizes.slow_reps)
    if _comparable(ours_reports[-1]) != _comparable(baseline_reports[-1]):
        raise SystemExit("The per-member baseline disagrees with the draw's report: fix the baseline first.")
    rows = len(ours_reports[-1]["rows"])
    ours_figure = Figure.of(ours)
    baseline_figure = Figure.of(baseline)
    ratio = baseline_figure.value / ours_figure.value
    return [
        Row(
            scenario="1. Draw",
            what=f"run_draw, {rows:,} members × {sizes.months} months",
            ours=ours_figure,
            baseline=baseline_figure,
            baseline_what="same draw, one query per factor per member",
            target="< 2 s, constant queries, ≥ 50× baseline",
            met=ours_figure.value < 2 and ratio >= 50,
        )
    ]
