"""End to end in a real ``manage.py qcluster`` worker: a payment is verified in the worker, which
writes the notification and delivers it to the fake Bot API over the network."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from fund import notifications
from fund.jalali import JalaliMonth
from fund.models import ChatLink, FundConfig, Notification, Payment, User
from fund.payments import submit_payment
from tests.fixtures.worker import Worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_payment_verified_in_the_worker_reaches_the_members_telegram_chat(fake_bot, tmp_path: Path):
    FundConfig.load()
    member = User.objects.create_user("gita", first_name="Gita", is_member=True, language="en")
    ChatLink.objects.create(member=member, channel="telegram", chat_id=4242, linked_at=timezone.now())
    # No Bitpin key: the worker's verification job verifies at once (development mode).
    worker = Worker(tmp_path / "qcluster.log", {**fake_bot.env(), "BITPIN_API_KEY": ""}).start()
    try:
        payment = submit_payment(
            member=member, month=JalaliMonth.current(), fee=Decimal("20"), bitpin_id="bp-worker-notify"
        )
        worker.wait_for(lambda: any("was verified" in text for text in fake_bot.texts("telegram", 4242)))
    finally:
        worker.stop()

    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.VERIFIED
    verified = [text for text in fake_bot.texts("telegram", 4242) if "was verified" in text]
    assert verified == [
        f"Dear Gita, your payment of 20.00 USDT for {JalaliMonth.current().label('en')} was verified. Thank you."
        "\n\nSaghat friendly fund"
    ]
    row = Notification.objects.get(event=notifications.PAYMENT_VERIFIED, member=member)
    assert row.status == Notification.Status.SENT and row.attempts == 1
