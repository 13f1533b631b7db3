"""The monthly draw (DESIGN.md, "Monthly draw"): precondition, eligibility, score, fund check,
tie-break, the loan it grants, exactly once, the jobs that run it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from fund import draw as draws
from fund.draw import DrawRefused, draw_state, pick_winner, queue_draw, rederive_winner, run_draw
from fund.health import queued_jobs
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User

M = JalaliMonth(1404, 9)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def rows_by_name(report: dict) -> dict[str, dict]:
    return {row["username"]: row for row in report["rows"]}


# --- the README's worked example -------------------------------------------------------------------

# The table printed in README.md, section "How the draw works". Keep the two identical.
README_TABLE = {
    #          balance, months w/o loan, loan payments, last payment, previous loan, total received,
    #          loans, request, score, rank, reason
    "reza": ("240", 12, 0, "20", "0", "0", 0, "200", "unlimited", 1, None),
    "ali": ("240", 7, 5, "20", "100", "100", 1, "150", "0.076566084", 2, None),
    "sara": ("360", 5, 7, "30", "200", "300", 2, "300", "0.011411972", 3, None),
    "maryam": ("300", 9, 3, "45", "300", "300", 1, "0", None, None, "open_loan"),
}
README_FUND_CASH = "900"
README_WINNER = "reza"
FIELDS = (
    "balance",
    "months_without_loan",
    "loan_payment_count",
    "last_payment_amount",
    "previous_loan_amount",
    "total_loan_amount_received",
    "total_loans_received",
    "loan_request_amount",
    "score",
    "rank",
    "reason",
)


@pytest.fixture
def readme_fund(history):
    """Twelve months, 1403/10 to 1404/09, of the four members of the README's example."""
    first = JalaliMonth(1403, 10)
    months = first.range_to(M)
    reza = history.member("reza", request=200)
    ali = history.member("ali", request=150)
    sara = history.member("sara", request=300)
    maryam = history.member("maryam", request=0)
    for month in months:
        history.pay(reza, month, 20)
    # Ali borrowed 100 in 1403/12 and repaid it in five instalments of 20.
    history.loan(ali, "1403/12", 100, state=Loan.State.SETTLED)
    for month in months:
        repaid = JalaliMonth(1404, 1) <= month <= JalaliMonth(1404, 5)
        history.pay(ali, month, 20, 20 if repaid else 0, loan=Loan.objects.get(member=ali) if repaid else None)
    # Sara borrowed 100 in 1403/10 (repaid 50 + 50), then 200 in 1404/01 (repaid 40 × 5).
    first_loan = history.loan(sara, "1403/10", 100, state=Loan.State.SETTLED)
    second_loan = history.loan(sara, "1404/01", 200, state=Loan.State.SETTLED)
    for month in months:
        loan = first_loan if month in (JalaliMonth(1403, 11), JalaliMonth(1403, 12)) else None
        loan = second_loan if JalaliMonth(1404, 2) <= month <= JalaliMonth(1404, 6) else loan
        repayment = 0 if loan is None else (50 if loan == first_loan else 40)
        history.pay(sara, month, 30, repayment, loan=loan)
    # Maryam borrowed 300 in 1404/06 and is repaying it: out of this draw.
    history.loan(maryam, "1404/06", 300)
    for month in months:
        history.pay(maryam, month, 25, 20 if month > JalaliMonth(1404, 6) else 0)
    return {"reza": reza, "ali": ali, "sara": sara, "maryam": maryam}


def test_the_readme_example_matches_what_the_code_computes(readme_fund):
    result = run_draw(month=M, triggered_by="test")

    rows = rows_by_name(result.report)
    assert set(rows) == set(README_TABLE)
    for username, expected in README_TABLE.items():
        assert tuple(rows[username][name] for name in FIELDS) == expected, username
    assert result.report["fund_cash"] == README_FUND_CASH
    assert result.winner.username == README_WINNER
    assert result.report["pool"] == [readme_fund["reza"].pk]
    assert [row["username"] for row in result.report["rows"]] == ["reza", "ali", "sara", "maryam"]


# --- the precondition -------------------------------------------------------------------------------


@pytest.fixture
def two_members(history):
    alice = history.member("alice", request=100)
    bob = history.member("bob", request=0)
    history.pay_months(alice, "1404/01", 9)
    history.pay_months(bob, "1404/01", 8)
    return alice, bob


def test_draw_refuses_when_a_member_has_not_paid_and_writes_nothing(two_members):
    alice, bob = two_members

    with pytest.raises(DrawRefused) as refused:
        run_draw(month=M)

    assert refused.value.unpaid == [bob]
    assert str(refused.value) == "The draw for 1404/09 cannot run yet: 1 member has not paid: bob."
    assert not Draw.objects.exists()
    assert not Loan.objects.exists()
    alice.refresh_from_db()
    assert alice.loan_request_amount == Decimal(100)


def test_draw_refuses_while_a_payment_is_pending_or_rejected(two_members, history):
    _alice, bob = two_members
    carol = history.member("carol")
    history.pay(bob, M, status=Payment.Status.PENDING)
    history.pay(carol, M, status=Payment.Status.REJECTED)

    with pytest.raises(DrawRefused) as refused:
        run_draw(month=M)

    assert [m.username for m in refused.value.unpaid] == ["bob", "carol"]
    assert "2 members have not paid: bob, carol." in str(refused.value)
    assert not Draw.objects.exists()


def test_inactive_members_and_operators_need_not_pay(two_members, history, operator):
    alice, bob = two_members
    history.member("gone", is_active=False)
    history.pay(bob, M)

    result = run_draw(month=M)

    assert result.winner == alice
    assert set(rows_by_name(result.report)) == {"alice", "bob"}


def test_draw_refuses_a_month_that_has_not_begun(history):
    future = JalaliMonth.current().next()
    with pytest.raises(DrawRefused) as refused:
        run_draw(month=future)
    assert refused.value.code == "future_month"
    assert not Draw.objects.exists()


def test_draw_refuses_when_the_fund_has_no_members(config):
    with pytest.raises(DrawRefused) as refused:
        run_draw(month=M)
    assert refused.value.code == "no_members"
    assert not Draw.objects.exists()


# --- factors and eligibility ----------------------------------------------------------------------------------------


def everyone_paid(history, members: list[User], months: int = 9) -> None:
    for member in members:
        history.pay_months(member, M - (months - 1), months)


def test_factors_are_taken_as_of_the_draw_month(history):
    alice = history.member("alice", request=50)
    history.pay_months(alice, "1404/01", 3, fee=30)  # 1404/01–03, no repayment
    old = history.loan(alice, "1404/03", 100, state=Loan.State.SETTLED)
    history.pay(alice, "1404/04", 30, 60, loan=old)
    history.pay(alice, "1404/05", 30, 40, loan=old)
    history.pay(alice, "1404/06", 25)
    history.pay(alice, "1404/07", 25, status=Payment.Status.PENDING)  # not verified: does not count
    history.pay(alice, M, 25)
    new = history.loan(alice, M, 300)  # granted in the draw month: not "before" it
    history.pay(alice, "1404/10", 25, 20, loan=new)  # after the draw month: does not count

    row = rows_by_name(draws.project_ranking(M))["alice"]

    assert row["balance"] == "200"  # 3 × 30 + 2 × 30 + 25 + 25
    assert row["months_without_loan"] == 5  # 1404/01, 02, 03, 06, 09
    assert row["loan_payment_count"] == 2  # 1404/04, 05
    assert row["last_payment_amount"] == "25"  # 1404/09's, not 1404/10's
    assert row["previous_loan_amount"] == "100"
    assert row["total_loan_amount_received"] == "100"
    assert row["total_loans_received"] == 1
    assert row["loan_request_amount"] == "50"
    assert row["reason"] == "open_loan"  # but the active loan itself counts now


def test_each_reason_for_being_out_is_reported_with_the_factors(history):
    borrower = history.member("borrower", request=50)
    silent = history.member("silent", request=0)
    greedy = history.member("greedy", request=1000)
    fine = history.member("fine", request=100)
    everyone_paid(history, [borrower, silent, greedy, fine])
    history.loan(borrower, M, 100)

    rows = rows_by_name(run_draw(month=M).report)

    assert rows["borrower"]["reason"] == "open_loan"
    assert rows["silent"]["reason"] == "no_request"
    assert rows["greedy"]["reason"] == "request_exceeds_balance"
    assert rows["fine"]["reason"] is None and rows["fine"]["eligible"] is True
    for name in ("borrower", "silent", "greedy"):
        row = rows[name]
        assert (row["eligible"], row["score"], row["rank"]) == (False, None, None)
        assert row["balance"] == "180"
        assert row["months_without_loan"] == 9
    assert rows["borrower"]["previous_loan_amount"] == "0"  # a loan of the draw month is not "before" it
    assert draws.reason_label("request_exceeds_balance") == "asks for more than their balance"


def test_a_request_equal_to_the_balance_is_eligible(history):
    alice = history.member("alice", request=180)
    everyone_paid(history, [alice])
    assert run_draw(month=M).winner == alice


def test_a_candidate_asking_more_than_the_fund_cash_is_out_and_the_next_wins(history, config):
    # Fees 3 × 180 + repayments 120 − loans 500: the fund holds 160 although balances add up to 540.
    alice = history.member("alice", request=Decimal("160.00000001"))
    bob = history.member("bob", request=0)
    carl = history.member("carl", request=160)
    everyone_paid(history, [alice, bob, carl])
    history.loan(bob, "1404/08", 400)
    Payment.objects.filter(member=bob, month=M).update(repayment=20, loan=Loan.objects.get(member=bob))
    loan = history.loan(carl, "1404/01", 100, state=Loan.State.SETTLED)
    Payment.objects.filter(member=carl, month__in=[JalaliMonth(1404, 2), JalaliMonth(1404, 3)]).update(
        repayment=50, loan=loan
    )

    result = run_draw(month=M)

    rows = rows_by_name(result.report)
    assert result.report["fund_cash"] == "160"
    assert rows["alice"]["reason"] == "exceeds_fund_cash"
    assert rows["alice"]["score"] == "unlimited"  # scored, then removed by the fund check
    assert (rows["alice"]["eligible"], rows["alice"]["rank"]) == (False, None)
    assert rows["carl"]["eligible"] is True  # asking exactly the fund cash is allowed
    assert result.winner == carl
    assert result.fund_cash == Decimal(160)


def test_a_never_borrowed_member_beats_any_finite_score(history):
    newcomer = history.member("newcomer", request=20)
    veteran = history.member("veteran", request=Decimal("1.5"))
    history.pay_months(newcomer, M, 1)
    history.pay_months(veteran, "1400/01", 57, fee=1000)
    loan = history.loan(veteran, "1399/12", 2, state=Loan.State.SETTLED)
    Payment.objects.filter(member=veteran, month=JalaliMonth(1400, 1)).update(repayment=2, loan=loan)

    result = run_draw(month=M)

    rows = rows_by_name(result.report)
    assert rows["newcomer"]["score"] == "unlimited"
    assert Decimal(rows["veteran"]["score"]) > 0
    assert result.winner == newcomer
    assert (rows["newcomer"]["rank"], rows["veteran"]["rank"]) == (1, 2)


def test_no_one_qualifies_records_a_draw_without_a_loan(history):
    alice = history.member("alice", request=0)
    everyone_paid(history, [alice])

    result = run_draw(month=M, triggered_by="operator")

    assert (result.winner, result.loan, result.amount) == (None, None, Decimal(0))
    assert result.report["winner_id"] is None and result.report["pool"] == []
    assert result.triggered_by == "operator"
    assert not Loan.objects.exists()
    assert draws.describe(result) == "Draw of 1404/09: no one qualified for a loan."


# --- winner, tie-break, loan ------------------------------------------------------------------------------


def test_the_winner_gets_the_loan_and_the_request_returns_to_zero(history, config):
    config.min_repayment, config.max_repayment_months = Decimal(10), 12
    config.save()
    alice = history.member("alice", request=150)
    everyone_paid(history, [alice])

    result = run_draw(month=M, triggered_by="alice")

    loan = Loan.objects.get()
    assert (loan.member, loan.amount, loan.month, loan.state) == (alice, Decimal(150), M, Loan.State.AWAITING_PAYOUT)
    assert loan.monthly_minimum == Decimal("12.50")  # max(10, 150 / 12)
    assert (result.winner, result.loan, result.amount) == (alice, loan, Decimal(150))
    alice.refresh_from_db()
    assert alice.loan_request_amount == 0
    assert rows_by_name(result.report)["alice"]["loan_request_amount"] == "150"  # the report keeps what was asked


def test_a_tie_is_broken_by_the_recorded_seed_over_the_recorded_pool(history):
    members = [history.member(name, request=50) for name in ("ann", "ben", "cid")]
    everyone_paid(history, members)

    result = run_draw(month=M)

    ids = sorted(m.pk for m in members)
    assert result.report["pool"] == ids
    assert [row["rank"] for row in result.report["rows"]] == [1, 1, 1]
    assert len(result.seed) == 64 and result.report["seed"] == result.seed  # a SHA-256 (DESIGN.md, "Proof of the draw")
    assert result.winner_id == result.report["winner_id"] == pick_winner(result.seed, ids)
    assert rederive_winner(result) == result.winner_id


def test_the_tie_break_gives_every_tied_member_a_chance():
    winners = {pick_winner(f"seed-{n}", [7, 3, 5]) for n in range(200)}
    assert winners == {3, 5, 7}


def test_a_tampered_report_no_longer_rederives_the_winner(history):
    members = [history.member(name, request=50) for name in ("ann", "ben")]
    everyone_paid(history, members)
    result = run_draw(month=M)
    seeds = [s for s in (f"x{n}" for n in range(100)) if pick_winner(s, result.report["pool"]) != result.winner_id]

    result.report["seed"] = seeds[0]

    assert rederive_winner(result) != result.winner_id


def test_ranks_are_shared_by_equal_scores_and_skip_after_a_tie(history):
    ann, ben = history.member("ann", request=50), history.member("ben", request=50)
    cid = history.member("cid", request=50)
    everyone_paid(history, [ann, ben, cid])
    loan = history.loan(cid, "1404/01", 100, state=Loan.State.SETTLED)
    Payment.objects.filter(member=cid, month__in=[JalaliMonth(1404, 2), JalaliMonth(1404, 3)]).update(
        repayment=50, loan=loan
    )

    report = run_draw(month=M).report

    assert [(row["username"], row["rank"]) for row in report["rows"]] == [("ann", 1), ("ben", 1), ("cid", 3)]


# --- exactly once -----------------------------------------------------------------------------------------------


def test_a_second_run_returns_the_same_draw_and_makes_no_second_loan(history):
    alice = history.member("alice", request=100)
    bob = history.member("bob", request=100)
    everyone_paid(history, [alice, bob])

    first = run_draw(month=M, triggered_by="first")
    second = run_draw(month=M, triggered_by="second")

    assert second.pk == first.pk and second.triggered_by == "first"
    assert Draw.objects.count() == 1
    assert Loan.objects.count() == 1


def test_a_month_already_drawn_is_returned_even_if_someone_is_now_unpaid(history):
    alice = history.member("alice", request=100)
    everyone_paid(history, [alice])
    first = run_draw(month=M)
    history.member("late")  # joins after the draw, has not paid 1404/09

    assert run_draw(month=M).pk == first.pk


# --- queueing, jobs, state ---------------------------------------------------------------------------------


def test_queue_draw_refuses_a_month_already_drawn(history):
    alice = history.member("alice", request=100)
    everyone_paid(history, [alice])
    run_draw(month=M)

    with pytest.raises(DrawRefused, match="The draw for 1404/09 has already run."):
        queue_draw(month=M, triggered_by="alice")


@pytest.mark.redis
def test_queue_draw_refuses_when_someone_has_not_paid(two_members, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(DrawRefused) as refused:
        queue_draw(month=M, triggered_by="alice")
    assert refused.value.code == "unpaid"
    assert not queued_jobs()


@pytest.mark.redis
def test_queue_draw_queues_the_job_once_the_transaction_commits(
    two_members, history, django_capture_on_commit_callbacks
):
    _alice, bob = two_members
    history.pay(bob, M)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        queue_draw(month=M, triggered_by="bob")

    assert len(callbacks) == 1
    [job] = queued_jobs()
    assert job.func == "fund.tasks.run_draw" and job.args == ("1404/09", "bob")
    assert not Draw.objects.exists()  # the worker runs it


def test_the_job_runs_the_draw_and_turns_a_refusal_into_text(two_members, history):
    from fund import tasks

    assert tasks.run_draw("1404/09", "job") == "The draw for 1404/09 cannot run yet: 1 member has not paid: bob."
    history.pay(two_members[1], M)
    assert tasks.run_draw("1404/09", "job") == "Draw of 1404/09: alice receives a loan of 100.00 USDT."
    assert Draw.objects.get().triggered_by == "job"


@pytest.fixture
def this_month_paid(history):
    alice = history.member("alice", request=10)
    history.pay(alice, JalaliMonth.current())
    return alice


def test_the_automatic_draw_does_nothing_while_switched_off(this_month_paid):
    assert draws.run_automatic_draw() == "The automatic draw is off."
    assert not Draw.objects.exists()


def test_the_automatic_draw_runs_the_current_month_once_everyone_paid(this_month_paid, config):
    config.auto_draw = True
    config.save()

    draws.run_automatic_draw()
    again = draws.run_automatic_draw()

    result = Draw.objects.get()
    assert (result.month, result.winner, result.triggered_by) == (JalaliMonth.current(), this_month_paid, "schedule")
    assert "has already run" in again


def test_the_automatic_draw_waits_for_unpaid_members(this_month_paid, history, config):
    config.auto_draw = True
    config.save()
    history.member("late")

    assert "1 member has not paid: late" in draws.run_automatic_draw()
    assert not Draw.objects.exists()


def test_draw_state_tells_whether_the_draw_can_run(two_members, history):
    _alice, bob = two_members
    state = draw_state(M)
    assert (state.draw, state.can_run, state.unpaid) == (None, False, [bob])
    assert "bob" in state.refusal

    history.pay(bob, M)
    assert draw_state(M).can_run is True

    result = run_draw(month=M)
    state = draw_state(M)
    assert (state.draw, state.can_run, state.refusal) == (result, False, "")


def test_draw_state_without_names_counts_the_unpaid_and_agrees_on_whether_it_can_run(two_members, history):
    _alice, bob = two_members
    state = draw_state(M, names=False)
    assert (state.draw, state.can_run, state.unpaid_count, state.unpaid) == (None, False, 1, [])
    assert draw_state(M).unpaid_count == 1
    history.pay(bob, M)
    assert (draw_state(M, names=False).can_run, draw_state(M, names=False).unpaid_count) == (True, 0)
    assert draw_state(JalaliMonth.current() + 1, names=False).can_run is False  # not begun yet
    result = run_draw(month=M)
    assert draw_state(M, names=False).draw == result


# --- bounded queries --------------------------------------------------------------------------------------------


def bulk_members(count: int, start: int, months: list[JalaliMonth]) -> None:
    people = User.objects.bulk_create(
        User(username=f"m{start + i:04d}", password="!", is_member=True, loan_request_amount=Decimal(20 + i % 7))
        for i in range(count)
    )
    Payment.objects.bulk_create(
        Payment(member=p, month=month, fee=Decimal(20), status=Payment.Status.VERIFIED, source=Payment.Source.IMPORT)
        for p in people
        for month in months
    )


def queries_of_a_draw(month: JalaliMonth) -> int:
    with CaptureQueriesContext(connection) as captured:
        result = run_draw(month=month)
    assert result.winner is not None
    return len(captured)


def test_a_draw_issues_the_same_number_of_queries_for_20_and_400_members(config):
    first, second = JalaliMonth(1404, 8), M
    bulk_members(20, 0, [first, second])
    small = queries_of_a_draw(first)

    bulk_members(380, 20, [first, second])
    large = queries_of_a_draw(second)

    assert len(Draw.objects.get(month=second).report["rows"]) == 400
    assert small == large
    FundConfig.objects.get()  # the configuration row is still there
