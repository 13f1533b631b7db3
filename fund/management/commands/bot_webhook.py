"""Register (or remove) a bot's webhook with its Bot API: ``bot_webhook telegram --url https://fund.example.org``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from fund import botapi


class Command(BaseCommand):
    help = (
        "Point a bot's updates at this site's webhook (needs <CHANNEL>_WEBHOOK_SECRET), "
        "or with --delete go back to polling."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("channel", choices=botapi.CHANNELS)
        parser.add_argument("--url", help="The site's public address, e.g. https://fund.example.org")
        parser.add_argument("--delete", action="store_true", help="Remove the webhook (then unset the secret).")

    def handle(self, *args: Any, channel: str, url: str | None, delete: bool, **options: Any) -> None:
        config = botapi.bot_config(channel)
        if config is None:
            raise CommandError(f"{channel.upper()}_BOT_TOKEN is not set.")
        try:
            with botapi.BotClient(config) as client:
                if delete:
                    client.delete_webhook()
                    self.stdout.write(f"{channel}: webhook removed; unset {channel.upper()}_WEBHOOK_SECRET to poll.")
                    return
                if not url or not url.startswith("https://"):
                    raise CommandError("Give the site's public https:// address with --url.")
                if not config.webhook_secret:
                    raise CommandError(f"Set {channel.upper()}_WEBHOOK_SECRET (1–256 of A-Z a-z 0-9 _ -) first.")
                address = url.rstrip("/") + reverse("bot-webhook", args=(channel, config.webhook_secret))
                client.set_webhook(address, config.webhook_secret)
        except botapi.BotError as error:
            raise CommandError(f"the {channel} Bot API said: {error}") from None
        self.stdout.write(f"{channel}: updates now go to {url.rstrip('/')}/bot/{channel}/<secret>/")
