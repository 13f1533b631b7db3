"""Template filters shared by the member page and the admin: USDT amounts, Jalali months and dates,
and Persian digits whenever Persian is the active language.

    {% load saghat %}
    {{ payment.fee|usdt }}          1,234.50 (en)  ۱٬۲۳۴٫۵۰ (fa)
    {{ payment.month|jmonth }}      Azar 1404      آذر ۱۴۰۴        (JalaliMonth, "1404/09" or 140409)
    {{ payment.month|jmonth_short }} 1404/09       ۱۴۰۴/۰۹
    {{ payment.created_at|jdate }}  1404/09/03 14:05 (Tehran time)
    {% jnow %}                      the current moment, like jdate
    {{ count|digits }}              any value with Persian digits in Persian
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext

from fund.jalali import JalaliMonth, jalali_date, to_persian_digits, to_persian_number
from fund.money import format_usdt
from fund.persian import persian_active

register = template.Library()


def localize_digits(text: Any) -> str:
    """Persian digits when Persian is active; the text unchanged otherwise."""
    text = "" if text is None else str(text)
    return to_persian_digits(text) if persian_active() else text


def localize_number(text: str) -> str:
    return to_persian_number(text) if persian_active() else text


@register.filter
def reads_back_office(user: Any) -> bool:
    """The person may open the back office: an operator or an inspector (fund.admin.roles)."""
    from fund.admin.roles import may_read  # here, not above: fund.admin imports this module

    return bool(getattr(user, "is_authenticated", False)) and may_read(user)  # error pages have no user


@register.filter
def digits(value: Any) -> str:
    return localize_digits(value)


@register.filter
def usdt(value: Any) -> str:
    """A USDT amount with grouped thousands and at least two decimals; empty for None or junk."""
    if value is None or value == "":
        return ""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    if not number.is_finite():
        return ""
    return format_usdt(number, persian=persian_active())


def _month(value: Any) -> JalaliMonth | None:
    if value is None or value == "":
        return None
    try:
        return JalaliMonth.parse(value)
    except ValueError:
        return None


@register.filter
def jmonth(value: Any) -> str:
    """ "Azar 1404" / "آذر ۱۴۰۴" for a JalaliMonth, "1404/09" or the stored integer."""
    month = _month(value)
    if month is None:
        return "" if value is None else str(value)
    return month.label(get_language() or "fa")


@register.filter
def jmonth_short(value: Any) -> str:
    month = _month(value)
    return localize_digits(month if month is not None else ("" if value is None else value))


def _moment(value: Any) -> dt.datetime | dt.date | None:
    """Dates, aware moments, or ISO text (the projection's "projected_at")."""
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


@register.filter
def jdate(value: Any) -> str:
    """A moment in the Jalali calendar, Tehran time, with hours and minutes."""
    return localize_digits(jalali_date(_moment(value)))


@register.simple_tag
def jnow() -> str:
    """Now, in the Jalali calendar and Tehran time: {% jnow %}."""
    return jdate(timezone.now())


@register.filter
def score(value: Any) -> str:
    """A draw score from a report: "unlimited", a number written with up to 9 decimals, or a dash."""
    if value is None or value == "":
        return "—"
    if value == "unlimited":
        return gettext("unlimited")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    text = f"{number:.9f}".rstrip("0").rstrip(".")
    return localize_number(text)


@register.filter
def item(sequence: Any, position: Any) -> Any:
    """``sequence[position]``, or "" when there is none: for lists that run beside a table's rows."""
    try:
        return sequence[int(position)]
    except (IndexError, KeyError, TypeError, ValueError):
        return ""


@register.filter
def hexwrap(value: Any) -> str:
    """A long hash that may break across lines on a phone: a break opportunity after every two digits
    (``<wbr>``, which copying leaves out, so the hash copies as one word)."""
    text = str(value or "")
    if not text or any(c not in "0123456789abcdefABCDEF" for c in text):
        return conditional_escape(text)
    return mark_safe("<wbr>".join(text[i : i + 2] for i in range(0, len(text), 2)))  # noqa: S308 (hex digits only)
