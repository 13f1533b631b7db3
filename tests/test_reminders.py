import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from fund.jalali import JalaliMonth
from fund.models import FundConfig, Reminder
from fund.reminders import send_due_reminders

TEHRAN = ZoneInfo("Asia/Tehran")
MONTH = JalaliMonth(1404, 9)  # Azar: 30 days
# 1404/09/28 noon in Tehran: 2 days left in the month.
NEAR_END = dt.datetime.combine(MONTH.first_day().replace(day=28).togregorian(), dt.time(12), tzinfo=TEHRAN)
EARLY = dt.datetime.combine(MONTH.first_day().replace(day=3).togregorian(), dt.time(12), tzinfo=TEHRAN)


@pytest.fixture
def fund(history):
    config = FundConfig.load()
    config.reminder_days_before = 3
    config.save()
    paid = history.member("paid", email="paid@example.org")
    late = history.member("late", email="late@example.org")
    no_email = history.member("noemail", email="")
    left = history.member("left", email="left@example.org", is_active=False)
    history.pay(paid, MONTH)
    return paid, late, no_email, left


def test_it_reminds_only_unpaid_members_with_an_email(fund, mailoutbox):
    assert send_due_reminders(NEAR_END) == 1
    assert [m.to for m in mailoutbox] == [["late@example.org"]]
    # In the member's language (Persian by default), with the Jalali month's name and Persian digits.
    assert "آذر ۱۴۰۴" in mailoutbox[0].subject
    assert Reminder.objects.filter(month=MONTH).count() == 1


def test_it_reminds_a_member_at_most_once_a_month(fund, mailoutbox):
    send_due_reminders(NEAR_END)
    assert send_due_reminders(NEAR_END + dt.timedelta(hours=1)) == 0
    assert len(mailoutbox) == 1


def test_it_waits_until_the_configured_days_before_the_month_ends(fund, mailoutbox):
    assert send_due_reminders(EARLY) == 0
    assert mailoutbox == []


def test_no_reminders_when_not_configured(fund, mailoutbox):
    FundConfig.objects.update(reminder_days_before=None)
    assert send_due_reminders(NEAR_END) == 0
    assert mailoutbox == []


def test_the_scheduled_job_sends_them(fund, mailoutbox, monkeypatch):
    from django.utils import timezone

    from fund import tasks

    monkeypatch.setattr(timezone, "now", lambda: NEAR_END)
    assert tasks.send_reminders() == 1
