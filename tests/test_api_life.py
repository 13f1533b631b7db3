"""The same monthly life driven only through the JSON API and only through the member page ends
in the same database: the API is another door to the same services, not a second set of rules."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from fund import payouts
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, Payout, User
from tests.conftest import THIS_MONTH
from tests.fixtures.history import History

MONTHS = [THIS_MONTH, THIS_MONTH + 1, THIS_MONTH + 2]


def set_month(monkeypatch, month: JalaliMonth) -> None:
    moment = month.starts_at() + dt.timedelta(days=9, hours=12)
    monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))


def lay_down_the_past() -> tuple[User, User]:
    """Alice and Bob have paid the three months before; Alice asks for 40 USDT, Bob for nothing."""
    history = History()
    alice = history.member("alice", request=40)
    bob = history.member("bob")
    for person in (alice, bob):
        history.pay_months(person, THIS_MONTH - 3, 3)
    return alice, bob


class ThroughTheApi:
    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}

    def log_in(self, username: str) -> None:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        body = json.dumps({"username": username, "password": f"{username}-pass-1404"})
        token = client.post("/api/auth/login", body, content_type="application/json").json()["access_token"]
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        self.clients[username] = client

    def _send(self, username: str, method: str, path: str, body: dict | None = None) -> dict:
        send = getattr(self.clients[username], method)
        response = send(f"/api{path}", json.dumps(body or {}), content_type="application/json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    def pay(self, username: str, bitpin_id: str, repayment: str | None = None) -> None:
        body = {"membership_fee": "20", "bitpin_payment_id": bitpin_id}
        if repayment is not None:
            body["loan"] = repayment
        self._send(username, "post", "/payments/pay", body)

    def start_draw(self, username: str) -> None:
        assert self._send(username, "post", "/loans/start")["loan"]["username"] == "alice"

    def ask_for(self, username: str, amount: str) -> None:
        self._send(username, "patch", "/auth/me/loan-request", {"loan_request_amount": amount})


class ThroughThePage:
    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}

    def log_in(self, username: str) -> None:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(User.objects.get(username=username))
        self.clients[username] = client

    def _post(self, username: str, name: str, data: dict) -> None:
        response = self.clients[username].post(reverse(name), data)
        assert response.status_code == 302, response.content.decode()[:2000]

    def pay(self, username: str, bitpin_id: str, repayment: str | None = None) -> None:
        data = {"fee": "20", "bitpin_id": bitpin_id}
        if repayment is not None:
            data["repayment"] = repayment
        self._post(username, "member-pay", data)

    def start_draw(self, username: str) -> None:
        self._post(username, "member-run-draw", {})  # queued; the job runs here (sync)

    def ask_for(self, username: str, amount: str) -> None:
        self._post(username, "member-loan-request", {"amount": amount})


def live(door, monkeypatch, capture) -> None:
    """Three months: everyone pays, the draw picks Alice, she repays her loan in two instalments."""
    door.log_in("alice")
    door.log_in("bob")
    for number, month in enumerate(MONTHS):
        set_month(monkeypatch, month)
        repayment = "20" if number else None
        with capture(execute=True):  # the Bitpin check (no key: verified at once) runs as the worker would
            door.pay("alice", f"alice-{month}", repayment)
            door.pay("bob", f"bob-{month}")
        if number == 0:
            with capture(execute=True):
                door.start_draw("alice")
            with capture(execute=True):  # the operator sends the loan (admin); Bitpin confirms it
                loan = Loan.objects.get()
                payouts.record_loan_payout(loan=loan, transfer_id="tx-alice", amount=loan.amount, by=None)
    door.ask_for("bob", "30")


def database_state() -> dict:
    name = {user.pk: user.username for user in User.objects.all()}

    def report(content: dict) -> dict:
        """The report with names for ids (the two lives number their members apart), without what is
        random or of the moment: the month's secret and its commitment, the seed, and the hashes over ids."""
        rows = [{**row, "member_id": name[row["member_id"]]} for row in content["rows"]]
        pool = sorted(name[pk] for pk in content["pool"])
        random = dict.fromkeys(("seed", "secret", "commitment", "table_hash", "drawn_at"))
        return {**content, "rows": rows, "pool": pool, "winner_id": name.get(content["winner_id"]), **random}

    return {
        "users": sorted(User.objects.values_list("username", "loan_request_amount", "is_active", "is_member")),
        "payments": sorted(
            (
                name[p.member_id],
                str(p.month),
                p.fee,
                p.repayment,
                p.loan and str(p.loan.month),
                p.bitpin_id,
                p.status,
                p.source,
                p.submitted_by and p.submitted_by.username,
                p.note,
            )
            for p in Payment.objects.select_related("loan", "submitted_by")
        ),  # fmt: skip
        "loans": sorted(
            (
                name[loan.member_id],
                str(loan.month),
                loan.amount,
                loan.monthly_minimum,
                loan.state,
                str(loan.settled_month),
            )
            for loan in Loan.objects.all()
        ),  # fmt: skip
        "payouts": sorted(
            (name[p.member_id], p.kind, p.loan and str(p.loan.month), p.amount, p.transfer_id, p.status, p.note)
            for p in Payout.objects.select_related("loan")
        ),
        "draws": [
            (str(d.month), d.winner and d.winner.username, d.amount, d.fund_cash, d.triggered_by, report(d.report))
            for d in Draw.objects.select_related("winner").order_by("month")
        ],
    }


def forget_everything() -> None:
    Payout.objects.all().delete()
    Draw.objects.all().delete()
    Payment.objects.all().delete()
    Loan.objects.all().delete()
    User.objects.all().delete()


@pytest.fixture
def in_sync(monkeypatch, settings):
    settings.BITPIN_API_KEY = ""
    monkeypatch.setattr(Conf, "SYNC", True)  # queued jobs run at once, in this process


def test_a_monthly_life_through_the_api_ends_as_through_the_member_page(
    db, in_sync, monkeypatch, django_capture_on_commit_callbacks
):
    FundConfig.load()
    lay_down_the_past()
    live(ThroughThePage(), monkeypatch, django_capture_on_commit_callbacks)
    by_page = database_state()
    forget_everything()

    lay_down_the_past()
    live(ThroughTheApi(), monkeypatch, django_capture_on_commit_callbacks)
    by_api = database_state()

    assert by_api == by_page
    # And the life did happen: Alice's loan granted, repaid and settled; every payment verified.
    assert by_api["loans"] == [("alice", "1404/09", Decimal("40"), Decimal("20"), "settled", "1404/11")]
    assert {payment[6] for payment in by_api["payments"]} == {"verified"}
    assert ("bob", Decimal("30"), True, True) in by_api["users"]
