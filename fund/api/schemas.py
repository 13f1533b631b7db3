"""The JSON shapes of the API: the original Saghat API's field names, amounts as decimal strings."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from fund.jalali import to_ascii_digits
from fund.models import Loan
from fund.money import canonical_amount

# What a person may type as USDT: digits, at most 12 before the point and 8 after (fund.money).
AMOUNT_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,8})?$"


# Out: always a string. In: a string (a JSON number is accepted too, as the original client may send
# one); the services refuse negative, NaN or too precise amounts in words (400), not the schema.
Amount = Annotated[
    Decimal,
    PlainSerializer(canonical_amount, return_type=str),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["20", "12.5"]}),
]
# A typed amount is a plain decimal, as on every form (fund.money): "1e3" is malformed (422), not 1,000.
# The sign stays readable so that the service can refuse a negative amount in words (400).
_TYPED_AMOUNT = re.compile(r"\s*-?[0-9]+(\.[0-9]+)?\s*")


def _plain_decimal(value: Any) -> Any:
    if isinstance(value, str) and not _TYPED_AMOUNT.fullmatch(to_ascii_digits(value)):
        raise PydanticCustomError("decimal_parsing", "not a plain decimal number")
    return value


AmountIn = Annotated[
    Decimal,
    BeforeValidator(_plain_decimal),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["20"]}),
]

# Text without NUL, which PostgreSQL cannot store or even compare: refused as malformed (422).
NO_NUL = r"^[^\x00]*$"


def Text(max_length: int) -> Any:
    """A text field of at most ``max_length`` characters, without NUL (named like a type: it is one)."""
    return Annotated[str, Field(max_length=max_length, pattern=NO_NUL)]


# Loan states as the Loan model names them, plus "no_one" for a month whose draw chose nobody.
NO_ONE = "no_one"
LoanState = Literal[tuple([*Loan.State.values, NO_ONE])]  # type: ignore[valid-type]


class Error(Schema):
    detail: str = Field(description="What went wrong, in the language of Accept-Language (Persian by default).")


# --- auth ------------------------------------------------------------------------------------------


class LoginIn(Schema):
    username: Text(150)
    password: Text(4096)


class LoginOut(Schema):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    user_id: int
    username: str
    is_main: bool


class UserOut(Schema):
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    is_main: bool
    balance: Amount
    loan_request_amount: Amount
    has_active_loan: bool


class LoanRequestIn(Schema):
    loan_request_amount: AmountIn


class MemberIn(Schema):
    username: Text(150)
    password: Text(4096) | None = None
    first_name: Text(150) = ""
    last_name: Text(150) = ""
    email: Text(254) = ""
    loan_request_amount: AmountIn | None = None


# --- payments -----------------------------------------------------------------------------------


class ConfigOut(Schema):
    min_membership_fee: Amount
    max_month_for_loan_payment: int
    min_amount_for_loan_payment: Amount


class PayIn(Schema):
    membership_fee: AmountIn
    loan: AmountIn | None = Field(default=None, description="This month's loan repayment; omit without a loan.")
    loan_request_amount: AmountIn | None = Field(default=None, description="Omit to keep the current request.")
    bitpin_payment_id: Text(200)


class MembershipFeeOut(Schema):
    amount: Amount


class LoanPaymentOut(Schema):
    loan_id: str
    amount: Amount


class PaymentOut(Schema):
    id: str
    user_id: int
    amount: Amount
    jalali_year: int
    jalali_month: int
    bitpin_payment_id: str
    membership_fee: MembershipFeeOut
    loan_payment: LoanPaymentOut | None
    status: Literal["pending", "verified", "rejected"]


# --- loans and draws ----------------------------------------------------------------------------


class NotParticipatedOut(Schema):
    user_id: int
    username: str
    reason: str


class ParticipatedOut(Schema):
    user_id: int
    username: str
    point: str = Field(description='The score with 9 decimals, or "unlimited".')


class DrawLogOut(Schema):
    not_participated: list[NotParticipatedOut]
    participated: list[ParticipatedOut]
    selected: int | None
    random_pool: list[int]


class RepaymentOut(Schema):
    id: str
    amount: Amount
    jalali_year: int
    jalali_month: int


class LoanOut(Schema):
    id: str
    user_id: int | None
    username: str | None
    amount: Amount | None
    state: LoanState
    jalali_year: int
    jalali_month: int
    min_amount_for_each_payment: Amount | None
    total_paid: Amount | None = Field(description="Verified repayments; null on another member's loan.")
    remaining_balance: Amount | None = Field(description="Still owed; null on another member's loan.")
    log: DrawLogOut
    payments: list[RepaymentOut]


class StartOut(Schema):
    loan: LoanOut
    message: str


class AlreadyDrawnOut(Schema):
    detail: str
    loan: LoanOut


MONTH_PATTERN = r"^[0-9]{4}[/-][0-9]{1,2}$"
Year = Annotated[int, Field(ge=0, le=9999)]
MonthNumber = Annotated[int, Field(ge=0, le=13)]


class HistoryFilters(Schema):
    """The original's filters (year and month number compared separately) and Saghat's month range."""

    jalali_year_gt: Year | None = None
    jalali_year_lt: Year | None = None
    jalali_month_gt: MonthNumber | None = None
    jalali_month_lt: MonthNumber | None = None
    from_month: str | None = Field(default=None, pattern=MONTH_PATTERN, description="First month, e.g. 1404/01.")
    to_month: str | None = Field(default=None, pattern=MONTH_PATTERN, description="Last month, e.g. 1404/12.")
    user_id: int | None = Field(default=None, ge=1, le=2**53)
    state: LoanState | None = None
