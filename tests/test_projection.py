"""The projected ranking (issue 10): "if the draw ran now", by the draw's own code, writing nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from fund.draw import project_ranking, run_draw
from fund.jalali import JalaliMonth
from fund.models import Draw, Loan, Payment, User

M = JalaliMonth(1404, 9)


@pytest.fixture
def fund(history):
    """Ann and Ben never borrowed (tied, unlimited); Cid borrowed and repaid; Dee is repaying."""
    ann, ben = history.member("ann", request=60), history.member("ben", request=80)
    cid, dee = history.member("cid", request=100), history.member("dee", request=0)
    for member in (ann, ben, cid, dee):
        history.pay_months(member, "1404/01", 8, fee=25)
    old = history.loan(cid, "1404/02", 100, state=Loan.State.SETTLED)
    history.loan(dee, "1404/07", 200)
    repaid = [JalaliMonth(1404, 3), JalaliMonth(1404, 4)]
    Payment.objects.filter(member=cid, month__in=repaid).update(repayment=50, loan=old)
    return {m.username: m for m in (ann, ben, cid, dee)}


def pay_everyone(history, members):
    for member in members.values():
        history.pay(member, M, 25)


def test_the_projection_equals_the_draws_report_when_nothing_changes(fund, history):
    pay_everyone(history, fund)

    projected = project_ranking(M)
    result = run_draw(month=M)

    assert projected["rows"] == result.report["rows"]
    assert projected["pool"] == result.report["pool"]
    assert projected["fund_cash"] == result.report["fund_cash"]
    assert projected["month"] == result.report["month"] == "1404/09"
    assert result.winner_id in projected["pool"]


def test_the_projection_writes_nothing(fund):
    project_ranking(M)
    assert not Draw.objects.exists()
    assert Loan.objects.count() == 2
    assert User.objects.get(username="ann").loan_request_amount == Decimal(60)


def test_the_projection_works_before_everyone_has_paid(fund, history):
    history.pay(fund["ann"], M, 25)

    projected = project_ranking(M)

    rows = {row["username"]: row for row in projected["rows"]}
    assert rows["ann"]["paid_this_month"] is True and rows["ann"]["balance"] == "225"
    assert rows["ben"]["paid_this_month"] is False and rows["ben"]["balance"] == "200"
    assert [(r["username"], r["rank"], r["reason"]) for r in projected["rows"]] == [
        ("ann", 1, None),
        ("ben", 1, None),
        ("cid", 3, None),
        ("dee", None, "open_loan"),
    ]


def test_a_tie_at_the_top_names_the_pool_but_no_winner(fund):
    projected = project_ranking(M)
    assert projected["pool"] == sorted([fund["ann"].pk, fund["ben"].pk])
    assert projected["winner_id"] is None
    assert projected["seed"] is None


def test_a_single_leader_is_the_projected_winner(fund):
    User.objects.filter(username="ben").update(loan_request_amount=0)
    projected = project_ranking(M)
    assert projected["pool"] == [fund["ann"].pk]
    assert projected["winner_id"] == fund["ann"].pk


def test_the_projection_says_when_it_was_computed(fund):
    projected = project_ranking(M)
    moment = dt.datetime.fromisoformat(projected["projected_at"])
    assert abs(moment - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_the_projection_defaults_to_the_current_month(fund):
    assert project_ranking()["month"] == str(JalaliMonth.current())
