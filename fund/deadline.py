"""The optional payment deadline (DESIGN.md, "Payment deadline"): when a month's payments close.

Off by default (``FundConfig.payment_deadline_day`` empty): the draw waits until every member has
paid. With a deadline day D, the month's payments close at the end of day D in Tehran, that is at
midnight starting day D + 1; after that the draw runs with those who have paid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jdatetime
from django.utils import timezone

from fund.jalali import TEHRAN, JalaliMonth
from fund.models import FundConfig


@dataclass(frozen=True)
class Deadline:
    month: JalaliMonth
    day: int
    ends_at: dt.datetime  # aware, Tehran: the moment after which unpaid members are out

    @property
    def last_day(self) -> jdatetime.date:
        return jdatetime.date(self.month.year, self.month.month, self.day)

    def passed(self, now: dt.datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.ends_at

    def days_left(self, now: dt.datetime | None = None) -> int:
        """Whole days after today (Tehran) until the deadline's last day; 0 on that day and after."""
        today = jdatetime.date.fromgregorian(date=(now or timezone.now()).astimezone(TEHRAN).date())
        return max((self.last_day - today).days, 0)

    def as_report(self, now: dt.datetime | None = None) -> dict[str, object]:
        """The policy as a draw's report records it, for the verifier and for members."""
        return {"day": self.day, "ends_at": self.ends_at.isoformat(), "passed": self.passed(now)}


def payment_deadline(month: JalaliMonth, config: FundConfig | None = None) -> Deadline | None:
    """The month's deadline, or None when the fund has none (today's rule: everyone must pay)."""
    day = (config or FundConfig.load()).payment_deadline_day
    if not day:
        return None
    closing = month.first_day() + dt.timedelta(days=day)  # midnight starting the day after day D
    ends_at = dt.datetime.combine(closing.togregorian(), dt.time(), tzinfo=TEHRAN)
    return Deadline(month=month, day=day, ends_at=ends_at)
