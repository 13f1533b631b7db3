"""USDT amounts: parsing what people type, rounding, writing them, and the model and form fields that carry them.

Money is always ``Decimal``, stored with 8 decimal places and at most 20 digits.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from fund.jalali import to_ascii_digits, to_persian_number
from fund.text import has_format_marks

DECIMAL_PLACES = 8
MAX_DIGITS = 20
QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)  # 0.00000001
CENT = Decimal("0.01")
ZERO = Decimal("0")
MAX_AMOUNT = Decimal(10) ** (MAX_DIGITS - DECIMAL_PLACES) - QUANTUM

# Arabic decimal separator (U+066B) and thousands separator (U+066C), Persian comma, plain comma,
# and the spaces people group thousands with.
_SEPARATORS = {"٫": ".", "٬": "", "،": "", ",": "", "_": "", " ": "", "\u00a0": ""}


# Plain ASCII digits with at most 8 decimals and 12 integer digits (MAX_AMOUNT has 12).
_PLAIN = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,8})?")
# What an amount may be once digits and separators are normalised: digits and one decimal point.
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_EXPONENT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")
MAX_TEXT = 60


class AmountError(ValueError):
    """An amount a person typed that cannot be money. The message is meant for that person."""


def parse_amount(value: Any) -> Decimal:
    """Turn what a person typed (or a spreadsheet cell) into a USDT amount: the one money parser.

    Accepts plain decimals written with ASCII, Persian or Arabic digits, thousands separators and
    the Arabic decimal point. Refuses, with AmountError and a message for the person: empty text,
    anything that is not a plain decimal (exponents such as 1e3, NaN, infinities, signs, other
    scripts' digits, letters), invisible marks, negatives, more than 8 decimals and more than
    12 integer digits. Never raises anything else, whatever the input.
    """
    if isinstance(value, bool) or value is None:
        raise AmountError(_("Enter an amount."))
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        # The common cell, "20" or "1250.5": nothing to normalise and within every limit below.
        return quantize(Decimal(value))
    if isinstance(value, Decimal):
        return check_amount(value)
    if isinstance(value, int):
        return check_amount(Decimal(value))
    if isinstance(value, float):
        # Spreadsheet cells arrive as floats: repr gives the shortest text that round-trips
        # (and may use an exponent, 1e-05, which is the spreadsheet's spelling, not a person's).
        if value != value or value in (float("inf"), float("-inf")):
            raise AmountError(_("The amount must be a finite number."))
        return check_amount(Decimal(repr(value)))
    return check_amount(_decimal_of_text(str(value)))


def _decimal_of_text(typed: str) -> Decimal:
    text = to_ascii_digits(typed).strip()
    if not text:
        raise AmountError(_("Enter an amount."))
    if len(text) > MAX_TEXT:
        raise AmountError(_("That amount is too long."))
    if has_format_marks(text):
        raise AmountError(_("The amount contains an invisible character (such as a direction mark); type it again."))
    for sep, replacement in _SEPARATORS.items():
        text = text.replace(sep, replacement)
    if _DECIMAL.fullmatch(text):
        return Decimal(text)
    unsigned = text[1:] if text[:1] in "+-" else text
    if text[:1] == "-" and _DECIMAL.fullmatch(unsigned):
        raise AmountError(_("The amount cannot be negative."))
    if unsigned.lower() in {"nan", "snan", "inf", "infinity"}:
        raise AmountError(_("The amount must be a finite number."))
    if _EXPONENT.fullmatch(unsigned):
        raise AmountError(_("Write the amount in plain digits, like 1500 or 12.5, without an exponent."))
    raise AmountError(_("“%(value)s” is not a number.") % {"value": typed.strip()[:40]})


def check_amount(number: Decimal) -> Decimal:
    """A Decimal as money: finite, not negative, at most 8 decimals and MAX_AMOUNT.

    Only comparisons and quantize within MAX_AMOUNT: normalize() or arithmetic on a huge
    exponent (1E+1000000) would raise decimal.Overflow instead of a message.
    """
    if not number.is_finite():
        raise AmountError(_("The amount must be a finite number."))
    if number < 0:
        raise AmountError(_("The amount cannot be negative."))
    if number > MAX_AMOUNT:
        raise AmountError(_("The amount is too large."))
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -DECIMAL_PLACES and quantize(number) != number:
        raise AmountError(_("Use at most 8 decimal places."))
    return quantize(number)


def quantize(number: Decimal) -> Decimal:
    """Round to the 8 places we store (banker's rounding, as the database would)."""
    return number.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def round_up_to_cent(number: Decimal) -> Decimal:
    """Round up to the cent: used for instalments so that the loan is never left under-paid."""
    return quantize(number.quantize(CENT, rounding=ROUND_CEILING))


def format_usdt(number: Decimal | None, *, grouped: bool = True, persian: bool = False) -> str:
    """An amount written for people, the one way every page, message and export writes it:
    trailing zeros trimmed but at least two decimals, thousands grouped (1,234.50).

    ``grouped=False`` for files read back by programs (CSV, spreadsheets: 1234.50); ``persian``
    for Persian text (۱٬۲۳۴٫۵۰). "" for None.
    """
    if number is None:
        return ""
    number = quantize(Decimal(number))
    text = f"{number:{',' if grouped else ''}.8f}".rstrip("0")
    whole, _dot, fraction = text.partition(".")
    text = f"{whole}.{fraction.ljust(2, '0')}"
    return to_persian_number(text) if persian else text


@lru_cache(maxsize=65536)
def canonical_amount(amount: Decimal) -> str:
    """An amount as the draw's report and the API write it, for programs rather than people: a
    plain decimal without trailing zeros ("123.45", "100", "0"). The report's hash covers this text.

    Remembered: a report writes five amounts for each of thousands of members, and few differ.
    """
    return f"{amount.normalize():f}"


class AmountFormField(forms.CharField):
    """A form field for USDT typed by a person: the same parsing as everywhere else."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "dir": "ltr", "maxlength": 60}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return format_usdt(value, grouped=False)
        return value

    def to_python(self, value: Any) -> Decimal | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return parse_amount(value)
        except AmountError as error:
            raise ValidationError(str(error), code="invalid") from None


class AmountField(models.DecimalField):
    """A USDT amount column: 20 digits, 8 decimal places, exact on every database.

    PostgreSQL stores ``numeric(20, 8)``. SQLite has no exact decimal type (its DECIMAL is a float
    of 15 significant digits, and its SUM adds floats), so there the column is text: the amount
    zero-padded to 20 integer digits and 8 decimals (``00000000123456789.12345678``). Text of one
    width orders as the numbers do (amounts are never negative), so comparisons, ORDER BY, MIN and
    MAX stay in SQL; SUM and the two sums of money the ledger writes (``money_add``/``money_sub``)
    are exact functions registered on every SQLite connection (``register_sqlite_functions``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MAX_DIGITS)
        kwargs.setdefault("decimal_places", DECIMAL_PLACES)
        super().__init__(*args, **kwargs)

    def get_internal_type(self) -> str:
        # Not "DecimalField": Django's SQLite backend would read every value through a float of
        # 15 digits. The column type is chosen per database below.
        return "AmountField"

    def db_type(self, connection: Any) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return connection.data_types["DecimalField"] % self.db_type_parameters(connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if connection.vendor != "sqlite":
            return super().get_db_prep_value(value, connection, prepared)
        if not prepared:
            value = self.get_prep_value(value)
        if value is None or hasattr(value, "as_sql"):
            return value
        return money_text(Decimal(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        return money_from_db(value)

    def formfield(self, **kwargs: Any) -> forms.Field:
        return models.Field.formfield(self, **{"form_class": AmountFormField, **kwargs})


# --- exact money on SQLite ------------------------------------------------------------------------

# Sums may pass the 12 integer digits of one amount (a fund's total): 20 keep them ordered as text.
_TEXT_FORMAT = "029.8f"
# Enough digits that adding amounts never rounds (an amount has at most 20).
_EXACT = Context(prec=60)


def money_text(number: Decimal) -> str:
    """An amount as SQLite stores it: 00000000000000000020.50000000."""
    return format(quantize(number), _TEXT_FORMAT)


def money_from_db(value: Any) -> Decimal | None:
    """An amount read back: text (SQLite), Decimal (PostgreSQL), or a number SQLite computed."""
    if value is None:
        return None
    if isinstance(value, float):
        value = repr(value)  # a float SQLite produced (e.g. older data): its shortest exact text
    return quantize(Decimal(value))


class _ExactSum:
    """SQLite's SUM, replaced: decimal arithmetic on money text; integers stay integers."""

    def __init__(self) -> None:
        self.total: int | Decimal | None = None

    def step(self, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str | float):
            value = Decimal(value if isinstance(value, str) else repr(value))
        self.total = value if self.total is None else _EXACT.add(self.total, value)

    def finalize(self) -> Any:
        return money_text(self.total) if isinstance(self.total, Decimal) else self.total


def _exact(operation: Any) -> Any:
    def function(left: Any, right: Any) -> str | None:
        if left is None or right is None:
            return None
        return money_text(operation(money_from_db(left), money_from_db(right)))

    return function


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """On every new SQLite connection (the ``connection_created`` signal): exact SUM and arithmetic."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    # An application-defined SUM takes precedence over SQLite's own, for every query Django writes.
    raw.create_aggregate("SUM", 1, _ExactSum)
    raw.create_function("saghat_money_add", 2, _exact(_EXACT.add), deterministic=True)
    raw.create_function("saghat_money_sub", 2, _exact(_EXACT.subtract), deterministic=True)
    raw.create_function("saghat_money", 1, lambda value: None if value is None else money_text(money_from_db(value)))


class _MoneyArithmetic(models.Func):
    """``a + b`` or ``a - b`` on money: plain SQL on PostgreSQL, the exact functions on SQLite."""

    arity = 2
    operator = "+"
    sqlite_function = "saghat_money_add"

    def __init__(self, left: Any, right: Any) -> None:
        super().__init__(left, right, output_field=AmountField())

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=f" {self.operator} ")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function=self.sqlite_function)


class money_add(_MoneyArithmetic):  # noqa: N801  (reads as the function it is in a query)
    """left + right, exact on every database."""


class money_sub(_MoneyArithmetic):  # noqa: N801
    """left − right, exact on every database."""

    operator = "-"
    sqlite_function = "saghat_money_sub"
