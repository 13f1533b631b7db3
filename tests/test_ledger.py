"""The ledger's figures on a hand-computed example, and its bounded number of queries."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from fund import ledger
from fund.jalali import JalaliMonth
from fund.models import Payment
from fund.payments import change_loan_request

M = JalaliMonth(1404, 9)


@pytest.fixture
def fund(history):
    """Alice: 3 months of 20, a 100 loan in 1404/07 repaid 20 twice (one pending).
    Bob: 3 months of 30, one rejected payment. Dave: left the fund (inactive) after paying 50 once."""
    alice = history.member("alice", request=50)
    bob = history.member("bob", request=200)
    dave = history.member("dave", is_active=False)
    history.pay(alice, "1404/06", 20)
    history.loan(alice, "1404/07", 100, monthly_minimum_amount=20)
    history.pay(alice, "1404/07", 20)
    history.pay(alice, "1404/08", 20, 20)
    history.pay(alice, "1404/09", 20, 20, status=Payment.Status.PENDING)
    for month in ["1404/07", "1404/08", "1404/09"]:
        history.pay(bob, month, 30)
    history.pay(bob, "1404/06", 30, status=Payment.Status.REJECTED)
    history.pay(dave, "1404/05", 50)
    return alice, bob, dave


def test_fund_cash_is_verified_fees_plus_repayments_minus_loans(fund):
    totals = ledger.fund_totals()
    # fees 20+20+20 + 30*3 + 50 = 200 ; repayments 20 ; loans 100
    assert totals.fees == Decimal(200)
    assert totals.repayments == Decimal(20)
    assert totals.cash == Decimal(120)
    assert totals.outstanding_principal == Decimal(80)


def test_balances_count_only_verified_fees(fund):
    alice, bob, dave = fund
    assert ledger.balance_of(alice) == Decimal(60)
    assert ledger.balance_of(bob) == Decimal(90)
    assert ledger.balance_of(dave) == Decimal(50)


def test_draw_factors_on_a_hand_computed_example(fund):
    alice, bob, _dave = fund
    factors = {f.username: f for f in ledger.draw_factors_and_totals(M)[0]}
    assert set(factors) == {"alice", "bob"}  # the inactive member is not in the draw
    a = factors["alice"]
    assert (a.balance, a.months_without_loan, a.loan_payment_count) == (Decimal(60), 2, 1)
    assert a.last_payment_amount == Decimal(40)  # 1404/08: 20 fee + 20 repayment (1404/09 is pending)
    assert (a.previous_loan_amount, a.total_loan_amount_received, a.total_loans_received) == (
        Decimal(100),
        Decimal(100),
        1,
    )
    assert a.has_open_loan and not a.paid_this_month
    b = factors["bob"]
    assert (b.balance, b.months_without_loan, b.loan_payment_count, b.last_payment_amount) == (
        Decimal(90),
        3,
        0,
        Decimal(30),
    )
    assert (b.total_loans_received, b.loan_request_amount, b.paid_this_month) == (0, Decimal(200), True)


def test_draw_factors_count_payments_up_to_the_month_and_loans_before_it(fund):
    factors = {f.username: f for f in ledger.draw_factors_and_totals(JalaliMonth(1404, 7))[0]}
    a = factors["alice"]
    assert a.balance == Decimal(40) and a.total_loans_received == 0  # the loan of 1404/07 is not "before"


def test_loan_repaid_and_remaining(fund):
    alice = fund[0]
    loan = ledger.active_loan(alice)
    assert (loan.repaid, loan.remaining) == (Decimal(20), Decimal(80))
    assert ledger.loan_repaid(loan, include_pending=True) == Decimal(40)


def test_repayment_bounds_allow_a_smaller_final_instalment(fund):
    loan = ledger.active_loan(fund[0])
    assert ledger.repayment_bounds(loan, Decimal(80)) == ledger.RepaymentBounds(Decimal(20), Decimal(80))
    assert ledger.repayment_bounds(loan, Decimal(5)) == ledger.RepaymentBounds(Decimal(5), Decimal(5))


def test_unpaid_and_paid_count(fund):
    assert [m.username for m in ledger.unpaid_members(M)] == ["alice"]
    assert ledger.paid_count(M) == ledger.PaidCount(paid=1, total=2)


def test_monthly_series_ends_with_the_fund_cash(fund):
    series = ledger.monthly_series(JalaliMonth(1404, 5), M)
    assert [s.inflow for s in series] == [Decimal(50), Decimal(20), Decimal(50), Decimal(70), Decimal(30)]
    assert series[-1].cash_at_end == ledger.fund_totals().cash
    assert series[2].loans_granted == Decimal(100)


def test_members_with_standing(fund):
    rows = {u.username: u for u in ledger.members_with_standing(M)}
    assert rows["alice"].month_status == "pending" and not rows["alice"].paid_this_month
    assert rows["alice"].active_loan_remaining == Decimal(80)
    assert rows["bob"].paid_this_month and rows["bob"].active_loan_remaining is None


def _build(history, count):
    for i in range(count):
        m = history.member(f"m{i}", request=100)
        history.pay(m, "1404/08", 20)
        history.pay(m, "1404/09", 20)
        if i % 3 == 0:
            history.loan(m, "1404/07", 100)


@pytest.mark.parametrize("count", [5, 200])
def test_the_ledger_uses_the_same_number_of_queries_for_5_and_200_members(history, count, django_assert_num_queries):
    _build(history, count)
    with django_assert_num_queries(5):
        assert len(ledger.draw_factors_and_totals(M)[0]) == count
    with django_assert_num_queries(3):  # payments, loans, payouts (refunds and loan payouts)
        ledger.fund_totals()
    with django_assert_num_queries(1):
        list(ledger.members_with_standing(M))


def test_money_sums_are_exact_on_every_database(history):
    # SQLite adds decimals in floating point: 100 − 3 × 33.33 would read 0.0100000000000051.
    alice = history.member("alice")
    loan = history.loan(alice, "1404/01", 100)
    for month in ["1404/02", "1404/03", "1404/04"]:
        history.pay(alice, month, "0.1", "33.33", loan=loan)
    loan = ledger.with_repaid(ledger.Loan.objects.filter(pk=loan.pk)).get()
    assert (loan.repaid, loan.remaining) == (Decimal("99.99"), Decimal("0.01"))
    assert ledger.balance_of(alice) == Decimal("0.3")
    assert ledger.fund_totals().cash == Decimal("0.3") - Decimal("0.01")


@pytest.mark.parametrize("month", ["1404/05", "1404/07", "1404/09", "1404/11"])
def test_the_draws_totals_agree_with_fund_totals(fund, month, django_assert_num_queries):
    # Payments after the draw month, an inactive member's money and a loan granted later all count
    # in the fund's totals, as in fund_totals().
    month = JalaliMonth.parse(month)
    with django_assert_num_queries(5):  # with the payouts' totals (refunds count in fund cash)
        _factors, totals = ledger.draw_factors_and_totals(month)
    assert totals == ledger.fund_totals()


def test_the_draw_inputs_version_changes_once_a_service_writing_a_draw_input_commits(
    fund, django_capture_on_commit_callbacks
):
    alice, _bob, _dave = fund
    before = ledger.draw_inputs_version()
    assert ledger.draw_inputs_version() == before  # reading changes nothing
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        change_loan_request(member=alice, amount=Decimal(70))
        assert ledger.draw_inputs_version() == before  # nobody else can see the write yet
        assert ledger.draw_inputs_written_here()
    assert len(callbacks) == 1
    assert ledger.draw_inputs_version() != before


def test_a_lost_draw_inputs_version_is_replaced_by_a_new_one(fund):
    before = ledger.draw_inputs_version()
    cache.delete(ledger.DRAW_INPUTS_VERSION_KEY)
    assert ledger.draw_inputs_version() not in {before, ""}
