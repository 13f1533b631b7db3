"""Notifications: the outbox, the message texts, and their delivery (DESIGN.md, "Notifications").

An event's service calls ``notify`` (or one of the one-line helpers below) inside its own
transaction. ``notify`` writes one outbox row per recipient and channel — e-mail, a linked
Telegram chat, a linked Bale chat — with the text already written in the recipient's language,
and queues the delivery job once the transaction commits. So:

- the rows exist exactly when the event does (they commit or roll back with it);
- (event, key, member, channel) is unique: an event fired twice writes nothing the second time;
- delivery never blocks or undoes the event: writing the rows runs in a savepoint whose failure
  is logged, and queueing the job happens after the commit and may fail without harm (the
  scheduled delivery job picks up whatever is pending).

Delivery (``deliver_due``) claims pending rows, sends them, and records the outcome: sent;
retried with back-off (a 429's ``retry_after`` is honoured); the chat gone (403 "bot was blocked",
400 "chat not found"), which marks the link broken; or failed for good, which operators are told.
A recipient with no channel, or a bot without a token, gets a row that is recorded, not sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import BooleanField, Exists, F, OuterRef, Q, QuerySet, Value
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_q.tasks import async_task

from fund import botapi, coalesce
from fund.jalali import JalaliMonth, jalali_date, to_persian_digits
from fund.models import (
    CHAT_CHANNELS,
    Channel,
    ChannelOptOut,
    ChatLink,
    Draw,
    FundConfig,
    Notification,
    Payment,
    Payout,
    Reconciliation,
    User,
)
from fund.money import format_usdt

log = logging.getLogger(__name__)

PENDING, SENT, FAILED, NOT_SENT = (
    Notification.Status.PENDING,
    Notification.Status.SENT,
    Notification.Status.FAILED,
    Notification.Status.NOT_SENT,
)

# --- events and their texts ------------------------------------------------------------------------
# Event kinds are stored on the rows: never rename one.
PAYMENT_RECEIVED = "payment_received"
PAYMENT_VERIFIED = "payment_verified"
PAYMENT_REJECTED = "payment_rejected"
REMINDER = "reminder"
SEED_COMMITMENT = "seed_commitment"
DRAW_RESULT = "draw_result"
DRAW_CHOSEN = "draw_chosen"
PAYOUT_VERIFIED = "payout_verified"
REFUND_VERIFIED = "refund_verified"
# Operators only.
RECONCILIATION_DIFFERENCE = "reconciliation_difference"
WORKER_STALLED = "worker_stalled"
PAYMENTS_PENDING_LONG = "payments_pending_long"
DELIVERY_FAILED = "delivery_failed"

EVENT_LABELS = {
    PAYMENT_RECEIVED: gettext_lazy("payment received"),
    PAYMENT_VERIFIED: gettext_lazy("payment verified"),
    PAYMENT_REJECTED: gettext_lazy("payment rejected"),
    REMINDER: gettext_lazy("late-payment reminder"),
    SEED_COMMITMENT: gettext_lazy("draw seed committed"),
    DRAW_RESULT: gettext_lazy("draw result"),
    DRAW_CHOSEN: gettext_lazy("chosen in the draw"),
    PAYOUT_VERIFIED: gettext_lazy("loan payout verified"),
    REFUND_VERIFIED: gettext_lazy("refund verified"),
    RECONCILIATION_DIFFERENCE: gettext_lazy("reconciliation difference"),
    WORKER_STALLED: gettext_lazy("worker stalled"),
    PAYMENTS_PENDING_LONG: gettext_lazy("payments pending for long"),
    DELIVERY_FAILED: gettext_lazy("notification not delivered"),
}


@dataclass(frozen=True)
class Message:
    subject: Promise
    body: Promise
    personal: bool = True  # addresses the member by name (otherwise one text per language serves all)


# %(name)s is the recipient; every other placeholder comes from the event's context, written in
# the recipient's language (amounts as USDT, Jalali months, Persian digits in Persian).
MESSAGES: dict[str, Message] = {
    PAYMENT_RECEIVED: Message(
        gettext_lazy("Payment received for %(month)s"),
        gettext_lazy(
            "Dear %(name)s, your payment of %(amount)s USDT for %(month)s was received "
            "and is waiting for verification with Bitpin."
        ),
    ),
    PAYMENT_VERIFIED: Message(
        gettext_lazy("Payment verified for %(month)s"),
        gettext_lazy("Dear %(name)s, your payment of %(amount)s USDT for %(month)s was verified. Thank you."),
    ),
    PAYMENT_REJECTED: Message(
        gettext_lazy("Payment rejected for %(month)s"),
        gettext_lazy(
            "Dear %(name)s, your payment of %(amount)s USDT for %(month)s was rejected. "
            "Reason: %(reason)s\nYou can pay for the month again on your page: %(url)s"
        ),
    ),
    REMINDER: Message(
        # The wording of the reminders e-mailed before the outbox existed (their Persian is kept).
        gettext_lazy("%(fund)s: your payment for %(month)s"),
        gettext_lazy(
            "Dear %(name)s,\n\nYour membership fee for %(month)s has not been received yet. "
            "%(days)s days are left in the month. The minimum fee is %(fee)s USDT.\n\n%(fund)s"
        ),
    ),
    SEED_COMMITMENT: Message(
        gettext_lazy("The draw of %(month)s: seed committed"),
        gettext_lazy(
            "The random seed of the draw of %(month)s is committed: %(commitment)s\n"
            "Once the draw has run anyone can check the seed against it: %(url)s"
        ),
        personal=False,
    ),
    DRAW_RESULT: Message(
        gettext_lazy("The draw of %(month)s"),
        gettext_lazy(
            "The draw of %(month)s has run: %(winner)s receives a loan of %(amount)s USDT.\nThe whole table: %(url)s"
        ),
        personal=False,
    ),
    "draw_result_none": Message(
        gettext_lazy("The draw of %(month)s"),
        gettext_lazy("The draw of %(month)s has run: no one qualified for a loan.\nThe whole table: %(url)s"),
        personal=False,
    ),
    DRAW_CHOSEN: Message(
        gettext_lazy("You were chosen in the draw of %(month)s"),
        gettext_lazy(
            "Congratulations, %(name)s: you were chosen in the draw of %(month)s for a loan of %(amount)s USDT. "
            "It will be sent to you shortly; repayments of at least %(minimum)s USDT a month start "
            "the month after it is paid out."
        ),
    ),
    PAYOUT_VERIFIED: Message(
        gettext_lazy("Your loan was paid out"),
        gettext_lazy(
            "Dear %(name)s, the payout of your loan of %(amount)s USDT (draw of %(month)s) was verified. "
            "Repayments of at least %(minimum)s USDT a month start in %(first_month)s."
        ),
    ),
    REFUND_VERIFIED: Message(
        gettext_lazy("Your refund was paid"),
        gettext_lazy("Dear %(name)s, the refund of %(amount)s USDT to you was verified."),
    ),
    RECONCILIATION_DIFFERENCE: Message(
        gettext_lazy("Reconciliation found a difference"),
        gettext_lazy(
            "Reconciliation found a difference of %(amount)s USDT: the wallet holds %(wallet)s USDT, "
            "the ledger says %(expected)s USDT.\n%(url)s"
        ),
        personal=False,
    ),
    WORKER_STALLED: Message(
        gettext_lazy("The background worker is stalled"),
        gettext_lazy("The background worker seems stalled: %(detail)s\n%(url)s"),
        personal=False,
    ),
    PAYMENTS_PENDING_LONG: Message(
        gettext_lazy("Payments waiting for more than a day"),
        gettext_lazy(
            "%(count)s payments have been waiting for verification for more than a day "
            "(the oldest since %(oldest)s).\n%(url)s"
        ),
        personal=False,
    ),
    DELIVERY_FAILED: Message(
        gettext_lazy("A notification could not be delivered"),
        gettext_lazy(
            "A notification (%(event_label)s) to %(recipient)s by %(channel)s could not be delivered after "
            "%(attempts)s attempts: %(error)s\n%(url)s"
        ),
        personal=False,
    ),
}


def localize(value: Any, language: str) -> str:
    """One value of a message, written for ``language``: the same forms as the member page."""
    persian = language.startswith("fa")
    if isinstance(value, JalaliMonth):
        return value.label(language)
    if isinstance(value, Decimal):
        return format_usdt(value, persian=persian)
    if isinstance(value, dt.datetime):
        text = jalali_date(value)
        return to_persian_digits(text) if persian else text
    if isinstance(value, int) and not isinstance(value, bool):
        return to_persian_digits(str(value)) if persian else str(value)
    return str(value)


def render(
    event: str, language: str, context: dict[str, Any], name: str = "", config: FundConfig | None = None
) -> tuple[str, str]:
    """The subject and text of ``event`` for one recipient, in ``language``."""
    message = MESSAGES["draw_result_none" if event == DRAW_RESULT and not context.get("winner") else event]
    with translation.override(language):
        values = {key: localize(value, language) for key, value in context.items()}
        fund = str(config or FundConfig.load())  # the default name is shown in the reader's language
        values.update(name=name, fund=fund)
        subject, body = str(message.subject), str(message.body)
        # Every message names the fund: at the end, unless its wording places it itself.
        subject = subject % values if "%(fund)s" in subject else f"{fund}: {subject % values}"
        return subject, body % values if "%(fund)s" in body else f"{body % values}\n\n{fund}"


def page_url(name: str) -> str:
    """An absolute address on the site (messages are read outside it)."""
    return f"{settings.SITE_URL}{reverse(name)}"


# --- writing the outbox ----------------------------------------------------------------------------


def notify(
    *,
    event: str,
    key: object,
    member: User | None = None,
    members: Iterable[User] | None = None,
    **context: Any,
) -> None:
    """Write ``event`` to the outbox for ``member`` (or each of ``members``) on each of their channels.

    Call it inside the event's transaction. Idempotent per (event, key, member, channel). Never
    raises: a failure to write the notification is logged and leaves the event alone.
    """
    try:
        with transaction.atomic():  # a savepoint: our failure must not break the event's transaction
            if isinstance(members, QuerySet) and not MESSAGES[event].personal:
                to_send = _write_broadcast(event, str(key)[:80], members, context)
            else:
                recipients = [member] if member is not None else list(members or [])
                to_send = _write(event, str(key)[:80], recipients, context) if recipients else False
    except Exception:
        log.exception("the %s notification (%s) could not be written; the event stands", event, key)
        return
    if to_send:  # rows recorded but not sent (no channel) need no job
        queue_delivery()


def notify_operators(*, event: str, key: object, **context: Any) -> None:
    notify(event=event, key=key, members=operators(), **context)


def operators() -> list[User]:
    """Who runs the fund (fund.admin.roles.is_operator, as a query)."""
    return list(User.objects.filter(Q(is_main=True) | Q(is_superuser=True), is_active=True, is_staff=True))


def channels_of(recipients: list[User]) -> dict[int, list[str]]:
    """Each recipient's channels: e-mail when they have an address, each usable linked chat;
    minus the channels they turned off. One query, whatever the number of recipients."""
    many = len(recipients) > 500  # no huge IN lists: read every link instead (few members link twice)
    ids = [member.pk for member in recipients]
    links = ChatLink.objects.filter(chat_id__isnull=False, broken_at__isnull=True)
    opt_outs = ChannelOptOut.objects.all()
    if not many:
        links, opt_outs = links.filter(member_id__in=ids), opt_outs.filter(member_id__in=ids)
    linked: dict[int, list[str]] = defaultdict(list)
    off: set[tuple[int, str]] = set()
    # One round trip: each verification of a sweep asks this.
    is_link = Value(True, output_field=BooleanField())
    is_off = Value(False, output_field=BooleanField())
    # No ordering inside the union's parts (SQLite refuses it): the whole is ordered by channel.
    both = links.order_by().values_list("member_id", "channel", is_link).union(
        opt_outs.order_by().values_list("member_id", "channel", is_off), all=True
    )
    for member_id, channel, linking in both.order_by("channel"):
        if linking:
            linked[member_id].append(channel)
        else:
            off.add((member_id, channel))
    return {
        member.pk: [
            channel
            for channel in ([Channel.EMAIL] if member.email else []) + linked[member.pk]
            if (member.pk, channel) not in off
        ]
        for member in recipients
    }


def reachable(recipients: list[User]) -> set[int]:
    """The ids of the recipients who have at least one channel."""
    return {member_id for member_id, channels in channels_of(recipients).items() if channels}


def _write(event: str, key: str, recipients: list[User], context: dict[str, Any]) -> bool:
    """Write the rows; True when some are waiting to be sent."""
    channels = channels_of(recipients)
    configured = set(botapi.configured_channels())
    personal = MESSAGES[event].personal
    config = coalesce.remembered("fund-config", FundConfig.load)  # a sweep's messages share it
    texts: dict[tuple[str, str], tuple[str, str]] = {}
    rows = []
    for member in recipients:
        name = (member.get_full_name() or member.username) if personal else ""
        language = member.language or settings.LANGUAGE_CODE
        if (language, name) not in texts:
            texts[language, name] = render(event, language, context, name, config)
        subject, text = texts[language, name]
        row = {"event": event, "key": key, "member": member, "language": language, "subject": subject, "text": text}
        if not channels[member.pk]:
            error = _("The member has no channel: no e-mail address and no linked chat.")
            rows.append(Notification(**row, channel=Channel.NONE, status=NOT_SENT, last_error=error))
        for channel in channels[member.pk]:
            if channel in CHAT_CHANNELS and channel not in configured:
                error = _("The %(channel)s bot is not configured (no token).") % {"channel": Channel(channel).label}
                rows.append(Notification(**row, channel=channel, status=NOT_SENT, last_error=error))
            else:
                rows.append(Notification(**row, channel=channel))
    # ignore_conflicts: the unique (event, key, member, channel) makes a second firing a no-op.
    Notification.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return any(row.status == PENDING for row in rows)


def _write_broadcast(event: str, key: str, members: QuerySet[User], context: dict[str, Any]) -> bool:
    """The same rows as ``_write`` for a message that does not name its recipient (the draw's
    result to every member), written by the database: an INSERT … SELECT per language and channel,
    so a draw issues the same number of queries for 20 members and for 10,000."""
    config = FundConfig.load()
    configured = set(botapi.configured_channels())
    to_send = False
    for language in ("fa", "en"):
        subject, text = render(event, language, context, "", config)
        audience = members.filter(language="en") if language == "en" else members.exclude(language="en")
        reached = Q()
        for channel, recipients in _by_channel(audience).items():
            reached |= Q(pk__in=recipients.values("pk"))
            status, error = PENDING, ""
            if channel in CHAT_CHANNELS and channel not in configured:
                status = NOT_SENT
                error = _("The %(channel)s bot is not configured (no token).") % {"channel": Channel(channel).label}
            written = _insert_select(recipients, event, key, channel, language, subject, text, status, error)
            to_send = to_send or (written > 0 and status == PENDING)
        nobody = audience.exclude(reached)
        error = _("The member has no channel: no e-mail address and no linked chat.")
        _insert_select(nobody, event, key, Channel.NONE, language, subject, text, NOT_SENT, error)
    return to_send


def _by_channel(members: QuerySet[User]) -> dict[str, QuerySet[User]]:
    """Of ``members``, who is reached on each channel (the rule of ``channels_of``, as queries)."""

    def off(channel: str) -> Exists:
        return Exists(ChannelOptOut.objects.filter(member=OuterRef("pk"), channel=channel))

    def linked(channel: str) -> Exists:
        usable = ChatLink.objects.filter(member=OuterRef("pk"), channel=channel, chat_id__isnull=False)
        return Exists(usable.filter(broken_at__isnull=True))

    result = {Channel.EMAIL: members.exclude(email="").filter(~off(Channel.EMAIL))}
    for channel in CHAT_CHANNELS:
        result[channel] = members.filter(linked(channel)).filter(~off(channel))
    return result


def _insert_select(recipients: QuerySet[User], event: str, key: str, channel: str, *values: str) -> int:
    language, subject, text, status, error = values
    select, params = recipients.values("pk").query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(name)
        for name in (
            "event", "key", "member_id", "channel", "language", "subject", "text",
            "status", "attempts", "last_error", "created_at",
        )
    )  # fmt: skip
    created = Notification._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    table, users = quote(Notification._meta.db_table), quote(User._meta.db_table)
    # ON CONFLICT: the unique (event, key, member, channel) makes a second firing a no-op.
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT %s, %s, u.id, %s, %s, %s, %s, %s, 0, %s, %s "
        f"FROM {users} u WHERE u.id IN ({select}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [event, key, channel, language, subject, text, status, error, created, *params])
        return cursor.rowcount


def queue_delivery() -> None:
    """Queue the delivery job after the commit; robust: a broker failure never reaches the event."""
    from fund import tasks

    def deliver() -> None:
        async_task(tasks.DELIVER_NOTIFICATIONS, group="notifications")

    # One job delivers every waiting row: a sweep deciding many payments queues it once a second.
    coalesce.after_commit_once("deliver-notifications", deliver, robust=True)


# --- one line for each event's service -------------------------------------------------------------


def payment_received(payment: Payment) -> None:
    notify(event=PAYMENT_RECEIVED, key=payment.pk, member=payment.member, month=payment.month, amount=payment.total)


def payment_verified(payment: Payment) -> None:
    notify(event=PAYMENT_VERIFIED, key=payment.pk, member=payment.member, month=payment.month, amount=payment.total)


def payment_rejected(payment: Payment) -> None:
    notify(
        event=PAYMENT_REJECTED,
        key=payment.pk,
        member=payment.member,
        month=payment.month,
        amount=payment.total,
        reason=payment.note,
        url=page_url("member-home"),
    )


def draw_result(draw: Draw) -> None:
    """The month's result for every active member, and "you were chosen" for the winner."""
    winner = draw.winner
    notify(
        event=DRAW_RESULT,
        key=draw.month,
        members=User.objects.members(),
        month=draw.month,
        winner=(winner.get_full_name() or winner.username) if winner else "",
        amount=draw.amount,
        url=page_url("member-draw-table"),
    )
    if winner is not None and draw.loan is not None:
        notify(
            event=DRAW_CHOSEN,
            key=draw.month,
            member=winner,
            month=draw.month,
            amount=draw.amount,
            minimum=draw.loan.monthly_minimum,
        )


def seed_committed(*, month: JalaliMonth, commitment: str) -> None:
    """For the ``proof`` work: the month's seed commitment, once published, to every member."""
    notify(
        event=SEED_COMMITMENT,
        key=month,
        members=User.objects.members(),
        month=month,
        commitment=commitment,
        url=page_url("member-draw-table"),
    )


def payout_verified(payout: Payout) -> None:
    """A verified payout: "your loan was paid out", or for a leaving member "your refund was paid"."""
    if payout.kind == Payout.Kind.LOAN and payout.loan is not None:
        notify(
            event=PAYOUT_VERIFIED,
            key=payout.pk,
            member=payout.member,
            amount=payout.amount,
            month=payout.loan.month,
            minimum=payout.loan.monthly_minimum,
            first_month=JalaliMonth.current().next(),  # paid out this month (fund.loans.mark_paid_out)
        )
    else:
        notify(event=REFUND_VERIFIED, key=payout.pk, member=payout.member, amount=payout.amount)


def reconciliation_flagged(reading: Reconciliation) -> None:
    """Operators hear of a wallet reading whose difference is beyond the tolerance."""
    if reading.flagged:
        notify_operators(
            event=RECONCILIATION_DIFFERENCE,
            key=reading.pk,
            amount=reading.difference,
            wallet=reading.wallet_balance,
            expected=reading.expected_balance,
            url=page_url("admin:fund_reconciliation_changelist"),
        )


def worker_stalled(*, key: object, detail: str) -> None:
    notify_operators(event=WORKER_STALLED, key=key, detail=detail, url=page_url("admin:index"))


PENDING_TOO_LONG = dt.timedelta(days=1)


def warn_about_pending_payments(now: dt.datetime | None = None) -> int:
    """Tell operators, once a day at most, how many payments wait for verification for over a day."""
    now = now or timezone.now()
    waiting = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=now - PENDING_TOO_LONG)
    count = waiting.count()
    if count:
        oldest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
        day = jalali_date(now, with_time=False)
        url = page_url("admin:fund_payment_changelist") + "?status__exact=pending"
        notify_operators(event=PAYMENTS_PENDING_LONG, key=day, count=count, oldest=oldest, url=url)
    return count


# --- delivering --------------------------------------------------------------------------------------

MAX_ATTEMPTS = 8
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=1)
# Claimed rows are the claimer's for this long; a crashed delivery is picked up again after it.
LEASE = dt.timedelta(minutes=5)
BATCH = 50
# The job stops claiming after this long (django-q's timeout is 120 s); the schedule continues.
TIME_BUDGET_SECONDS = 60.0


def retry_delay(attempts: int) -> dt.timedelta:
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def deliver_due(time_budget: float = TIME_BUDGET_SECONDS) -> int:
    """Send every notification that is due, batch by batch. Returns how many were sent.

    Safe to run twice at once or again after a crash: rows are claimed (leased) before they are
    sent, so a redelivered job finds them leased or sent and sends nothing twice.
    """
    deadline = time.monotonic() + time_budget
    delivery = _Delivery()
    try:
        while time.monotonic() < deadline:
            batch = _claim()
            if not batch:
                break
            for notification in batch:
                delivery.deliver(notification)
    finally:
        delivery.close()
    return delivery.sent


def _claim() -> list[Notification]:
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    with transaction.atomic():
        # skip_locked: two delivery jobs at once split the rows instead of sending them twice.
        queryset = Notification.objects.select_for_update(skip_locked=True, of=("self",)).filter(due, status=PENDING)
        rows = list(queryset.select_related("member").order_by("pk")[:BATCH])
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=now + LEASE)
    return rows


class _Delivery:
    """One run of the delivery job: a Bot API client per channel, and channels paused by a 429."""

    def __init__(self) -> None:
        self.sent = 0
        self._clients: dict[str, botapi.BotClient] = {}
        self._paused: dict[str, dt.datetime] = {}

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def deliver(self, notification: Notification) -> None:
        try:
            if notification.channel == Channel.EMAIL:
                self._email(notification)
            else:
                self._chat(notification)
        except _Final as final:
            _finish(notification, NOT_SENT if final.not_sent else FAILED, str(final))
        except botapi.ChatGone as gone:
            _break_link(notification, str(gone))
            _finish(notification, FAILED, str(gone))
        except botapi.RetryLater as error:
            self._retry(notification, str(error), error.retry_after)
        except botapi.BotRefused as refused:
            _give_up(notification, str(refused))
        except (OSError, smtplib.SMTPException) as error:
            self._retry(notification, f"{type(error).__name__}: {error}", None)
        except _Skip:
            pass
        else:
            _finish(notification, SENT, "")
            self.sent += 1

    def _email(self, notification: Notification) -> None:
        if not notification.member.email:
            raise _Final(_("The member has no e-mail address any more."))
        send_mail(notification.subject, notification.text, None, [notification.member.email])

    def _chat(self, notification: Notification) -> None:
        channel = notification.channel
        config = botapi.bot_config(channel)
        if config is None:
            raise _Final(_("The %(channel)s bot is not configured (no token).") % {"channel": channel}, not_sent=True)
        link = ChatLink.objects.filter(member_id=notification.member_id, channel=channel).first()
        if link is None or not link.is_usable:
            raise _Final(_("The member's chat is no longer linked."))
        paused_until = self._paused.get(channel)
        if paused_until is not None and paused_until > timezone.now():
            # The bot was told to slow down a moment ago: wait with the rest, without an attempt.
            Notification.objects.filter(pk=notification.pk, status=PENDING).update(next_attempt_at=paused_until)
            raise _Skip
        if channel not in self._clients:
            self._clients[channel] = botapi.BotClient(config)
        self._clients[channel].send_message(link.chat_id, notification.text)

    def _retry(self, notification: Notification, error: str, retry_after: float | None) -> None:
        attempts = notification.attempts + 1
        if retry_after is not None:
            # 429: the API says when; that is not a failure of the message, so it never gives up.
            when = timezone.now() + dt.timedelta(seconds=retry_after)
            self._paused[notification.channel] = when
        elif attempts >= MAX_ATTEMPTS:
            _give_up(notification, error)
            return
        else:
            when = timezone.now() + retry_delay(attempts)
        Notification.objects.filter(pk=notification.pk, status=PENDING).update(
            attempts=F("attempts") + 1, last_error=error[:2000], next_attempt_at=when
        )


class _Final(Exception):
    def __init__(self, message: str, not_sent: bool = False) -> None:
        super().__init__(message)
        self.not_sent = not_sent


class _Skip(Exception):
    pass


def _finish(notification: Notification, status: str, error: str) -> None:
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk, status=PENDING).update(
        status=status,
        attempts=F("attempts") + (0 if status == NOT_SENT else 1),
        last_error=error[:2000],
        next_attempt_at=None,
        sent_at=now if status == SENT else None,
    )


def _give_up(notification: Notification, error: str) -> None:
    _finish(notification, FAILED, error)
    if notification.event != DELIVERY_FAILED:  # never a loop of failures about failures
        notify_operators(
            event=DELIVERY_FAILED,
            key=notification.pk,
            event_label=EVENT_LABELS.get(notification.event, notification.event),
            recipient=notification.member.username,
            channel=Channel(notification.channel).label,
            attempts=notification.attempts + 1,
            error=error,
            url=page_url("admin:fund_notification_changelist"),
        )


def _break_link(notification: Notification, reason: str) -> None:
    ChatLink.objects.filter(
        member_id=notification.member_id, channel=notification.channel, broken_at__isnull=True
    ).update(broken_at=timezone.now(), broken_reason=reason[:300])


def resend(notification_ids: list[int]) -> int:
    """The admin's "send again": the rows go back to the queue as new; returns how many."""
    count = (
        Notification.objects.filter(pk__in=notification_ids)
        .exclude(channel=Channel.NONE)
        .update(status=PENDING, attempts=0, next_attempt_at=None, last_error="", sent_at=None)
    )
    if count:
        queue_delivery()
    return count
