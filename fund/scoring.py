"""The draw's score: pure arithmetic on a member's factors, no database (DESIGN.md, "Monthly draw", §3).

    numerator   = ln(previous_loan_amount) × ln(balance) × months_without_loan
    denominator = last_payment_amount × loan_payment_count × ln(total_loan_amount_received)
                  × total_loans_received × ln(loan_request_amount)
    denominator = 0 → unlimited; otherwise numerator ÷ denominator (0 when numerator ≤ 0)

A log of a value ≤ 1 counts as 0. Everything is ``Decimal`` in a fixed, wide context so that every
machine computes the same digits (floats would let platform noise decide a tie), and scores are
compared after rounding to 9 decimal places.

The standalone verifier (fund/static/fund/verify_draw.py) repeats this arithmetic with the standard
library only, for members who check a draw themselves: keep the two identical.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from functools import lru_cache
from typing import Final, Protocol

ONE = Decimal(1)
ZERO = Decimal(0)
PLACES = Decimal(1).scaleb(-9)  # scores are compared at 9 decimal places
# Wide enough that the 9th decimal is exact for any score our amounts can produce: amounts stay
# below 10^12, so logs are below 28 and a score is below 10^40 even with tiny divisors.
_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)


class Unlimited:
    """The score of a member whose denominator is 0: above every number (DESIGN.md §3)."""

    _instance: Unlimited | None = None

    def __new__(cls) -> Unlimited:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNLIMITED"

    def __str__(self) -> str:
        return "unlimited"


UNLIMITED: Final = Unlimited()
Score = Decimal | Unlimited


class Factors(Protocol):
    """What the score reads; ``ledger.MemberFactors`` has these attributes."""

    previous_loan_amount: Decimal
    balance: Decimal
    months_without_loan: int
    last_payment_amount: Decimal
    loan_payment_count: int
    total_loan_amount_received: Decimal
    total_loans_received: int
    loan_request_amount: Decimal


def log(value: Decimal | int) -> Decimal:
    """Natural logarithm where a value ≤ 1 counts as 0 (so no factor ever turns negative)."""
    value = Decimal(value)
    if value <= ONE:
        return ZERO
    return _ln(value)


@lru_cache(maxsize=8192)
def _ln(value: Decimal) -> Decimal:
    # An 80-digit logarithm costs ~50 µs and a draw takes five per member; members share a few
    # amounts (fees, requests, loans), so remembering them makes a 10,000-member draw ~1 s faster.
    return value.ln(_CONTEXT)


def score(factors: Factors) -> Score:
    """The member's score: a Decimal rounded to 9 places, or UNLIMITED."""
    with localcontext(_CONTEXT):
        denominator = (
            Decimal(factors.last_payment_amount)
            * factors.loan_payment_count
            * log(factors.total_loan_amount_received)
            * factors.total_loans_received
            * log(factors.loan_request_amount)
        )
        if denominator == ZERO:
            return UNLIMITED
        numerator = log(factors.previous_loan_amount) * log(factors.balance) * factors.months_without_loan
        if numerator <= ZERO:
            return ZERO.quantize(PLACES)
        return (numerator / denominator).quantize(PLACES)


def sort_key(value: Score) -> tuple[int, Decimal]:
    """Orders scores ascending with UNLIMITED above every number; equal keys are a tie."""
    if isinstance(value, Unlimited):
        return (1, ZERO)
    with localcontext(_CONTEXT):
        return (0, value.quantize(PLACES))


def format_score(value: Score) -> str:
    """The report's text for a score: "unlimited" or the number with exactly 9 decimals."""
    if isinstance(value, Unlimited):
        return "unlimited"
    with localcontext(_CONTEXT):
        return f"{value.quantize(PLACES):f}"
