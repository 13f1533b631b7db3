"""The score formula of DESIGN.md §3, checked by hand and by properties (no database)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from fund.draw import pick_winner
from fund.ledger import MemberFactors
from fund.scoring import UNLIMITED, format_score, log, score, sort_key


def factors(**overrides: object) -> MemberFactors:
    """A member who borrowed once and repaid: every factor is > 1, so the score is finite."""
    values = {
        "member_id": 1,
        "username": "ali",
        "display_name": "Ali",
        "previous_loan_amount": Decimal(100),
        "balance": Decimal(240),
        "months_without_loan": 7,
        "last_payment_amount": Decimal(20),
        "loan_payment_count": 5,
        "total_loan_amount_received": Decimal(100),
        "total_loans_received": 1,
        "loan_request_amount": Decimal(150),
    }
    values.update(overrides)
    return MemberFactors(**values)


def by_hand(f: MemberFactors) -> float:
    def ln(x: Decimal) -> float:
        return math.log(x) if x > 1 else 0.0

    numerator = ln(f.previous_loan_amount) * ln(f.balance) * f.months_without_loan
    denominator = (
        float(f.last_payment_amount)
        * f.loan_payment_count
        * ln(f.total_loan_amount_received)
        * f.total_loans_received
        * ln(f.loan_request_amount)
    )
    return numerator / denominator


def test_it_computes_the_formula_with_natural_logs():
    f = factors()
    assert score(f) == Decimal("0.076566084")
    assert float(score(f)) == round(by_hand(f), 9)


def test_it_rounds_scores_to_nine_decimal_places():
    assert score(factors()).as_tuple().exponent == -9
    assert format_score(score(factors())) == "0.076566084"
    assert format_score(Decimal("2")) == "2.000000000"


def test_a_log_of_a_value_at_most_one_counts_as_zero():
    assert log(Decimal("1")) == 0
    assert log(Decimal("0.5")) == 0
    assert log(Decimal("0")) == 0
    assert log(Decimal("1.5")) > 0


def test_a_member_who_never_borrowed_scores_unlimited():
    never = factors(previous_loan_amount=Decimal(0), total_loan_amount_received=Decimal(0), total_loans_received=0)
    assert score(never) is UNLIMITED


def test_each_factor_of_the_denominator_at_zero_makes_the_score_unlimited():
    assert score(factors(last_payment_amount=Decimal(0))) is UNLIMITED
    assert score(factors(loan_payment_count=0)) is UNLIMITED
    assert score(factors(total_loan_amount_received=Decimal(1))) is UNLIMITED  # ln(1) = 0
    assert score(factors(total_loans_received=0)) is UNLIMITED
    assert score(factors(loan_request_amount=Decimal("0.9"))) is UNLIMITED  # ln(x ≤ 1) = 0


def test_a_zero_numerator_scores_zero_not_unlimited():
    assert score(factors(months_without_loan=0)) == 0
    assert score(factors(balance=Decimal(1))) == 0
    assert score(factors(previous_loan_amount=Decimal("0.5"))) == 0


def test_each_numerator_factor_raises_the_score():
    base = score(factors())
    assert score(factors(previous_loan_amount=Decimal(200))) > base
    assert score(factors(balance=Decimal(480))) > base
    assert score(factors(months_without_loan=8)) > base


def test_each_denominator_factor_lowers_the_score():
    base = score(factors())
    assert score(factors(last_payment_amount=Decimal(40))) < base
    assert score(factors(loan_payment_count=6)) < base
    assert score(factors(total_loan_amount_received=Decimal(300))) < base
    assert score(factors(total_loans_received=2)) < base
    assert score(factors(loan_request_amount=Decimal(300))) < base


def test_unlimited_beats_any_number_and_ties_with_unlimited():
    assert sort_key(UNLIMITED) > sort_key(Decimal("1e30"))
    assert not sort_key(Decimal("1e30")) > sort_key(UNLIMITED)
    assert sort_key(UNLIMITED) == sort_key(UNLIMITED)


def test_scores_equal_after_rounding_are_a_tie():
    assert sort_key(Decimal("1.0000000001")) == sort_key(Decimal("1.0000000004"))
    assert sort_key(Decimal("1.000000001")) > sort_key(Decimal("1.000000000"))


def test_the_report_text_reads_back_to_the_same_score():
    def read(text: str) -> object:  # as a reader of a stored report does
        return UNLIMITED if text == "unlimited" else Decimal(text)

    for value in (UNLIMITED, score(factors()), Decimal(0)):
        assert sort_key(read(format_score(value))) == sort_key(value)


def test_it_keeps_nine_exact_decimals_for_extreme_amounts():
    tiny = Decimal("1.00000001")
    f = factors(
        previous_loan_amount=Decimal("999999999999"),
        balance=Decimal("999999999999"),
        months_without_loan=10**6,
        last_payment_amount=Decimal("0.00000001"),
        total_loan_amount_received=tiny,
        loan_request_amount=tiny,
    )
    # A narrow context would fail to quantize a 33-digit score to 9 places (InvalidOperation).
    whole, _dot, fraction = format_score(score(f)).partition(".")
    assert len(whole) == 33 and len(fraction) == 9


# --- properties -----------------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=600)
member_factors = st.builds(
    factors,
    previous_loan_amount=amounts,
    balance=amounts,
    months_without_loan=counts,
    last_payment_amount=amounts,
    loan_payment_count=counts,
    total_loan_amount_received=amounts,
    total_loans_received=counts,
    loan_request_amount=amounts,
)


def at_least(a, b) -> bool:
    return sort_key(score(a)) >= sort_key(score(b))


@given(member_factors, amounts)
def test_the_score_never_decreases_when_the_balance_grows(f, more):
    assert at_least(replace(f, balance=f.balance + more), f)


@given(member_factors, counts)
def test_the_score_never_decreases_when_months_without_a_loan_grow(f, more):
    assert at_least(replace(f, months_without_loan=f.months_without_loan + more), f)


@given(member_factors, amounts)
def test_the_score_never_increases_when_the_request_grows(f, more):
    assert at_least(f, replace(f, loan_request_amount=f.loan_request_amount + more))


@given(member_factors, amounts)
def test_the_score_never_increases_when_the_amount_received_grows(f, more):
    assert at_least(f, replace(f, total_loan_amount_received=f.total_loan_amount_received + more))


@given(member_factors, counts)
def test_the_score_never_increases_when_the_number_of_loans_grows(f, more):
    assert at_least(f, replace(f, total_loans_received=f.total_loans_received + more))


@given(st.decimals(min_value=0, max_value=Decimal("1e40"), places=9, allow_nan=False, allow_infinity=False))
def test_unlimited_always_beats_a_finite_score(finite):
    assert sort_key(UNLIMITED) > sort_key(finite)


@given(st.text(min_size=1, max_size=40), st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, unique=True))
def test_the_same_seed_and_pool_always_give_the_same_winner(seed, pool):
    shuffled = list(pool)
    random.Random(0).shuffle(shuffled)
    winner = pick_winner(seed, pool)
    assert winner in pool
    assert pick_winner(seed, shuffled) == winner  # the pool's order in the report does not matter
    assert pick_winner(seed, list(pool)) == winner
