"""The bots' side of a chat: linking a chat to a member, and the few read-only commands.

Updates reach ``handle_update`` from the webhook view (production) or the polling job
(``getUpdates``, when there is no public address): one handler for both. A chat is bound to a
member by ``/start <token>``, the one-time token of the member page's "connect" button. A linked
member may ask /balance, /status, /ranking and /help and gets only their own figures; any other
chat gets only the linking instructions. Nothing a chat sends can raise: odd input gets /help.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fund import botapi, ledger
from fund.jalali import JalaliMonth
from fund.models import CHAT_CHANNELS, BotCursor, Channel, ChannelOptOut, ChatLink, Payment, User
from fund.notifications import localize

log = logging.getLogger(__name__)

LANGUAGES = ("fa", "en")


class LinkRefused(Exception):
    """The chat could not be linked; ``str()`` says why, for the person in the chat."""


# --- the member page's services ------------------------------------------------------------------


def start_link(*, member: User, channel: str) -> ChatLink:
    """A fresh one-time token for linking a chat on ``channel``; an earlier unused token stops working."""
    if channel not in CHAT_CHANNELS:
        raise LinkRefused(_("Unknown channel."))
    token = secrets.token_urlsafe(24)  # 32 characters of A-Za-z0-9_-: what a start payload allows
    expires = timezone.now() + dt.timedelta(minutes=settings.BOT_LINK_MINUTES)
    link, _created = ChatLink.objects.update_or_create(
        member=member, channel=channel, defaults={"start_token": token, "token_expires_at": expires}
    )
    return link


def unlink(*, member: User, channel: str) -> bool:
    """Forget the member's chat on ``channel``; nothing is sent there any more."""
    deleted, _rows = ChatLink.objects.filter(member=member, channel=channel).delete()
    return bool(deleted)


def choose_channel(*, member: User, channel: str, enabled: bool) -> None:
    """Turn notifications on ``channel`` on or off for the member (all are on by default)."""
    if channel not in (Channel.EMAIL, *CHAT_CHANNELS):
        raise LinkRefused(_("Unknown channel."))
    if enabled:
        ChannelOptOut.objects.filter(member=member, channel=channel).delete()
    else:
        ChannelOptOut.objects.get_or_create(member=member, channel=channel)


def choose_language(*, member: User, language: str) -> None:
    if language not in LANGUAGES:
        raise LinkRefused(_("Unknown language."))
    User.objects.filter(pk=member.pk).update(language=language)
    member.language = language


def link_chat(*, channel: str, chat_id: int, token: str) -> ChatLink:
    """Bind ``chat_id`` to the member whose page issued ``token``: once, and before it expires."""
    with transaction.atomic():
        # Locked: the same token arriving twice at once (webhook retry, poll) binds once.
        link = (
            ChatLink.objects.select_for_update()
            .select_related("member")
            .filter(channel=channel, start_token=token)
            .first()
        )
        if link is None or not link.member.is_active:
            raise LinkRefused(_("This link is not valid or was already used."))
        if link.token_expires_at is None or link.token_expires_at <= timezone.now():
            raise LinkRefused(_("This link has expired."))
        # The chat now speaks for this member only: whoever had it before loses it.
        ChatLink.objects.filter(channel=channel, chat_id=chat_id).exclude(pk=link.pk).delete()
        link.chat_id = chat_id
        link.start_token = None
        link.token_expires_at = None
        link.linked_at = timezone.now()
        link.broken_at = None
        link.broken_reason = ""
        link.save()
    return link


# --- answering a chat ----------------------------------------------------------------------------


def handle_update(channel: str, update: Any) -> str | None:
    """Answer one update from the Bot API; returns the reply sent (None when there is nothing to answer)."""
    message = update.get("message") if isinstance(update, dict) else None
    if not isinstance(message, dict):
        return None
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    chat_id, text = chat.get("id"), message.get("text")
    if not isinstance(chat_id, int) or isinstance(chat_id, bool):
        return None
    if chat.get("type", "private") != "private":
        return None  # the bot talks to members one by one, never in groups
    try:
        reply = answer(channel, chat_id, text if isinstance(text, str) else "")
    except Exception:
        # Never an error page for the Bot API: it would send the same update again and again.
        log.exception("the %s bot could not answer chat %s", channel, chat_id)
        return None
    config = botapi.bot_config(channel)
    if config is not None:
        try:
            with botapi.BotClient(config) as client:
                client.send_message(chat_id, reply)
        except botapi.BotError as error:
            log.warning("the %s bot could not answer chat %s: %s", channel, chat_id, error)
    return reply


def answer(channel: str, chat_id: int, text: str) -> str:
    """The reply to ``text`` from ``chat_id``: linking, a command for a linked member, or instructions."""
    words = text.strip().split()
    command = words[0].split("@", 1)[0].lower() if words else ""
    if command == "/start" and len(words) > 1:
        return _link_reply(channel, chat_id, words[1])
    link = (
        ChatLink.objects.select_related("member")
        .filter(channel=channel, chat_id=chat_id, member__is_active=True)
        .first()
    )
    if link is None:
        return _instructions(settings.LANGUAGE_CODE)
    member = link.member
    with translation.override(member.language or settings.LANGUAGE_CODE):
        handler = COMMANDS.get(command, _help)
        return handler(member)


def _link_reply(channel: str, chat_id: int, token: str) -> str:
    try:
        link = link_chat(channel=channel, chat_id=chat_id, token=token[:64])
    except (LinkRefused, IntegrityError) as refused:
        reason = str(refused) if isinstance(refused, LinkRefused) else _("This link is not valid or was already used.")
        with translation.override(settings.LANGUAGE_CODE):
            return f"{reason}\n\n{_instructions(settings.LANGUAGE_CODE)}"
    member = link.member
    with translation.override(member.language or settings.LANGUAGE_CODE):
        linked = _("This chat is now linked to %(name)s. You will receive the fund's notifications here.") % {
            "name": member.get_full_name() or member.username
        }
        return f"{linked}\n\n{_help(member)}"


def _instructions(language: str) -> str:
    with translation.override(language):
        return _(
            "This bot sends the fund's notifications to its members. To link this chat, log in to your "
            "page at %(url)s, press “Connect” next to this messenger and open the link it gives you."
        ) % {"url": settings.SITE_URL + "/"}


def _help(member: User) -> str:
    return "\n".join(
        [
            _("Commands:"),
            "/balance — " + _("your balance and active loan"),
            "/status — " + _("this month: paid, pending, or what is due"),
            "/ranking — " + _("your position in the projected draw"),
            "/help — " + _("this list"),
        ]
    )


def _balance(member: User) -> str:
    language = translation.get_language() or "fa"
    lines = [_("Your balance: %(amount)s USDT.") % {"amount": localize(ledger.balance_of(member), language)}]
    loan = ledger.active_loan(member)
    if loan is None:
        lines.append(_("You have no active loan."))
    else:
        lines.append(
            _("Active loan of %(amount)s USDT (%(month)s): %(remaining)s USDT still to repay.")
            % {
                "amount": localize(loan.amount, language),
                "month": localize(loan.month, language),
                "remaining": localize(loan.remaining, language),
            }
        )
    return "\n".join(lines)


def _status(member: User) -> str:
    from fund import payments

    language = translation.get_language() or "fa"
    month = JalaliMonth.current()
    values = {"month": localize(month, language)}
    rows = list(Payment.objects.filter(member=member, month=month).order_by("-pk"))
    counting = next((p for p in rows if p.status != Payment.Status.REJECTED), None)
    if counting is not None:
        values["amount"] = localize(counting.total, language)
        if counting.status == Payment.Status.VERIFIED:
            return _("This month (%(month)s): your payment of %(amount)s USDT is verified.") % values
        return _("This month (%(month)s): your payment of %(amount)s USDT is waiting for verification.") % values
    lines = []
    if rows:
        lines.append(
            _("This month (%(month)s): your payment was rejected. Reason: %(reason)s")
            % {**values, "reason": rows[0].note or "—"}
        )
    else:
        lines.append(_("This month (%(month)s): not paid yet.") % values)
    due = [
        _("Due: a membership fee of at least %(fee)s USDT.") % {"fee": localize(ledger.fund_config().min_fee, language)}
    ]
    repayment = payments.repayment_due(member=member, month=month)
    if repayment is not None and repayment.bounds.maximum > 0:
        due.append(
            _("And a loan repayment between %(low)s and %(high)s USDT.")
            % {
                "low": localize(repayment.bounds.minimum, language),
                "high": localize(repayment.bounds.maximum, language),
            }
        )
    lines.append(" ".join(due))
    lines.append(_("Days left in the month: %(days)s.") % {"days": localize(month.days_left(), language)})
    return "\n".join(lines)


def _ranking(member: User) -> str:
    from fund import draw

    language = translation.get_language() or "fa"
    target = draw.projection_month(JalaliMonth.current())  # as on the member page
    report = draw.current_projection(target)
    index = draw.report_index(report)
    position = index.positions.get(member.pk)
    values = {"month": localize(target, language)}
    if position is None:
        return _("You are not in the projected draw of %(month)s.") % values
    row = report["rows"][position]
    if row.get("eligible"):
        values.update(rank=localize(int(row["rank"]), language), total=localize(index.eligible, language))
        return _("Projected draw of %(month)s: you are number %(rank)s of %(total)s eligible members.") % values
    return _("You are out of the projected draw of %(month)s (reason: %(reason)s).") % {
        **values,
        "reason": draw.reason_label(row.get("reason")),
    }


COMMANDS = {"/balance": _balance, "/status": _status, "/ranking": _ranking, "/help": _help, "/start": _help}


# --- the polling job ------------------------------------------------------------------------------

POLL_TIME_BUDGET_SECONDS = 50.0


def poll_updates(time_budget: float = POLL_TIME_BUDGET_SECONDS) -> int:
    """Read and answer each polling bot's new updates (bots with a webhook are skipped). Returns how many.

    The cursor moves past each update once it is answered, so a crash re-reads at most one.
    """
    handled = 0
    deadline = time.monotonic() + time_budget
    for channel in botapi.CHANNELS:
        config = botapi.bot_config(channel)
        if config is None or not config.polling:
            continue
        with botapi.BotClient(config) as client:
            while time.monotonic() < deadline:
                cursor, _created = BotCursor.objects.get_or_create(channel=channel)
                try:
                    updates = client.get_updates(offset=cursor.offset)
                except botapi.BotError as error:
                    log.warning("the %s bot's updates could not be read: %s", channel, error)
                    break
                if not updates:
                    break
                before = cursor.offset
                for update in updates:
                    update_id = update.get("update_id")
                    if not isinstance(update_id, int) or update_id < cursor.offset:
                        continue
                    try:
                        handle_update(channel, update)
                    except Exception:
                        log.exception("the %s bot could not handle update %s", channel, update_id)
                    BotCursor.objects.filter(channel=channel).update(offset=update_id + 1)
                    cursor.offset = update_id + 1
                    handled += 1
                if cursor.offset == before:
                    break  # nothing usable in the answer: do not ask again in a loop
    return handled
