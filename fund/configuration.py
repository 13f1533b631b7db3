"""The fund's configuration: the one service that changes it (the admin's page and ``setup_fund``).

Its rules live here once; the database's check constraints (fund.models.FundConfig) back them up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from fund.models import MAX_DEADLINE_DAY, MAX_REPAYMENT_MONTHS, FundConfig

# Every Jalali month has at least 29 days: a reminder "more days before the end" than that would
# be due from the month's first day on (or never be meant).
MAX_REMINDER_DAYS = 29
FIELDS = (
    "name",
    "min_fee",
    "max_repayment_months",
    "min_repayment",
    "auto_draw",
    "reminder_days_before",
    "payment_deadline_day",
    "reconciliation_tolerance",
)


class ConfigRefused(Exception):
    """The configuration was not changed. ``problems`` maps each field to the reason, for the person."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems.items()))
        self.problems = problems


def problems(**values: Any) -> dict[str, str]:
    """What is wrong with these values (only the fields given are checked); empty when all is well."""
    found: dict[str, str] = {}
    if "name" in values and not str(values["name"] or "").strip():
        found["name"] = _("Give the fund a name.")
    for field in ("min_fee", "min_repayment"):
        if field in values and (values[field] is None or Decimal(values[field]) <= 0):
            found[field] = _("The amount must be more than zero.")
    if "reconciliation_tolerance" in values and (
        values["reconciliation_tolerance"] is None or Decimal(values["reconciliation_tolerance"]) < 0
    ):
        found["reconciliation_tolerance"] = _("The amount cannot be negative.")
    months = values.get("max_repayment_months", 1)
    if months is None or not 1 <= months <= MAX_REPAYMENT_MONTHS:
        found["max_repayment_months"] = _("Between 1 and %(max)s months.") % {"max": MAX_REPAYMENT_MONTHS}
    days = values.get("reminder_days_before")
    if days is not None and not 1 <= days <= MAX_REMINDER_DAYS:
        found["reminder_days_before"] = _("Between 1 and %(max)s days (a month has at least 29), or empty.") % {
            "max": MAX_REMINDER_DAYS
        }
    deadline = values.get("payment_deadline_day")
    if deadline is not None and not 1 <= deadline <= MAX_DEADLINE_DAY:
        found["payment_deadline_day"] = _("Between 1 and %(max)s, or empty for no deadline.") % {"max": MAX_DEADLINE_DAY}
    return found


def update_config(**values: Any) -> FundConfig:
    """Change the fields given; raises ConfigRefused, changing nothing, when a rule says no."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"not configuration fields: {sorted(unknown)}")
    found = problems(**values)
    if found:
        raise ConfigRefused(found)
    with transaction.atomic():
        config = FundConfig.objects.select_for_update().filter(pk=FundConfig.SINGLETON_ID).first() or FundConfig.load()
        for field, value in values.items():
            setattr(config, field, value)
        config.save()
    return config
