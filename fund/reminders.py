"""Reminders to members who have not paid this month, a configurable number of days before it ends."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from fund import ledger, notifications
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Reminder, User


def reminder_due(config: FundConfig, month: JalaliMonth, now: dt.datetime) -> bool:
    return config.reminder_days_before is not None and month.days_left(now) <= config.reminder_days_before


def send_due_reminders(now: dt.datetime | None = None) -> int:
    """Remind every unpaid member who has a channel (e-mail or a linked chat), once per month.

    Returns how many were reminded. The Reminder row and the notification's outbox rows are
    written in one transaction, and the Reminder is unique per member and month: two runs (or
    two workers) can never remind the same member twice. Delivery (with its retries) is the
    outbox's; this job, already in the worker, delivers what is due before it ends.
    """
    now = now or timezone.now()
    config = FundConfig.load()
    month = JalaliMonth.current(now)
    if not reminder_due(config, month, now):
        return 0
    already = set(Reminder.objects.filter(month=month).values_list("member_id", flat=True))
    unpaid = [member for member in ledger.unpaid_members(month) if member.pk not in already]
    reachable = notifications.reachable(unpaid)
    sent = sum(1 for member in unpaid if member.pk in reachable and _remind(member, month, config, now))
    if sent:
        notifications.deliver_due()
    return sent


def _remind(member: User, month: JalaliMonth, config: FundConfig, now: dt.datetime) -> bool:
    try:
        with transaction.atomic():
            Reminder.objects.create(member=member, month=month)
            notifications.notify(
                event=notifications.REMINDER,
                key=month,
                member=member,
                month=month,
                days=month.days_left(now),
                fee=config.min_fee,
            )
    except IntegrityError:
        return False  # another run reminded this member first
    return True
