"""The bots: linking a chat with a one-time token, the webhook's secret, polling, the read-only
commands, and the member page's and the admin's parts of it."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from fund import bot, notifications
from fund.draw import reason_label
from fund.models import BotCursor, ChannelOptOut, ChatLink, Notification, Payment, User
from fund.payments import mark_verified
from tests.conftest import THIS_MONTH
from tests.fixtures.botapi import SECRETS


def update(chat_id: int, text: object, chat_type: str = "private") -> dict:
    return {"update_id": 1, "message": {"message_id": 1, "chat": {"id": chat_id, "type": chat_type}, "text": text}}


def webhook(client, channel: str, body: object, *, secret: str | None = None, header: str | None = None):
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": header} if header is not None else {}
    url = reverse("bot-webhook", args=(channel, secret if secret is not None else SECRETS[channel]))
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def alice(history) -> User:
    return history.member("alice", first_name="Alice", email="alice@example.org", language="en", request=30)


@pytest.fixture
def bob(history) -> User:
    return history.member("bob", first_name="Bob", email="bob@example.org", language="en")


def link(member: User, channel: str, chat_id: int) -> ChatLink:
    token = bot.start_link(member=member, channel=channel).start_token
    return bot.link_chat(channel=channel, chat_id=chat_id, token=token)


# --- linking ----------------------------------------------------------------------------------------


def test_a_valid_token_links_the_chat_through_the_webhook(fake_bot_webhook, alice, client):
    token = bot.start_link(member=alice, channel="telegram").start_token
    response = webhook(client, "telegram", update(555, f"/start {token}"), header=SECRETS["telegram"])
    assert response.status_code == 200
    link = ChatLink.objects.get(member=alice, channel="telegram")
    assert link.chat_id == 555 and link.linked_at is not None and link.start_token is None
    [reply] = fake_bot_webhook.texts("telegram", 555)
    assert "This chat is now linked to Alice" in reply and "/balance" in reply


def test_an_expired_token_links_nothing(fake_bot, alice):
    link = bot.start_link(member=alice, channel="telegram")
    ChatLink.objects.filter(pk=link.pk).update(token_expires_at=timezone.now() - dt.timedelta(seconds=1))
    reply = bot.handle_update("telegram", update(555, f"/start {link.start_token}"))
    assert "This link has expired." in reply
    assert ChatLink.objects.get(pk=link.pk).chat_id is None


def test_a_used_token_links_nothing_the_second_time(fake_bot, alice):
    token = bot.start_link(member=alice, channel="telegram").start_token
    bot.handle_update("telegram", update(555, f"/start {token}"))
    reply = bot.handle_update("telegram", update(666, f"/start {token}"))  # someone else tries it
    assert "This link is not valid or was already used." in reply
    assert ChatLink.objects.get(member=alice, channel="telegram").chat_id == 555
    assert bot.answer("telegram", 666, "/balance").startswith("این ربات اعلان‌های صندوق")


def test_a_token_of_one_messenger_does_not_work_on_the_other(fake_bot, alice):
    token = bot.start_link(member=alice, channel="telegram").start_token
    assert "not valid" in bot.handle_update("bale", update(555, f"/start {token}"))


def test_a_new_connect_replaces_the_unused_token(fake_bot, alice):
    first = bot.start_link(member=alice, channel="bale").start_token
    second = bot.start_link(member=alice, channel="bale").start_token
    assert "not valid" in bot.handle_update("bale", update(7, f"/start {first}"))
    assert "now linked" in bot.handle_update("bale", update(7, f"/start {second}"))


def test_a_chat_linked_by_another_member_moves_to_the_new_one(fake_bot, alice, bob):
    link(alice, "telegram", 555)
    link(bob, "telegram", 555)
    assert list(ChatLink.objects.filter(chat_id=555).values_list("member__username", flat=True)) == ["bob"]


def test_the_bot_ignores_groups(fake_bot, alice):
    token = bot.start_link(member=alice, channel="telegram").start_token
    assert bot.handle_update("telegram", update(-100, f"/start {token}", chat_type="group")) is None
    assert ChatLink.objects.get(member=alice).chat_id is None


# --- the webhook ------------------------------------------------------------------------------------


def test_the_webhook_refuses_a_request_without_the_secret_header(fake_bot_webhook, alice, client):
    token = bot.start_link(member=alice, channel="telegram").start_token
    body = update(555, f"/start {token}")
    assert webhook(client, "telegram", body).status_code == 403
    assert webhook(client, "telegram", body, header="wrong").status_code == 403
    assert webhook(client, "telegram", body, secret="wrong", header=SECRETS["telegram"]).status_code == 403
    assert ChatLink.objects.get(member=alice).chat_id is None
    assert fake_bot_webhook.texts() == []
    assert client.get(reverse("bot-webhook", args=("telegram", SECRETS["telegram"]))).status_code == 405


def test_the_bale_webhook_takes_its_secret_in_the_address(fake_bot_webhook, alice, client):
    token = bot.start_link(member=alice, channel="bale").start_token
    assert webhook(client, "bale", update(7, f"/start {token}"), secret="wrong").status_code == 403
    assert webhook(client, "bale", update(7, f"/start {token}"), header="wrong").status_code == 403
    assert webhook(client, "bale", update(7, f"/start {token}")).status_code == 200
    assert ChatLink.objects.get(member=alice).chat_id == 7


def test_without_a_configured_secret_there_is_no_webhook(fake_bot, client):
    response = webhook(client, "telegram", update(1, "/help"), secret="anything", header="anything")
    assert response.status_code == 404
    assert webhook(client, "whatsapp", update(1, "/help"), secret="x", header="x").status_code == 404


def test_the_webhook_takes_any_body_without_an_error(fake_bot_webhook, client, db):
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": SECRETS["telegram"]}
    url = reverse("bot-webhook", args=("telegram", SECRETS["telegram"]))
    assert client.post(url, "not json", content_type="application/json", **headers).status_code == 400
    for body in ([], {}, {"message": "x"}, {"message": {"chat": {"id": "1"}, "text": "/help"}}, update(1, None)):
        assert webhook(client, "telegram", body, header=SECRETS["telegram"]).status_code == 200


# --- polling ------------------------------------------------------------------------------------------


def test_polling_reads_each_update_once_with_the_same_handler(fake_bot, alice):
    token = bot.start_link(member=alice, channel="bale").start_token
    fake_bot.push_update("bale", chat_id=7, text=f"/start {token}")
    fake_bot.push_update("telegram", chat_id=9, text="hello")
    assert bot.poll_updates() == 2
    assert ChatLink.objects.get(member=alice).chat_id == 7
    assert BotCursor.objects.get(channel="bale").offset > 0
    assert bot.poll_updates() == 0  # the cursor moved past them
    assert len(fake_bot.texts("bale", 7)) == 1 and len(fake_bot.texts("telegram", 9)) == 1


def test_a_bot_with_a_webhook_is_not_polled(fake_bot_webhook):
    fake_bot_webhook.push_update("telegram", chat_id=9, text="/help")
    assert bot.poll_updates() == 0
    assert not [call for call in fake_bot_webhook.calls if call.method == "getUpdates"]


# --- commands -----------------------------------------------------------------------------------------


@pytest.fixture
def fund(history, alice, bob, today_in_this_month):
    history.pay_months(alice, THIS_MONTH - 2, 2, fee=20)
    history.pay_months(bob, THIS_MONTH - 3, 3, fee=33)
    history.loan(bob, THIS_MONTH - 2, 50)
    link(alice, "telegram", 101)
    link(bob, "telegram", 102)


def test_balance_answers_with_the_members_own_figures_only(fund):
    reply = bot.answer("telegram", 101, "/balance")
    assert "Your balance: 40.00 USDT." in reply and "You have no active loan." in reply
    assert "99" not in reply and "50.00" not in reply  # bob's
    assert "Active loan of 50.00 USDT (Azar 1404 - 2" not in reply
    assert "Active loan of 50.00 USDT" in bot.answer("telegram", 102, "/balance")


def test_status_says_what_is_due_then_that_the_payment_waits(fund, config):
    reply = bot.answer("telegram", 101, "/status")
    assert "This month (Azar 1404): not paid yet." in reply
    assert "at least 20.00 USDT" in reply and "Days left in the month: 20." in reply
    payment = Payment.objects.create(member=User.objects.get(username="alice"), month=THIS_MONTH, fee=Decimal("20"))
    assert "20.00 USDT is waiting for verification" in bot.answer("telegram", 101, "/status")
    mark_verified(payment=payment, by=None, note="ok")
    assert "20.00 USDT is verified" in bot.answer("telegram", 101, "/status")


def test_status_names_the_repayment_due_and_a_rejection(fund, config):
    bob = User.objects.get(username="bob")
    Payment.objects.create(member=bob, month=THIS_MONTH, fee=Decimal("33"), status="rejected", note="unknown id")
    reply = bot.answer("telegram", 102, "/status")
    assert "rejected. Reason: unknown id" in reply and "loan repayment between" in reply


def test_ranking_gives_the_members_own_position(fund, config):
    assert "you are number 1 of 1 eligible members" in bot.answer("telegram", 101, "/ranking")
    reason = reason_label("open_loan")
    assert f"You are out of the projected draw of Azar 1404 (reason: {reason})" in bot.answer(
        "telegram", 102, "/ranking"
    )


def test_the_reply_is_in_the_members_language(fund):
    User.objects.filter(username="alice").update(language="fa")
    assert "۴۰٫۰۰" in bot.answer("telegram", 101, "/balance")


def test_an_unlinked_chat_gets_only_the_instructions(fund):
    for text in ("/balance", "/status", "/ranking", "/help", "/start", "hello"):
        reply = bot.answer("telegram", 999, text)
        assert reply.startswith("این ربات اعلان‌های صندوق") and "USDT" not in reply
    assert bot.answer("bale", 101, "/balance").startswith("این ربات اعلان‌های صندوق")  # linked on Telegram, not Bale


def test_a_deactivated_member_is_answered_like_a_stranger(fund):
    User.objects.filter(username="alice").update(is_active=False)
    assert bot.answer("telegram", 101, "/balance").startswith("این ربات اعلان‌های صندوق")


@pytest.mark.parametrize(
    "text", ["", "   ", "/BALANCE", "/balance@saghat_telegram_bot", "/ranking now please", "/unknown", "ä" * 5000]
)
def test_any_input_gets_an_answer_not_an_error(fund, text):
    assert bot.answer("telegram", 101, text)


# --- the member page ----------------------------------------------------------------------------------


def test_the_member_connects_unlinks_and_chooses_channels(fake_bot, alice, config, client):
    client.force_login(alice)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(reverse("member-home")).content.decode()
    assert 'id="notifications"' in page and "Connect Telegram" in page and "Connect Bale" in page

    response = client.post(reverse("member-connect-chat"), {"channel": "telegram"}, follow=True)
    token = ChatLink.objects.get(member=alice, channel="telegram").start_token
    assert f"https://t.me/saghat_telegram_bot?start={token}" in response.content.decode()

    bot.handle_update("telegram", update(555, f"/start {token}"))
    assert "Your Telegram chat is linked." in client.get(reverse("member-home")).content.decode()

    client.post(reverse("member-unlink-chat"), {"channel": "telegram"})
    assert not ChatLink.objects.filter(member=alice).exists()

    client.post(reverse("member-notification-choices"), {"language": "fa", "telegram": "on"})
    alice.refresh_from_db()
    assert alice.language == "fa"
    assert set(ChannelOptOut.objects.filter(member=alice).values_list("channel", flat=True)) == {"email", "bale"}


def test_bad_choices_change_nothing(fake_bot, alice, config, client, settings):
    client.force_login(alice)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    response = client.post(reverse("member-notification-choices"), {"language": "de"}, follow=True)
    assert "Choose Persian or English." in response.content.decode()
    response = client.post(reverse("member-connect-chat"), {"channel": "whatsapp"}, follow=True)
    assert "That messenger is not available." in response.content.decode()
    settings.BALE_BOT_TOKEN = ""
    client.post(reverse("member-connect-chat"), {"channel": "bale"})
    assert not ChatLink.objects.exists() and not ChannelOptOut.objects.exists()
    assert User.objects.get(pk=alice.pk).language == "en"
    assert client.get(reverse("member-connect-chat")).status_code == 405


def test_without_bots_the_page_offers_only_the_choices(alice, config, client):
    client.force_login(alice)
    page = client.get(reverse("member-home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Connect Telegram" not in page and 'id="notification-choices"' in page


def test_an_operator_links_a_chat_from_their_page(fake_bot, operator, client):
    client.force_login(operator)
    page = client.get(reverse("member-home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Connect Telegram" in page


# --- the admin ------------------------------------------------------------------------------------------


def test_the_admin_lists_filters_and_sends_again(fake_bot, web, alice, config):
    link(alice, "telegram", 101)
    notifications.notify(event=notifications.REFUND_VERIFIED, key=1, member=alice, amount=Decimal("5"))
    notifications.deliver_due()
    changelist = reverse("admin:fund_notification_changelist")
    for query in ("", "?status__exact=sent", "?channel__exact=telegram", "?event=refund_verified", "?q=alice"):
        response = web.get(changelist + query)
        assert response.status_code == 200 and len(response.context["cl"].result_list) >= 1
    assert len(web.get(changelist + "?event=draw_result").context["cl"].result_list) == 0

    row = Notification.objects.get(channel="telegram")
    assert web.get(reverse("admin:fund_notification_change", args=(row.pk,))).status_code == 200
    data = {"action": "send_again", "_selected_action": [row.pk], "confirmed": "yes"}
    response = web.post(changelist, data, follow=True)
    assert "1 notification was queued to be sent again." in response.content.decode()
    assert Notification.objects.get(pk=row.pk).status == Notification.Status.PENDING
    notifications.deliver_due()
    assert len(fake_bot.texts("telegram", 101)) == 2

    links = web.get(reverse("admin:fund_chatlink_changelist") + "?state=linked").content.decode()
    assert "alice" in links and "linked" in links


def test_a_member_cannot_reach_the_outbox(alice, client):
    client.force_login(alice)
    response = client.get(reverse("admin:fund_notification_changelist"))
    assert response.status_code == 302 and response.url == reverse("member-home")


def test_the_command_registers_the_webhook_with_its_secret(fake_bot_webhook):
    from django.core.management import call_command

    call_command("bot_webhook", "telegram", "--url", "https://fund.example.org/")
    [call] = [c for c in fake_bot_webhook.calls if c.method == "setWebhook"]
    assert call.params["url"] == f"https://fund.example.org/bot/telegram/{SECRETS['telegram']}/"
    assert call.params["secret_token"] == SECRETS["telegram"]
    call_command("bot_webhook", "bale", "--delete")
    assert [c.channel for c in fake_bot_webhook.calls if c.method == "deleteWebhook"] == ["bale"]


def test_without_a_bot_user_name_the_page_gives_the_start_command(fake_bot, alice, config, client, settings):
    settings.BALE_BOT_USERNAME = ""
    client.force_login(alice)
    client.post(reverse("member-connect-chat"), {"channel": "bale"})
    token = ChatLink.objects.get(member=alice, channel="bale").start_token
    page = client.get(reverse("member-home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"/start {token}" in page and "ble.ir" not in page
