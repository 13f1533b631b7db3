"""The member page's notification section (connect Telegram/Bale, channels, language) and the bots' webhook.

Thin, like fund.views: every write calls a service of fund.bot; the member is always ``request.user``.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fund import bot, botapi
from fund.models import CHAT_CHANNELS, Channel, ChannelOptOut, ChatLink, User

SECTION = "#notifications"


@dataclass(frozen=True)
class ChatChoice:
    channel: str
    label: str
    configured: bool
    link: ChatLink | None
    deep_link: str  # the one-time link while its token is valid, "" otherwise
    enabled: bool
    start_command: str = ""  # what to send the bot by hand when no bot user name is configured

    @property
    def linked(self) -> bool:
        return self.link is not None and self.link.is_linked

    @property
    def broken(self) -> bool:
        return self.linked and self.link.broken_at is not None


@dataclass(frozen=True)
class NotificationSettings:
    email: str
    email_enabled: bool
    chats: list[ChatChoice]
    language: str


def notification_settings(member: User) -> NotificationSettings:
    """What the member page's notification section shows: two queries."""
    links = {link.channel: link for link in ChatLink.objects.filter(member=member)}
    off = set(ChannelOptOut.objects.filter(member=member).values_list("channel", flat=True))
    now = timezone.now()
    chats = []
    for channel in CHAT_CHANNELS:
        config = botapi.bot_config(channel)
        link = links.get(channel)
        token_valid = link is not None and link.start_token and link.token_expires_at and link.token_expires_at > now
        chats.append(
            ChatChoice(
                channel=channel,
                label=str(Channel(channel).label),
                configured=config is not None,
                link=link,
                deep_link=config.deep_link(link.start_token) if config and config.username and token_valid else "",
                enabled=channel not in off,
                start_command=f"/start {link.start_token}" if config and not config.username and token_valid else "",
            )
        )
    return NotificationSettings(
        email=member.email, email_enabled=Channel.EMAIL not in off, chats=chats, language=member.language
    )


def _home() -> HttpResponse:
    return redirect(f"{redirect('member-home').url}{SECTION}")


def _chat_channel(request: HttpRequest) -> str | None:
    channel = request.POST.get("channel", "")
    if channel not in CHAT_CHANNELS or botapi.bot_config(channel) is None:
        messages.error(request, _("That messenger is not available."))
        return None
    return channel


@login_required
@require_POST
def connect_chat(request: HttpRequest) -> HttpResponse:
    channel = _chat_channel(request)
    if channel is not None:
        bot.start_link(member=request.user, channel=channel)
        messages.success(request, _("Open the link below on the device where you use the messenger, and press Start."))
    return _home()


@login_required
@require_POST
def unlink_chat(request: HttpRequest) -> HttpResponse:
    channel = request.POST.get("channel", "")
    if channel in CHAT_CHANNELS and bot.unlink(member=request.user, channel=channel):
        messages.success(request, _("The chat was unlinked: nothing will be sent there any more."))
    return _home()


@login_required
@require_POST
def save_notification_choices(request: HttpRequest) -> HttpResponse:
    language = request.POST.get("language", "")
    if language not in bot.LANGUAGES:
        messages.error(request, _("Choose Persian or English."))
        return _home()
    member = request.user
    bot.choose_language(member=member, language=language)
    for channel in (Channel.EMAIL, *CHAT_CHANNELS):
        bot.choose_channel(member=member, channel=channel, enabled=request.POST.get(channel) == "on")
    messages.success(request, _("Your notification choices were saved."))
    return _home()


@csrf_exempt
@require_POST
def bot_webhook(request: HttpRequest, channel: str, secret: str) -> HttpResponse:
    """Updates pushed by the Bot API. The secret is in the address (what Bale can do) and, for
    Telegram, also in the X-Telegram-Bot-Api-Secret-Token header that setWebhook's secret_token adds."""
    config = botapi.bot_config(channel)
    if config is None or not config.webhook_secret:
        raise Http404
    header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
    expected = config.webhook_secret.encode()
    header_needed = channel == "telegram" or header is not None
    if not hmac.compare_digest(secret.encode(), expected) or (
        header_needed and not hmac.compare_digest((header or "").encode(), expected)
    ):
        return HttpResponseForbidden("wrong secret")
    try:
        update = json.loads(request.body)
    except ValueError:
        return JsonResponse({"ok": False}, status=400)
    bot.handle_update(channel, update)
    return JsonResponse({"ok": True})
