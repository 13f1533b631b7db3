"""Delivery jobs running at the same moment on PostgreSQL: each message is sent once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from fund import notifications
from fund.jalali import JalaliMonth
from fund.models import ChatLink, FundConfig, Notification, User
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def test_three_delivery_jobs_at_once_send_each_message_once(fake_bot):
    FundConfig.load()
    members = [User.objects.create_user(f"m{i}", is_member=True, language="en") for i in range(120)]
    ChatLink.objects.bulk_create(
        ChatLink(member=member, channel="telegram", chat_id=1000 + i, linked_at=timezone.now())
        for i, member in enumerate(members)
    )
    notifications.seed_committed(month=JalaliMonth(1404, 9), commitment="c0ffee")
    assert Notification.objects.filter(status="pending").count() == 120

    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            notifications.deliver_due()
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    chats = [call.params["chat_id"] for call in fake_bot.sent("telegram")]
    assert sorted(chats) == list(range(1000, 1120))  # every member once, nobody twice
    assert Notification.objects.filter(status="sent").count() == 120
