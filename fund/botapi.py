"""The one Bot API client, for Telegram and Bale alike (Bale's bot API follows Telegram's).

``POST {base}/bot{token}/{method}`` with a JSON body; the answer is ``{"ok": true, "result": …}`` or
``{"ok": false, "error_code": …, "description": …, "parameters": {"retry_after": N}}``. Every failure
falls in one of three classes, which the delivery worker acts on:

- RetryLater: the network, a 5xx or a 429 (with the API's ``retry_after`` in seconds): try again;
- ChatGone: 403 (the member blocked the bot) or 400 "chat not found": this chat is lost for good;
- BotRefused: any other refusal (a message the API will never take): give up on this message.

Nothing here touches the database. Base URL, token and the rest come from the settings per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

CHANNELS = ("telegram", "bale")
# Deep links that open a chat with the bot and send ``/start <token>``.
DEEP_LINKS = {"telegram": "https://t.me/{username}?start={token}", "bale": "https://ble.ir/{username}?start={token}"}


class BotError(Exception):
    """A Bot API call that did not succeed; ``str()`` says why (kept on the notification)."""


class RetryLater(BotError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatGone(BotError):
    """The bot may no longer write to this chat (blocked, deleted, never existed)."""


class BotRefused(BotError):
    """The API refused this request for a reason that will not pass."""


@dataclass(frozen=True)
class BotConfig:
    channel: str
    base_url: str
    token: str
    username: str
    webhook_secret: str

    @property
    def polling(self) -> bool:
        """Updates are fetched by the polling job unless a webhook (with its secret) is configured."""
        return not self.webhook_secret

    def deep_link(self, token: str) -> str:
        return DEEP_LINKS[self.channel].format(username=self.username, token=token)


def bot_config(channel: str) -> BotConfig | None:
    """The channel's configuration, or None when it has no bot token (the channel is off)."""
    if channel not in CHANNELS:
        return None
    prefix = channel.upper()
    token = getattr(settings, f"{prefix}_BOT_TOKEN", "")
    if not token:
        return None
    return BotConfig(
        channel=channel,
        base_url=getattr(settings, f"{prefix}_API_BASE_URL").rstrip("/"),
        token=token,
        username=getattr(settings, f"{prefix}_BOT_USERNAME", ""),
        webhook_secret=getattr(settings, f"{prefix}_WEBHOOK_SECRET", ""),
    )


def configured_channels() -> list[str]:
    return [channel for channel in CHANNELS if bot_config(channel) is not None]


class BotClient:
    def __init__(self, config: BotConfig, *, read_timeout: float | None = None) -> None:
        self.config = config
        timeout = httpx.Timeout(read_timeout or settings.BOT_READ_TIMEOUT, connect=settings.BOT_CONNECT_TIMEOUT)
        self._http = httpx.Client(base_url=f"{config.base_url}/bot{config.token}/", timeout=timeout)

    def __enter__(self) -> BotClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, **params: Any) -> Any:
        try:
            response = self._http.post(method, json=params)
        except httpx.HTTPError as error:
            raise RetryLater(f"{self.config.channel} Bot API unreachable: {type(error).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("ok"):
            return body.get("result")
        raise _error(response.status_code, body)

    def send_message(self, chat_id: int, text: str) -> Any:
        # 4096 characters is the API's limit for one message; ours are far shorter.
        return self.call("sendMessage", chat_id=chat_id, text=text[:4096], disable_web_page_preview=True)

    def get_updates(self, offset: int, timeout: int = 0) -> list[dict[str, Any]]:
        result = self.call("getUpdates", offset=offset, timeout=timeout, allowed_updates=["message"])
        return [update for update in result or [] if isinstance(update, dict)]

    def set_webhook(self, url: str, secret_token: str) -> Any:
        return self.call("setWebhook", url=url, secret_token=secret_token, allowed_updates=["message"])

    def delete_webhook(self) -> Any:
        return self.call("deleteWebhook")


def _error(status: int, body: dict[str, Any]) -> BotError:
    description = str(body.get("description") or f"HTTP {status}")[:300]
    code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
    message = f"{code}: {description}"
    if code == 429 or status == 429:
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        retry_after = parameters.get("retry_after")
        return RetryLater(message, float(retry_after) if isinstance(retry_after, int | float) else None)
    if code == 403 or (code == 400 and "chat not found" in description.lower()):
        return ChatGone(message)
    if status >= 500 or code >= 500:
        return RetryLater(message)
    return BotRefused(message)
