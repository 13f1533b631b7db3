"""The money's last mile in a real browser, in Persian and English: the payout confirmation, the
wallet card on the dashboard and a leaving member's statement. Screenshots go to screenshots/."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fund import draw
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Payout, User
from fund.payouts import mark_payout_verified, record_leaving
from fund.reconciliation import take_reading
from tests.fixtures.history import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def fund(db, settings) -> dict:
    """Three members with six months of history; this month's draw gave Alice a loan awaiting its
    payout; Sara left and was refunded; the wallet was read and is 5 USDT short."""
    settings.BITPIN_API_KEY = ""
    FundConfig.load()
    history = History()
    now = JalaliMonth.current()
    operator = User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    alice = history.member("alice", request=100, first_name="Alice", last_name="Karimi")
    bob = history.member("bob", first_name="Bob", last_name="Ahmadi")
    sara = history.member("sara", first_name="Sara", last_name="Rezaei")
    for person in (alice, bob, sara):
        history.pay_months(person, now - 6, 6, fee=25)
    refund = record_leaving(member=sara, transfer_id="tr-sara-refund", by=operator)
    mark_payout_verified(payout=refund, by=operator, note="seen in the exchange")
    for person in (alice, bob):
        history.pay(person, now, 25)
    won = draw.run_draw(month=now, triggered_by="operator")
    take_reading(typed_balance=Decimal("295"), by=operator)
    return {"loan": won.loan, "sara": sara}


@pytest.mark.parametrize("language", ["fa", "en"])
def test_the_operator_records_a_payout_reads_the_wallet_card_and_a_leaving_members_statement(
    language, fund, new_page, log_in, screenshot
):
    page = new_page(**DESKTOP, language=language)
    log_in(page, "operator", "operator-pass-1404", next="/admin/")
    card = page.locator("#reconciliation-card")
    assert card.count() == 1
    assert page.locator("#awaiting-payouts").inner_text().count("Alice") == 1
    screenshot(page, f"money-dashboard-{language}")
    screenshot(page, f"money-wallet-card-{language}", selector="#reconciliation-card")

    page.goto(f"/admin/fund/loan/{fund['loan'].pk}/record-payout/")
    assert page.locator("#confirm-form input[name=transfer_id]").count() == 1
    screenshot(page, f"money-payout-confirmation-{language}")
    page.fill("#confirm-form input[name=transfer_id]", f"tr-alice-{language}")
    with page.expect_navigation():
        page.click("#confirm-form button[type=submit]")
    assert Payout.objects.filter(loan=fund["loan"], status="pending").count() == 1

    page.goto(f"/admin/fund/user/{fund['sara'].pk}/statement/")
    assert page.locator("#statement-left").count() == 1
    screenshot(page, f"money-left-member-statement-{language}")
