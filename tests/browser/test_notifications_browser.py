"""The member page's notification section in a real browser, in Persian on a phone."""

from __future__ import annotations

import pytest

from fund import bot
from fund.models import ChatLink, FundConfig
from tests.fixtures.browser import page_overflows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_connects_telegram_from_a_phone(live_server, new_page, log_in, screenshot, member, fake_bot):
    FundConfig.load()
    page = new_page(width=390, height=844, language="fa")
    log_in(page, "alice", "alice-pass-1404")
    page.locator("#chat-telegram button[type=submit]").first.click()
    page.wait_for_load_state()
    token = ChatLink.objects.get(member=member, channel="telegram").start_token
    link = page.locator("#deep-link-telegram")
    assert link.get_attribute("href") == f"https://t.me/saghat_telegram_bot?start={token}"
    screenshot(page, "notifications-fa-phone", selector="#notifications")
    assert not page_overflows(page)

    bot.handle_update("telegram", {"message": {"chat": {"id": 5, "type": "private"}, "text": f"/start {token}"}})
    page.reload()
    assert page.locator("#chat-telegram form").count() == 2  # link another chat, unlink
