"""The outbox: each event → one message per channel in the member's language, delivered once,
retried as the Bot API asks, and never in the way of the event (DESIGN.md, "Notifications")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from fund import notifications, proof, tasks
from fund.draw import run_draw
from fund.jalali import JalaliMonth
from fund.models import ChatLink, FundConfig, Loan, Notification, Payment, Payout, User
from fund.notifications import deliver_due
from fund.payments import mark_verified, reject_payment, submit_payment
from fund.payouts import mark_payout_verified
from fund.reconciliation import take_reading
from fund.reminders import send_due_reminders
from tests.conftest import THIS_MONTH

TG_ALICE, BALE_ALICE, TG_BOB = 101, 201, 102


def linked(member: User, channel: str, chat_id: int) -> ChatLink:
    return ChatLink.objects.create(member=member, channel=channel, chat_id=chat_id, linked_at=timezone.now())


@pytest.fixture
def alice(history) -> User:
    """Reads English; e-mail, Telegram and Bale."""
    member = history.member("alice", first_name="Alice", email="alice@example.org", language="en", request=20)
    linked(member, "telegram", TG_ALICE)
    linked(member, "bale", BALE_ALICE)
    return member


@pytest.fixture
def bob(history) -> User:
    """Reads Persian (the default); e-mail and Telegram."""
    member = history.member("bob", first_name="Bob", email="bob@example.org")
    linked(member, "telegram", TG_BOB)
    return member


def pending(member: User, fee: str = "20", month: JalaliMonth = THIS_MONTH) -> Payment:
    return Payment.objects.create(member=member, month=month, fee=Decimal(fee), bitpin_id=f"bp-{member.pk}-{month}")


def rows(event: str) -> list[tuple[str, str]]:
    return sorted(Notification.objects.filter(event=event).values_list("member__username", "channel"))


def messages_to(fake_bot, mailoutbox, member: User) -> dict[str, list[str]]:
    chats = {link.channel: link.chat_id for link in ChatLink.objects.filter(member=member)}
    found = {channel: fake_bot.texts(channel, chat_id) for channel, chat_id in chats.items()}
    found["email"] = [mail.body for mail in mailoutbox if mail.to == [member.email]]
    return found


ALL_ALICE = [("alice", "bale"), ("alice", "email"), ("alice", "telegram")]
ALL_BOB = [("bob", "email"), ("bob", "telegram")]


# --- each event, each channel, each language --------------------------------------------------------


def test_a_payment_received_is_one_message_on_each_channel_in_the_members_language(
    fake_bot, alice, bob, config, mailoutbox, today_in_this_month
):
    submit_payment(member=alice, month=THIS_MONTH, fee=Decimal("20"), bitpin_id="bp-a")
    submit_payment(member=bob, month=THIS_MONTH, fee=Decimal("1250.5"), bitpin_id="bp-b")
    assert rows(notifications.PAYMENT_RECEIVED) == ALL_ALICE + ALL_BOB
    assert deliver_due() == 5

    to_alice = messages_to(fake_bot, mailoutbox, alice)
    assert {channel: len(texts) for channel, texts in to_alice.items()} == {"telegram": 1, "bale": 1, "email": 1}
    assert "Dear Alice, your payment of 20.00 USDT for Azar 1404 was received" in to_alice["telegram"][0]
    assert to_alice["telegram"] == to_alice["bale"] == to_alice["email"]
    to_bob = messages_to(fake_bot, mailoutbox, bob)
    assert {channel: len(texts) for channel, texts in to_bob.items()} == {"telegram": 1, "email": 1}
    # Persian: the Jalali month's name, Persian digits and separators.
    assert "آذر ۱۴۰۴" in to_bob["telegram"][0] and "۱٬۲۵۰٫۵۰" in to_bob["telegram"][0]
    assert "1404" not in to_bob["telegram"][0] and "Azar" not in to_bob["telegram"][0]
    assert [mail.subject for mail in mailoutbox if mail.to == ["alice@example.org"]] == [
        "Saghat friendly fund: Payment received for Azar 1404"
    ]


def test_a_verified_payment_is_one_message_on_each_channel(fake_bot, alice, bob, config, mailoutbox):
    mark_verified(payment=pending(alice), by=None, note="checked")
    mark_verified(payment=pending(bob, "30"), by=None, note="checked")
    assert rows(notifications.PAYMENT_VERIFIED) == ALL_ALICE + ALL_BOB
    deliver_due()
    assert fake_bot.texts("telegram", TG_ALICE) == [
        "Dear Alice, your payment of 20.00 USDT for Azar 1404 was verified. Thank you.\n\nSaghat friendly fund"
    ]
    assert len(fake_bot.texts("bale", BALE_ALICE)) == 1
    [to_bob] = fake_bot.texts("telegram", TG_BOB)
    assert "۳۰٫۰۰" in to_bob and "آذر ۱۴۰۴" in to_bob
    assert len(mailoutbox) == 2


def test_a_rejected_payment_tells_the_reason(fake_bot, alice, bob, config, mailoutbox, settings):
    settings.SITE_URL = "https://fund.example.org"
    reject_payment(payment=pending(alice), by=None, note="Bitpin does not know the payment id")
    assert rows(notifications.PAYMENT_REJECTED) == ALL_ALICE
    deliver_due()
    [text] = fake_bot.texts("telegram", TG_ALICE)
    assert "was rejected. Reason: Bitpin does not know the payment id" in text
    assert "https://fund.example.org/" in text
    assert fake_bot.texts("telegram", TG_BOB) == []


def test_the_late_payment_reminder_goes_to_every_linked_channel_and_email(fake_bot, alice, bob, history, mailoutbox):
    FundConfig.objects.update(reminder_days_before=3)
    history.pay(bob, THIS_MONTH)
    no_channel = history.member("carol", email="")
    near_end = THIS_MONTH.next().starts_at() - dt.timedelta(days=2, hours=12)

    assert send_due_reminders(near_end) == 1  # bob paid; carol cannot be reached
    assert rows(notifications.REMINDER) == ALL_ALICE
    [text] = fake_bot.texts("telegram", TG_ALICE)
    assert "Your membership fee for Azar 1404 has not been received yet. 2 days are left" in text
    assert fake_bot.texts("bale", BALE_ALICE) == [text]
    assert [mail.to for mail in mailoutbox] == [["alice@example.org"]]
    assert not Notification.objects.filter(member=no_channel).exists()
    assert send_due_reminders(near_end) == 0  # once a month


def test_the_draw_result_goes_to_every_member_and_the_winner_is_told(fake_bot, alice, bob, history, mailoutbox):
    for member in (alice, bob):
        history.pay_months(member, THIS_MONTH - 2, 3)
    history.member("dora", email="")  # no channel: recorded, not sent
    User.objects.filter(username="dora").update(is_active=False)  # …and not a member any more: not told
    draw = run_draw(month=THIS_MONTH)
    assert draw.winner == alice

    assert rows(notifications.DRAW_RESULT) == ALL_ALICE + ALL_BOB
    assert rows(notifications.DRAW_CHOSEN) == ALL_ALICE
    deliver_due()
    to_alice = fake_bot.texts("telegram", TG_ALICE)
    assert len(to_alice) == 2
    assert any(
        "The draw of Azar 1404 has run: Alice receives a loan of 20.00 USDT." in t
        and "https://fund.example.org/draw/table/" in t
        for t in to_alice
    )
    assert any("Congratulations, Alice: you were chosen in the draw of Azar 1404" in t for t in to_alice)
    [to_bob] = fake_bot.texts("telegram", TG_BOB)
    assert "آذر ۱۴۰۴" in to_bob and "Alice" in to_bob and "۲۰٫۰۰" in to_bob
    assert len(fake_bot.texts("bale", BALE_ALICE)) == 2 and len(mailoutbox) == 3


def test_a_draw_without_a_winner_says_so(fake_bot, alice, bob, history):
    User.objects.update(loan_request_amount=0)
    for member in (alice, bob):
        history.pay(member, THIS_MONTH)
    run_draw(month=THIS_MONTH)
    deliver_due()
    assert "no one qualified for a loan" in fake_bot.texts("telegram", TG_ALICE)[0]
    assert rows(notifications.DRAW_CHOSEN) == []


def test_the_seed_commitment_goes_to_every_member(fake_bot, alice, bob):
    notifications.seed_committed(month=THIS_MONTH, commitment="ab12cd")
    deliver_due()
    assert "The random seed of the draw of Azar 1404 is committed: ab12cd" in fake_bot.texts("telegram", TG_ALICE)[0]
    assert "آذر ۱۴۰۴" in fake_bot.texts("telegram", TG_BOB)[0]


def test_the_commitment_job_announces_the_month_once_whoever_made_the_commitment(
    fake_bot, alice, bob, today_in_this_month
):
    made = proof.ensure_commitment(THIS_MONTH, made_by="member page")  # before the job, on demand
    proof.publish_month_commitment()
    proof.publish_month_commitment()  # the hourly job runs again: nothing more is sent
    deliver_due()
    texts = fake_bot.texts("telegram", TG_ALICE)
    assert len(texts) == 1
    assert f"is committed: {made.commitment}" in texts[0]


def test_a_verified_loan_payout_tells_the_winner(fake_bot, alice, bob, history, today_in_this_month):
    loan = history.loan(alice, THIS_MONTH, 300, state=Loan.State.AWAITING_PAYOUT)
    payout = Payout.objects.create(
        kind=Payout.Kind.LOAN, member=alice, loan=loan, amount=Decimal("300"), transfer_id="t1"
    )
    mark_payout_verified(payout=payout, by=None, note="checked")
    assert rows(notifications.PAYOUT_VERIFIED) == ALL_ALICE
    deliver_due()
    [text] = fake_bot.texts("telegram", TG_ALICE)
    assert "the payout of your loan of 300.00 USDT (draw of Azar 1404) was verified" in text
    assert "start in Dey 1404" in text


def test_a_verified_refund_tells_the_leaving_member(fake_bot, alice, bob, config):
    payout = Payout.objects.create(kind=Payout.Kind.REFUND, member=bob, amount=Decimal("12.5"), transfer_id="t2")
    mark_payout_verified(payout=payout, by=None, note="checked")
    assert rows(notifications.REFUND_VERIFIED) == ALL_BOB
    deliver_due()
    assert "۱۲٫۵۰" in fake_bot.texts("telegram", TG_BOB)[0]
    assert User.objects.get(pk=bob.pk).is_active is False  # the payout's own effect, unchanged


def test_operators_are_told_of_reconciliation_stalls_and_long_pending_payments(
    fake_bot, alice, operator, mailoutbox, today_in_this_month
):
    linked(operator, "telegram", 900)
    take_reading(typed_balance=Decimal("5"), by=operator)  # the ledger expects 0
    take_reading(typed_balance=Decimal("0"), by=operator)  # they match: nobody is told
    notifications.worker_stalled(key="2026-12-02T10", detail="no heartbeat for 10 minutes")
    payment = pending(alice)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    assert notifications.warn_about_pending_payments() == 1
    notifications.warn_about_pending_payments()  # the same day: once
    deliver_due()
    texts = fake_bot.texts("telegram", 900)
    assert len(texts) == 3
    assert (
        "تطبیق کیف پول اختلافی به مبلغ ۵٫۰۰ USDT نشان داد: موجودی کیف پول ۵٫۰۰ USDT است و دفتر حساب‌ها ۰٫۰۰" in texts[0]
    )
    assert "no heartbeat for 10 minutes" in texts[1]
    assert "۱ پرداخت بیش از یک روز است که در انتظار تأیید است" in texts[2]
    assert fake_bot.texts("telegram", TG_ALICE) == []  # members never get the operators' news


# --- once, and only once ------------------------------------------------------------------------------


def test_an_event_fired_twice_and_a_delivery_run_twice_send_once(fake_bot, alice, config, mailoutbox):
    payment = pending(alice)
    mark_verified(payment=payment, by=None, note="checked")
    notifications.payment_verified(Payment.objects.get(pk=payment.pk))  # the same event again
    assert rows(notifications.PAYMENT_VERIFIED) == ALL_ALICE
    assert tasks.deliver_notifications() == 3
    assert tasks.deliver_notifications() == 0  # the job delivered again (django-q redelivery)
    assert len(fake_bot.texts("telegram", TG_ALICE)) == 1
    assert len(fake_bot.texts("bale", BALE_ALICE)) == 1
    assert len(mailoutbox) == 1


def test_a_row_claimed_by_a_running_delivery_is_left_to_it(fake_bot, alice, config):
    mark_verified(payment=pending(alice), by=None, note="checked")
    claimed = notifications._claim()  # another job holds these (leased) while it sends
    assert len(claimed) == 3
    assert deliver_due() == 0
    assert fake_bot.texts() == []


# --- the Bot API's answers ----------------------------------------------------------------------------


def test_a_429_is_retried_once_its_retry_after_has_passed(fake_bot, alice, config, monkeypatch):
    fake_bot.answer(TG_ALICE, ["429:30", "ok"])
    mark_verified(payment=pending(alice), by=None, note="checked")
    start = timezone.now()
    deliver_due()
    row = Notification.objects.get(channel="telegram")
    assert row.status == Notification.Status.PENDING and "429" in row.last_error
    assert start + dt.timedelta(seconds=29) < row.next_attempt_at < start + dt.timedelta(seconds=32)

    deliver_due()  # too early: the API is not asked again
    assert len(fake_bot.sent("telegram", TG_ALICE)) == 1

    monkeypatch.setattr(timezone, "now", lambda: start + dt.timedelta(seconds=31))
    assert deliver_due() == 1
    assert len(fake_bot.sent("telegram", TG_ALICE)) == 2
    assert Notification.objects.get(channel="telegram").status == Notification.Status.SENT


def test_a_blocked_bot_marks_the_link_broken_and_stops_sending_there(fake_bot, alice, config, client):
    fake_bot.answer(TG_ALICE, "403")
    mark_verified(payment=pending(alice), by=None, note="checked")
    deliver_due()
    link = ChatLink.objects.get(member=alice, channel="telegram")
    assert link.broken_at is not None and "bot was blocked by the user" in link.broken_reason
    failed = Notification.objects.get(channel="telegram")
    assert failed.status == Notification.Status.FAILED
    assert len(fake_bot.texts("bale", BALE_ALICE)) == 1  # the other channels are not affected

    reject_payment(payment=pending(alice, "25", THIS_MONTH - 1), by=None, note="no")
    assert rows(notifications.PAYMENT_REJECTED) == [("alice", "bale"), ("alice", "email")]
    deliver_due()
    assert len(fake_bot.sent("telegram", TG_ALICE)) == 1  # never asked again

    client.force_login(alice)
    page = client.get(reverse("member-home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "The Telegram bot can no longer write to your chat" in page


def test_an_unknown_chat_marks_the_link_broken(fake_bot, alice, config):
    fake_bot.answer(BALE_ALICE, "400chat")
    mark_verified(payment=pending(alice), by=None, note="checked")
    deliver_due()
    assert ChatLink.objects.get(member=alice, channel="bale").broken_at is not None


def test_a_message_the_api_refuses_fails_and_the_operators_are_told(fake_bot, alice, operator, config, mailoutbox):
    fake_bot.answer(TG_ALICE, "400")
    mark_verified(payment=pending(alice), by=None, note="checked")
    deliver_due()
    assert Notification.objects.get(member=alice, channel="telegram").status == Notification.Status.FAILED
    [warning] = Notification.objects.filter(event=notifications.DELIVERY_FAILED)
    assert warning.member == operator
    assert "«تأیید پرداخت»" in warning.text and "alice" in warning.text and "message is too long" in warning.text


def test_a_failing_api_is_retried_with_back_off_then_given_up(fake_bot, alice, config, monkeypatch):
    fake_bot.answer(TG_ALICE, "500")
    mark_verified(payment=pending(alice), by=None, note="checked")
    moment = timezone.now()
    for attempt in range(1, notifications.MAX_ATTEMPTS + 1):
        monkeypatch.setattr(timezone, "now", lambda m=moment: m)
        deliver_due()
        row = Notification.objects.get(channel="telegram")
        assert row.attempts == attempt
        if attempt < notifications.MAX_ATTEMPTS:
            assert row.next_attempt_at == moment + notifications.retry_delay(attempt)
            moment = row.next_attempt_at
    assert row.status == Notification.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_the_event_commits_even_when_the_bot_api_is_down(fake_bot, monkeypatch, settings):
    import django_q.conf

    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)  # the delivery job runs at once, after the commit
    FundConfig.load()
    member = User.objects.create_user("erin", is_member=True, language="en")
    linked(member, "telegram", 303)
    fake_bot.stop()

    payment = submit_payment(member=member, month=JalaliMonth.current(), fee=Decimal("20"), bitpin_id="bp-down")

    # Committed (and, the jobs running at once without a Bitpin key, even verified meanwhile).
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.VERIFIED
    row = Notification.objects.get(member=member, event=notifications.PAYMENT_RECEIVED)
    assert row.status == Notification.Status.PENDING and row.attempts == 1
    assert "unreachable" in row.last_error


# --- no channel ------------------------------------------------------------------------------------------


def test_without_a_bot_token_notifications_are_recorded_not_sent(alice, history, config, settings, mailoutbox):
    settings.TELEGRAM_BOT_TOKEN = settings.BALE_BOT_TOKEN = ""
    nobody = history.member("frank", email="")
    mark_verified(payment=pending(alice), by=None, note="checked")
    mark_verified(payment=pending(nobody), by=None, note="checked")
    deliver_due()
    statuses = dict(
        Notification.objects.filter(event=notifications.PAYMENT_VERIFIED)
        .values_list("member__username", "channel")
        .values_list("channel", "status")
    )
    assert statuses == {"email": "sent", "telegram": "not_sent", "bale": "not_sent", "none": "not_sent"}
    assert "not configured" in Notification.objects.get(channel="telegram").last_error
    assert "no channel" in Notification.objects.get(channel="none").last_error
    assert len(mailoutbox) == 1


def test_a_member_who_turned_a_channel_off_gets_nothing_there(fake_bot, alice, config, mailoutbox):
    from fund import bot

    bot.choose_channel(member=alice, channel="email", enabled=False)
    bot.choose_channel(member=alice, channel="bale", enabled=False)
    mark_verified(payment=pending(alice), by=None, note="checked")
    assert rows(notifications.PAYMENT_VERIFIED) == [("alice", "telegram")]


def test_no_message_carries_another_members_money(fake_bot, alice, bob, config, history):
    history.pay_months(bob, THIS_MONTH - 5, 5, fee=77)
    mark_verified(payment=pending(alice), by=None, note="checked")
    deliver_due()
    assert all("77" not in text and "385" not in text for text in fake_bot.texts())


def test_the_worker_watchdog_tells_the_operators_of_a_stall(fake_bot, operator, config, settings, monkeypatch):
    from fund.management.commands import run_worker
    from fund.models import WorkerHeartbeat

    linked(operator, "telegram", 900)
    settings.WORKER_STALL_AFTER = 180
    WorkerHeartbeat.objects.create(pk=1, beat_at=timezone.now() - dt.timedelta(minutes=10))
    supervisor = run_worker.Supervisor(stall_after=180, check_every=1)
    supervisor.cluster = type("Running", (), {"poll": lambda self: None})()  # a cluster that is alive
    supervisor.taking_jobs = True
    monkeypatch.setattr(supervisor, "restart", lambda: None)  # not a real cluster to restart here
    supervisor.check()
    supervisor.check()  # the same stall, seen again: told once
    deliver_due()
    [text] = fake_bot.texts("telegram", 900)
    assert "به نظر می‌رسد پردازشگر پس‌زمینه متوقف شده است: پردازشگر پس‌زمینه از کار مانده است: در 10 دقیقه گذشته" in text
