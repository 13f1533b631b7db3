"""Reminders to members who have not paid this month, a configurable number of days before it ends."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fund import ledger
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Reminder, User
from fund.money import format_usdt

log = logging.getLogger(__name__)


def reminder_due(config: FundConfig, month: JalaliMonth, now: dt.datetime) -> bool:
    return config.reminder_days_before is not None and month.days_left(now) <= config.reminder_days_before


def send_due_reminders(now: dt.datetime | None = None) -> int:
    """Send the month's reminder to every unpaid member with an e-mail address, once per month.

    Returns how many were sent. The Reminder row is written in the same transaction as the
    e-mail is handed over, and is unique per member and month: two runs (or two workers) can
    never remind the same member twice, and a failed send leaves no row so the next run retries.
    """
    now = now or timezone.now()
    config = FundConfig.load()
    month = JalaliMonth.current(now)
    if not reminder_due(config, month, now):
        return 0
    already = set(Reminder.objects.filter(month=month).values_list("member_id", flat=True))
    sent = 0
    for member in ledger.unpaid_members(month):
        if not member.email or member.pk in already:
            continue
        if _remind(member, month, config, now):
            sent += 1
    return sent


def _remind(member: User, month: JalaliMonth, config: FundConfig, now: dt.datetime) -> bool:
    try:
        with transaction.atomic():
            Reminder.objects.create(member=member, month=month)
            with translation.override(settings.LANGUAGE_CODE):
                send_mail(
                    subject=_("%(fund)s: your payment for %(month)s") % {"fund": str(config), "month": month},
                    message=_reminder_text(member, month, config, now),
                    from_email=None,
                    recipient_list=[member.email],
                )
    except IntegrityError:
        return False  # another run reminded this member first
    except OSError:
        log.exception("reminder to %s for %s could not be sent; the next run retries", member.username, month)
        return False
    return True


def _reminder_text(member: User, month: JalaliMonth, config: FundConfig, now: dt.datetime) -> str:
    return _(
        "Dear %(name)s,\n\nYour membership fee for %(month)s has not been received yet. "
        "%(days)s days are left in the month. The minimum fee is %(fee)s USDT.\n\n%(fund)s"
    ) % {
        "name": member.get_full_name() or member.username,
        "month": month,
        "days": month.days_left(now),
        "fee": format_usdt(config.min_fee),
        "fund": str(config),
    }
