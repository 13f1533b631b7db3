"""A record's history in the reader's words: the changes of each version as a person reads them
(states by their labels, moments and months in the Jalali calendar, amounts as USDT), not as stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext as _
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from fund.jalali import JalaliMonth
from fund.templatetags.saghat import jdate, jmonth, usdt


class ReadableHistory(HistoricalRecordContextHelper):
    """simple-history's diff of two versions, each value written for people."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        field = self.model._meta.get_field(change.field)
        return readable_value(field, super().prepare_delta_change_value(change, value))


def readable_value(field: models.Field, value: Any) -> Any:
    """A stored value as the record's own page shows it."""
    if isinstance(value, DeletedObject):  # a link to no row: none at all, or one deleted since
        if value.pk is None:
            return "—"
        return _("deleted %(what)s") % {"what": value.model._meta.verbose_name}
    if value is None or value == "":
        return "—"
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, JalaliMonth):
        return jmonth(value)
    if isinstance(value, dt.date):
        return jdate(value)
    if isinstance(value, Decimal):
        return usdt(value)
    return value
