"""How the back office writes money, months and moments: USDT amounts and the Jalali calendar.

The same filters as the member page (fund.templatetags.saghat), wrapped for ``@display`` methods:
numbers are kept left-to-right inside right-to-left pages so that their digits never flip.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from unfold.utils import display_for_label

from fund.jalali import JalaliMonth
from fund.templatetags.saghat import jdate, jmonth, usdt


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


def typed(value: str | None) -> SafeString | str:
    """A value a person typed (a Bitpin id, a note): shown as written, digits and all."""
    if not value:
        return "—"
    return format_html('<span translate="no">{}</span>', value)


def badge(value: str, text: str, colors: dict[str, str]) -> SafeString:
    """unfold's coloured label, as a list cell and as a read-only field alike."""
    return display_for_label((value, text), "—", colors)


def loan_link(loan: Any) -> SafeString | str:
    """A link to a loan's page, named by its month and amount in the active language."""
    if loan is None:
        return "—"
    url = reverse("admin:fund_loan_change", args=(loan.pk,))
    return format_html(
        '<a href="{}" class="text-primary-600">{} · {} USDT</a>', url, month_label(loan.month), money(loan.amount)
    )


def person(user: Any) -> SafeString:
    """A member's name with their username under it, kept on one line each (lists stay compact)."""
    return format_html(
        '<div class="whitespace-nowrap" translate="no"><span class="font-semibold text-important">{}</span>'
        '<div class="text-subtle">{}</div></div>',
        user.get_full_name() or user.username,
        user.username,
    )


def change_link(obj: Any, text: str) -> SafeString:
    """``text`` linking to ``obj``'s page in the admin."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=(obj.pk,))
    return format_html('<a href="{}" class="text-primary-600">{}</a>', url, text)
