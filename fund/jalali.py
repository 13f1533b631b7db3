"""The Jalali month: the one value type for "a month of the fund", and its model and form fields.

No other module does Jalali arithmetic. A month is stored as the integer ``year * 100 + month``
(1404/09 → 140409): readable in the database, ordered like the months themselves, indexable.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Any
from zoneinfo import ZoneInfo

import jdatetime
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone, translation
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

TEHRAN = ZoneInfo("Asia/Tehran")

# Persian (U+06F0…) and Arabic-Indic (U+0660…) digits → ASCII.
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_MONTH_RE = re.compile(r"^\s*(\d{4})\s*[/\-.]\s*(\d{1,2})\s*$")

MIN_YEAR, MAX_YEAR = 1300, 1600

MONTH_NAMES_FA = (
    "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور",
    "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند",
)  # fmt: skip
MONTH_NAMES_EN = (
    "Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar",
    "Mehr", "Aban", "Azar", "Dey", "Bahman", "Esfand",
)  # fmt: skip


def to_ascii_digits(text: str) -> str:
    """Persian and Arabic digits become ASCII digits; everything else is left alone."""
    return text.translate(_DIGITS)


def to_persian_digits(text: str) -> str:
    return str(text).translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))


# Persian writes the thousands separator and the decimal point with their own marks.
_PERSIAN_NUMBER_MARKS = str.maketrans({",": "٬", ".": "٫"})


def to_persian_number(text: str) -> str:
    """A number's text in Persian: its digits and its marks (1,234.50 → ۱٬۲۳۴٫۵۰)."""
    return to_persian_digits(str(text).translate(_PERSIAN_NUMBER_MARKS))


def in_language_digits(text: str) -> str:
    """``text`` with Persian digits while Persian is active, as it is otherwise."""
    return to_persian_digits(text) if (translation.get_language() or "").startswith("fa") else str(text)


@total_ordering
@dataclass(frozen=True, slots=True)
class JalaliMonth:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not (MIN_YEAR <= self.year <= MAX_YEAR) or not (1 <= self.month <= 12):
            raise ValueError(f"not a Jalali month: {self.year}/{self.month}")

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def parse(cls, value: Any) -> JalaliMonth:
        """Accept "1404/09", "1404-9", "1404.9", "۱۴۰۴/۰۹", a JalaliMonth or the stored integer.

        Raises ValueError with a plain message for anything else.
        """
        if isinstance(value, JalaliMonth):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.from_int(value)
        if not isinstance(value, str):
            raise ValueError(_("Not a Jalali month: %(value)s") % {"value": value})
        match = _MONTH_RE.match(to_ascii_digits(value))
        if not match:
            raise ValueError(_("“%(value)s” is not a Jalali month; write it like 1404/09.") % {"value": value[:40]})
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise ValueError(_("Month must be between 1 and 12, not %(month)s.") % {"month": month})
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError(_("Year %(year)s is out of range.") % {"year": year})
        return cls(year, month)

    @classmethod
    def from_int(cls, value: int) -> JalaliMonth:
        try:
            return cls(value // 100, value % 100)
        except ValueError:
            raise ValueError(_("Not a Jalali month: %(value)s") % {"value": value}) from None

    @classmethod
    def from_date(cls, day: dt.date | jdatetime.date) -> JalaliMonth:
        jday = day if isinstance(day, jdatetime.date) else jdatetime.date.fromgregorian(date=day)
        return cls(jday.year, jday.month)

    @classmethod
    def from_datetime(cls, moment: dt.datetime) -> JalaliMonth:
        """The Jalali month of an aware moment, as seen on a clock in Tehran."""
        return cls.from_date(moment.astimezone(TEHRAN).date())

    @classmethod
    def current(cls, now: dt.datetime | None = None) -> JalaliMonth:
        """The fund's current month: the Jalali month of now in Asia/Tehran."""
        return cls.from_datetime(now or timezone.now())

    # --- arithmetic -------------------------------------------------------------------------
    def __int__(self) -> int:
        return self.year * 100 + self.month

    @property
    def index(self) -> int:
        """Months since year 0: makes differences and offsets plain integer arithmetic."""
        return self.year * 12 + self.month - 1

    @classmethod
    def from_index(cls, index: int) -> JalaliMonth:
        return cls(index // 12, index % 12 + 1)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, JalaliMonth):
            return NotImplemented
        return self.index < other.index

    def __add__(self, months: int) -> JalaliMonth:
        if not isinstance(months, int):
            return NotImplemented
        return JalaliMonth.from_index(self.index + months)

    def __sub__(self, other: int | JalaliMonth) -> Any:
        if isinstance(other, JalaliMonth):
            return self.index - other.index
        if isinstance(other, int):
            return JalaliMonth.from_index(self.index - other)
        return NotImplemented

    def next(self) -> JalaliMonth:
        return self + 1

    def previous(self) -> JalaliMonth:
        return self - 1

    def range_to(self, last: JalaliMonth) -> list[JalaliMonth]:
        """Every month from this one up to and including ``last``."""
        return [JalaliMonth.from_index(i) for i in range(self.index, last.index + 1)]

    # --- calendar ---------------------------------------------------------------------------
    @property
    def days(self) -> int:
        if self.month <= 6:
            return 31
        if self.month <= 11:
            return 30
        return 30 if jdatetime.date(self.year, 1, 1).isleap() else 29

    def first_day(self) -> jdatetime.date:
        return jdatetime.date(self.year, self.month, 1)

    def last_day(self) -> jdatetime.date:
        return jdatetime.date(self.year, self.month, self.days)

    def starts_at(self) -> dt.datetime:
        """The aware moment this month begins in Tehran."""
        return dt.datetime.combine(self.first_day().togregorian(), dt.time(), tzinfo=TEHRAN)

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days left in this month after today (Tehran), 0 on its last day."""
        today = jdatetime.date.fromgregorian(date=(now or timezone.now()).astimezone(TEHRAN).date())
        if JalaliMonth.from_date(today) != self:
            return 0 if today > self.last_day() else self.days
        return self.days - today.day

    # --- text -------------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"{self.year:04d}/{self.month:02d}"

    def __repr__(self) -> str:
        return f"JalaliMonth({self})"

    @property
    def name_fa(self) -> str:
        return MONTH_NAMES_FA[self.month - 1]

    @property
    def name_en(self) -> str:
        return MONTH_NAMES_EN[self.month - 1]

    def label(self, language: str = "fa") -> str:
        """ "آذر ۱۴۰۴" in Persian, "Azar 1404" in English."""
        if language.startswith("fa"):
            return f"{self.name_fa} {to_persian_digits(self.year)}"
        return f"{self.name_en} {self.year}"


def jalali_date(moment: dt.datetime | dt.date | None, with_time: bool = True) -> str:
    """A Gregorian date or aware moment written in the Jalali calendar, Tehran time: 1404/09/03 14:05."""
    if moment is None:
        return ""
    if isinstance(moment, dt.datetime):
        local = moment.astimezone(TEHRAN)
        jmoment = jdatetime.datetime.fromgregorian(datetime=local)
        return jmoment.strftime("%Y/%m/%d %H:%M" if with_time else "%Y/%m/%d")
    return jdatetime.date.fromgregorian(date=moment).strftime("%Y/%m/%d")


class JalaliMonthFormField(forms.CharField):
    default_error_messages = {"invalid": _("Enter a Jalali month like 1404/09.")}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"dir": "ltr", "maxlength": 20, "placeholder": "1404/09"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        # A month Saghat fills in is shown in the page's digits; what a person typed stays as typed.
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return in_language_digits(str(JalaliMonth.from_int(value)))
            except ValueError:
                return value
        return in_language_digits(str(value)) if isinstance(value, JalaliMonth) else value

    def to_python(self, value: Any) -> JalaliMonth | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return JalaliMonth.parse(value)
        except ValueError as error:
            raise ValidationError(str(error), code="invalid") from None


_MOMENT_RE = re.compile(r"^\s*(\d{4})\s*[/\-.]\s*(\d{1,2})\s*[/\-.]\s*(\d{1,2})(?:\s+(\d{1,2})\s*:\s*(\d{1,2}))?\s*$")


class JalaliDateTimeFormField(forms.CharField):
    """A moment typed as a Jalali date and a Tehran time ("1405/09/11 14:30", in Persian or Latin
    digits; without a time it is midnight), cleaned to an aware datetime (the database keeps UTC)."""

    default_error_messages = {"invalid": _("Enter a Jalali date and a time like 1405/09/11 14:30.")}

    def __init__(self, **kwargs: Any) -> None:
        attrs = {"dir": "ltr", "maxlength": 40, "placeholder": "1405/09/11 14:30"}
        kwargs.setdefault("widget", forms.TextInput(attrs=attrs))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        # A stored moment is shown in the Jalali calendar and the page's digits; typed text stays as typed.
        return in_language_digits(jalali_date(value)) if isinstance(value, dt.datetime) else value

    def to_python(self, value: Any) -> dt.datetime | None:
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        match = _MOMENT_RE.match(to_ascii_digits(value))
        if not match:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        year, month, day, hour, minute = (int(part or 0) for part in match.groups())
        if not MIN_YEAR <= year <= MAX_YEAR:  # a Gregorian date ("2026-12-02") is not read as Jalali
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            moment = jdatetime.datetime(year, month, day, hour, minute).togregorian()
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        return moment.replace(tzinfo=TEHRAN)


class JalaliMonthField(models.PositiveIntegerField):
    """Stores a JalaliMonth as ``year * 100 + month``; Python code only ever sees JalaliMonth."""

    description = _("Jalali month")

    def from_db_value(self, value: int | None, expression: Any, connection: Any) -> JalaliMonth | None:
        return None if value is None else JalaliMonth.from_int(value)

    def to_python(self, value: Any) -> JalaliMonth | None:
        if value is None or value == "":
            return None
        try:
            return JalaliMonth.parse(value)
        except ValueError as error:
            raise ValidationError(str(error), code="invalid") from None

    def get_prep_value(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, JalaliMonth):
            return int(value)
        if isinstance(value, str):
            return int(JalaliMonth.parse(value))
        return super().get_prep_value(value)

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else str(value)

    @cached_property
    def validators(self) -> list[Any]:
        # IntegerField's range validators compare with ints; a JalaliMonth is already range-checked.
        return [*self.default_validators, *self._validators]

    def formfield(self, **kwargs: Any) -> forms.Field:
        return models.Field.formfield(self, **{"form_class": JalaliMonthFormField, **kwargs})
