"""Cell parsing for the history import: text, months, amounts, yes/no, and the widgets that carry them.

Every cell of a file goes through these (the foundation's JalaliMonth.parse and parse_amount do
the parsing proper); a bad cell raises ValueError with a plain reason, which the import reports
against its row and column.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from import_export import widgets

from fund.jalali import JalaliMonth, to_ascii_digits
from fund.models import User
from fund.money import ZERO, format_usdt, parse_amount
from fund.text import normalise_bitpin_id, unsafe_cell

# Direction marks and the byte-order mark: invisible, common in Persian spreadsheets, never data.
_INVISIBLE = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Thousands separators are fine only in the right places: 1,234,567.5 yes; 1,5 or 1.000,5 no.
_GROUP_SEPARATORS = ",٬،"
# Unicode's control characters (category Cc): C0, DEL and C1. A regex: this runs for every cell.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_GROUPED = re.compile(r"^\d{1,3}(?:[,٬،]\d{3})+(?:[.٫]\d*)?$")
_TRUE = {"1", "yes", "y", "true", "t", "active", "بله", "بلی", "آری", "فعال", "درست"}
_FALSE = {"0", "no", "n", "false", "f", "inactive", "خیر", "نه", "غیرفعال", "غیر فعال", "نادرست"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (unreadable, missing columns). For the person."""


# --- cells ------------------------------------------------------------------------------------------


def _visible(text: str) -> str:
    # The search first: most cells have no marks, and this runs for every cell of 100,000 rows.
    return _INVISIBLE.sub("", text) if _INVISIBLE.search(text) else text


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not _visible(value).strip())


def cell_text(value: Any) -> str:
    """A cell as text: XLSX numbers lose their ".0", invisible marks and stray spaces go, and the
    apostrophe our exports put before formula-like text is taken off (fund.text.safe_cell)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    text = _visible(str(value)).strip()
    return unsafe_cell(text) if text[:1] == "'" else text


def plain_cell_text(value: Any) -> str:
    """A text cell that may be stored: control characters (NUL above all, which PostgreSQL cannot
    store) are refused with a plain reason instead of failing in the database."""
    text = cell_text(value)
    if _CONTROL.search(text):
        raise ValueError(_("This cell contains a control character (such as NUL); remove it."))
    return text


def clean_month(value: Any, *, latest: JalaliMonth) -> JalaliMonth:
    """A month cell: 1403/05, 1403-5, ۱۴۰۳/۰۵, 140305, or a date cell; never after ``latest``."""
    if is_blank(value):
        raise ValueError(_("Enter the month, like 1403/05."))
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        month = _month_of_date(value)
    elif isinstance(value, bool):
        raise ValueError(_("Write the month like 1403/05."))
    elif isinstance(value, int | float):
        month = _month_of_number(value)
    else:
        month = JalaliMonth.parse(_visible(str(value)))
    if month > latest:
        raise ValueError(
            _("%(month)s is in the future: the current month is %(current)s.") % {"month": month, "current": latest}
        )
    return month


def _month_of_date(day: dt.date) -> JalaliMonth:
    # A spreadsheet that read "1403-05" as a date keeps the Jalali year and month as typed;
    # a real (Gregorian) date stands for the Jalali month it falls in.
    if 1300 <= day.year <= 1600:
        return JalaliMonth(day.year, day.month)
    return JalaliMonth.from_date(day)


def _month_of_number(number: int | float) -> JalaliMonth:
    # Only the stored form 140305 is unambiguous; 1403.1 could be 1403/01 or 1403/10.
    if isinstance(number, float) and not number.is_integer():
        raise ValueError(_("Write the month as text, like 1403/05, not as the number %(value)s.") % {"value": number})
    if not 130001 <= number <= 160012:
        raise ValueError(_("Write the month like 1403/05."))
    return JalaliMonth.from_int(int(number))


def clean_amount(value: Any, *, required: bool = True, positive: bool = False) -> Decimal:
    """An amount cell, through the foundation's parse_amount; blank is 0 when not required."""
    if is_blank(value):
        if required:
            raise ValueError(_("Enter an amount."))
        return ZERO
    if isinstance(value, dt.date | dt.datetime | dt.time):
        raise ValueError(_("A date is not an amount."))
    if isinstance(value, str):
        _check_grouping(value)  # invisible marks are parse_amount's to refuse, not ours to drop
    amount = parse_amount(value)
    if positive and amount <= ZERO:
        raise ValueError(_("The amount must be more than 0."))
    return amount


def _check_grouping(text: str) -> None:
    """parse_amount drops thousands separators; refuse them where they cannot be thousands (1,5)."""
    if not any(sep in text for sep in _GROUP_SEPARATORS):
        return  # most cells: no separator at all
    compact = to_ascii_digits(text).strip().replace(" ", "").replace("\u00a0", "").replace("\u200c", "")
    if any(sep in compact for sep in _GROUP_SEPARATORS) and not _GROUPED.match(compact.lstrip("+-")):
        raise ValueError(
            _("“%(value)s” has its separators in the wrong places: write 1500 or 1.5.") % {"value": text.strip()[:40]}
        )


def clean_bitpin_id(value: Any) -> str:
    """A Bitpin id cell: the one normalisation every path uses (fund.text), on the cell as written:
    an invisible mark in an id is refused here as on the member's form, never silently dropped."""
    if value is None:
        return ""
    text = cell_text(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
    return normalise_bitpin_id(unsafe_cell(text.strip()))


def clean_bool(value: Any) -> bool:
    if is_blank(value):
        return True
    if isinstance(value, bool):
        return value
    text = cell_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(_("Write yes or no, not “%(value)s”.") % {"value": text[:40]})


# --- widgets (shared by import and export) ----------------------------------------------------------


class MonthWidget(widgets.Widget):
    def __init__(self) -> None:
        super().__init__(coerce_to_string=True)
        self.latest: JalaliMonth | None = None  # set per import: nothing after the current month

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> JalaliMonth:
        return clean_month(value, latest=self.latest or JalaliMonth.current())

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class AmountWidget(widgets.Widget):
    def __init__(self, *, required: bool = True, positive: bool = False) -> None:
        super().__init__(coerce_to_string=True)
        self.required, self.positive = required, positive

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> Decimal:
        return clean_amount(value, required=self.required, positive=self.positive)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return format_usdt(value, grouped=False)  # spreadsheets read 1234.50 as a number


class TextWidget(widgets.Widget):
    def __init__(self, *, max_length: int, required: bool = False) -> None:
        super().__init__(coerce_to_string=True)
        self.max_length, self.required = max_length, required

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> str:
        text = plain_cell_text(value)
        if self.required and not text:
            raise ValueError(_("This cell is required."))
        if len(text) > self.max_length:
            raise ValueError(_("Use at most %(count)d characters.") % {"count": self.max_length})
        return text

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class BitpinIdWidget(widgets.Widget):
    def __init__(self) -> None:
        super().__init__(coerce_to_string=True)

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> str:
        return clean_bitpin_id(value)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else str(value)


class BooleanWidget(widgets.Widget):
    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> bool:
        return clean_bool(value)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "yes" if value else "no"


class MemberWidget(widgets.Widget):
    """A member by username, looked up in a dict loaded once per import (no query per row)."""

    def __init__(self) -> None:
        super().__init__(coerce_to_string=True)
        self.directory: dict[str, User] | None = None

    def load(self) -> None:
        self.directory = {user.username: user for user in User.objects.all()}

    def clean(self, value: Any, row: dict | None = None, **kwargs: Any) -> User:
        if self.directory is None:
            self.load()
        assert self.directory is not None
        name = plain_cell_text(value)
        if not name:
            raise ValueError(_("Enter the member's username."))
        user = self.directory.get(name) or self.directory.get(to_ascii_digits(name))
        if user is None:
            raise ValueError(_("Unknown member “%(name)s”.") % {"name": name[:60]})
        if not user.is_member:
            raise ValueError(_("“%(name)s” is not a member of the fund.") % {"name": user.username})
        return user

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else value.username
