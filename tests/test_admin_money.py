"""The back office's money pages: recording a payout, deciding it, reading the wallet, a member leaving."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from fund.models import Loan, Payout, Reconciliation, User
from fund.payouts import record_loan_payout
from tests.conftest import THIS_MONTH, messages_of

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def granted(history, member):
    history.pay_months(member, THIS_MONTH - 20, 21)
    return history.loan(member, THIS_MONTH, 300, state=Loan.State.AWAITING_PAYOUT)


def test_the_payout_page_asks_first_and_records_only_on_a_confirmed_post(web, granted):
    url = reverse("admin:fund_loan_record_payout", args=(granted.pk,))
    page = web.get(url).content.decode()
    assert "Did you send 300.00 USDT to Alice from the fund&#x27;s Bitpin wallet?" in page
    assert "Bitpin transfer id" in page and 'value="300.00"' in page
    assert not Payout.objects.exists()
    done = web.post(url, {"confirmed": "yes", "transfer_id": "tr-1", "amount": "300"}, follow=True)
    payout = Payout.objects.get()
    assert (payout.loan, payout.transfer_id, payout.status) == (granted, "tr-1", "pending")
    assert messages_of(done) == [
        "The payout was recorded; it is checked with Bitpin now and the loan becomes active once verified."
    ]


def test_a_wrong_payout_amount_is_refused_on_the_page(web, granted):
    url = reverse("admin:fund_loan_record_payout", args=(granted.pk,))
    page = web.post(url, {"confirmed": "yes", "transfer_id": "tr-1", "amount": "250"}).content.decode()
    assert "The amount sent must be the loan&#x27;s amount, 300.00 USDT." in page
    assert not Payout.objects.exists()


def test_an_active_loan_offers_no_payout_button_and_refuses_the_address(web, history, member):
    loan = history.loan(member, THIS_MONTH - 2, 100)
    url = reverse("admin:fund_loan_record_payout", args=(loan.pk,))
    assert url not in web.get(reverse("admin:fund_loan_change", args=(loan.pk,))).content.decode()
    web.post(url, {"confirmed": "yes", "transfer_id": "tr-1", "amount": "100"})
    assert not Payout.objects.exists()


def test_the_operator_rejects_a_payout_with_a_note_and_the_loan_keeps_waiting(web, granted, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    url = reverse("admin:fund_payout_reject_detail", args=(payout.pk,))
    assert "The loan keeps waiting for its payout" in web.get(url).content.decode()
    web.post(url, {"confirmed": "yes", "note": "sent to the wrong address"})
    assert Payout.objects.get().status == "rejected"
    assert Loan.objects.get(pk=granted.pk).state == Loan.State.AWAITING_PAYOUT


def test_the_operator_verifies_a_payout_by_hand_and_the_loan_becomes_active(web, granted, operator):
    payout = record_loan_payout(loan=granted, transfer_id="tr-1", amount=Decimal(300), by=operator)
    url = reverse("admin:fund_payout_verify_by_hand_detail", args=(payout.pk,))
    web.post(url, {"confirmed": "yes", "note": "seen in the exchange"})
    assert Loan.objects.get(pk=granted.pk).state == Loan.State.ACTIVE
    page = web.get(reverse("admin:fund_payout_changelist")).content.decode()
    assert "tr-1" in page and "seen in the exchange" in page


def test_reading_the_wallet_without_a_key_takes_the_typed_balance(web, granted, settings):
    settings.BITPIN_API_KEY = ""
    url = reverse("admin:fund_reconciliation_read_wallet")
    page = web.get(url).content.decode()
    assert "No Bitpin key is configured" in page and "The ledger expects 420.00 USDT" in page
    done = web.post(url, {"confirmed": "yes", "balance": "400"}, follow=True)
    reading = Reconciliation.objects.get()
    assert (reading.wallet_balance, reading.difference, reading.flagged) == (Decimal(400), Decimal(-20), True)
    assert messages_of(done) == [
        "The wallet holds 400.00 USDT; the ledger says 420.00 USDT: a difference of -20.00 USDT."
    ]


def test_reading_the_wallet_with_a_key_asks_bitpin(web, granted, fake_bitpin):
    fake_bitpin.set_wallet("420")
    web.post(reverse("admin:fund_reconciliation_read_wallet"), {"confirmed": "yes", "balance": ""})
    reading = Reconciliation.objects.get()
    assert (reading.source, reading.flagged) == ("bitpin", False)


def test_the_dashboard_shows_the_last_reading_and_loans_awaiting_payout(web, granted, settings):
    settings.BITPIN_API_KEY = ""
    web.post(reverse("admin:fund_reconciliation_read_wallet"), {"confirmed": "yes", "balance": "400"})
    page = web.get(reverse("admin:index")).content.decode()
    card = page.split('id="reconciliation-card"')[1].split('id="awaiting-payouts"')[0]
    assert "400.00" in card and "420.00" in card and "-20.00" in card
    assert "Beyond the tolerance of 0.01 USDT" in card
    awaiting = page.split('id="awaiting-payouts"')[1].split('id="leaving-members"')[0]
    assert "Alice" in awaiting and "waiting 0 days" in awaiting


# --- a member leaving -----------------------------------------------------------------------------------


@pytest.fixture
def saver(history):
    sara = history.member("sara", first_name="Sara")
    history.pay_months(sara, THIS_MONTH - 6, 6)
    history.pay_months(history.member("omid"), THIS_MONTH - 6, 6)
    return sara


def test_the_leaving_page_shows_the_refund_and_that_fund_cash_covers_it(web, saver):
    url = reverse("admin:fund_user_leave_fund", args=(saver.pk,))
    page = web.get(url).content.decode()
    assert "Does Sara leave the fund?" in page
    assert "Refund: 120.00 USDT (their balance)." in page
    assert "Fund cash: 240.00 USDT, which covers the refund." in page
    assert User.objects.get(pk=saver.pk).leaving_since is None
    web.post(url, {"confirmed": "yes", "transfer_id": "tr-9"})
    assert User.objects.get(pk=saver.pk).is_leaving
    assert Payout.objects.get().amount == Decimal(120)


def test_leaving_with_too_little_cash_is_refused_in_words(web, saver, history):
    history.loan(history.member("borrower"), THIS_MONTH - 1, 200)
    done = web.get(reverse("admin:fund_user_leave_fund", args=(saver.pk,)), follow=True)
    assert messages_of(done) == [
        "The refund of 120.00 USDT is more than the fund cash of 40.00 USDT: 80.00 USDT is missing."
    ]
    assert User.objects.get(pk=saver.pk).leaving_since is None


def test_the_statement_of_a_member_who_left_shows_the_refund(web, saver, operator):
    from fund.payouts import mark_payout_verified, record_leaving

    refund = record_leaving(member=saver, transfer_id="tr-9", by=operator)
    mark_payout_verified(payout=refund, by=operator, note="seen")
    page = web.get(reverse("admin:fund_user_statement_page", args=(saver.pk,))).content.decode()
    assert "refund" in page
    assert "Left the fund" in web.get(reverse("admin:fund_user_change", args=(saver.pk,))).content.decode()


# --- the member page --------------------------------------------------------------------------------------


def test_the_member_page_shows_the_latest_wallet_reading(client, saver, operator, settings):
    from fund.reconciliation import take_reading

    settings.BITPIN_API_KEY = ""
    take_reading(typed_balance=Decimal("240"), by=operator)
    client.force_login(saver)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(reverse("member-home")).content.decode()
    line = page.split('id="wallet-check"')[1].split("</p>")[0]
    assert (
        "The fund's wallet held 240.00 USDT on 1404/09/10" in line
        and "the ledger says 240.00 USDT: they match." in line
    )


def test_a_leaving_member_sees_it_and_gets_no_payment_form(client, saver, operator):
    from fund.payouts import record_leaving

    record_leaving(member=saver, transfer_id="tr-9", by=operator)
    client.force_login(User.objects.get(pk=saver.pk))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(reverse("member-home")).content.decode()
    assert "You are leaving the fund" in page
    assert 'id="payment-form"' not in page


def test_a_winner_sees_the_loan_awaiting_payout(client, granted):
    client.force_login(granted.member)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get(reverse("member-home")).content.decode()
    assert "awaiting payout" in page.split('id="awaiting-payout"')[1].split("</div>")[0]
