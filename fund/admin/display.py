"""How the back office writes money, months and moments: USDT amounts and the Jalali calendar.

The same filters as the member page (fund.templatetags.saghat), wrapped for ``@display`` methods:
numbers are kept left-to-right inside right-to-left pages so that their digits never flip.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from fund.jalali import JalaliMonth
from fund.templatetags.saghat import digits, jdate, jmonth, usdt


def money(amount: Decimal | str | None) -> SafeString | str:
    if amount is None or amount == "":
        return "—"
    return format_html('<span dir="ltr" class="whitespace-nowrap">{}</span>', usdt(amount))


def month_label(month: JalaliMonth | str | None) -> str:
    """ "آذر ۱۴۰۴" in Persian, "Azar 1404" in English."""
    return jmonth(month) if month else "—"


def moment(value: dt.datetime | dt.date | None) -> SafeString | str:
    """A date or moment in the Jalali calendar, Tehran time."""
    if value is None:
        return "—"
    return format_html('<span dir="ltr" class="whitespace-nowrap">{}</span>', jdate(value))


def number(value: Any) -> str:
    return digits(value)
