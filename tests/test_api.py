"""The JSON API through HTTP: every endpoint's answer, fields and types; tokens that are missing,
bad, expired or revoked; who may do what; every rule's refusal in words; and that a member never
sees another member's payments or repayments."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import jwt
import pytest
from django.conf import settings
from django.test import Client

from fund import draw, payouts
from fund.api.tokens import issue_token
from fund.health import queued_jobs
from fund.jalali import JalaliMonth
from fund.models import Draw, Loan, Payment, User
from tests.conftest import THIS_MONTH

LAST_MONTH = THIS_MONTH - 1
DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")


class Api:
    """A client program: JSON in and out, a bearer token, English unless told otherwise."""

    def __init__(self, client: Client, user: User | None = None, language: str | None = "en") -> None:
        self.client = client
        self.headers: dict[str, str] = {}
        if user is not None:
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(user)}"
        if language:
            self.headers["HTTP_ACCEPT_LANGUAGE"] = language

    def get(self, path: str, **params: object):
        return self.client.get(f"/api{path}", params, **self.headers)

    def post(self, path: str, body: object = None):
        data = "" if body is None else json.dumps(body)
        return self.client.post(f"/api{path}", data, content_type="application/json", **self.headers)

    def patch(self, path: str, body: object):
        return self.client.patch(f"/api{path}", json.dumps(body), content_type="application/json", **self.headers)


def detail(response) -> str:
    body = response.json()
    assert set(body) >= {"detail"} and isinstance(body["detail"], str), body
    return body["detail"]


@pytest.fixture
def fund(history, today_in_this_month, member, other_member):
    """Alice and Bob have paid three months before this one; Alice asks for 40 USDT."""
    for person in (member, other_member):
        history.pay_months(person, THIS_MONTH - 3, 3)
    member.loan_request_amount = Decimal("40")
    member.save()
    return history


@pytest.fixture
def alice(client, member) -> Api:
    return Api(client, member)


@pytest.fixture
def bob(member, other_member) -> Api:
    return Api(Client(), other_member)


@pytest.fixture
def boss(operator) -> Api:
    return Api(Client(), operator)


def pay_body(**fields: object) -> dict:
    return {"membership_fee": "20", "bitpin_payment_id": "bp-1", **fields}


# --- logging in -------------------------------------------------------------------------------------


def test_login_returns_a_bearer_token_that_opens_the_api(client, member):
    response = Api(client).post("/auth/login", {"username": "alice", "password": "alice-pass-1404"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "bearer",
        "user_id": member.pk,
        "username": "alice",
        "is_main": False,
    }
    me = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert me.status_code == 200 and me.json()["username"] == "alice"
    member.refresh_from_db()
    assert member.last_login is not None  # user_logged_in was sent


def test_login_says_is_main_for_the_operator(client, operator):
    response = Api(client).post("/auth/login", {"username": "operator", "password": "operator-pass-1404"})
    assert response.json()["is_main"] is True


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_wrong_password_is_401_in_words(client, member, password):
    response = Api(client).post("/auth/login", {"username": "alice", "password": password})
    assert response.status_code == 401
    assert detail(response) == "Wrong user name or password."


def test_a_deactivated_user_cannot_log_in(client, member):
    member.is_active = False
    member.save()
    response = Api(client).post("/auth/login", {"username": "alice", "password": "alice-pass-1404"})
    assert response.status_code == 401


def test_failed_logins_are_throttled_like_the_login_page(client, member, settings):
    api = Api(client)
    for _attempt in range(settings.LOGIN_FAILURE_LIMIT):
        assert api.post("/auth/login", {"username": "alice", "password": "guess"}).status_code in (401, 429)
    response = api.post("/auth/login", {"username": "alice", "password": "alice-pass-1404"})
    assert response.status_code == 429
    assert "Too many failed logins" in detail(response)
    assert "access_token" not in response.json()
    elsewhere = client.post(
        "/api/auth/login",
        json.dumps({"username": "alice", "password": "alice-pass-1404"}),
        content_type="application/json",
        REMOTE_ADDR="10.0.0.9",
    )
    assert elsewhere.status_code == 200  # the pause is for this user name at this address only


def test_a_successful_login_forgets_the_failures(client, member, settings):
    api = Api(client)
    for _round in range(2):
        for _attempt in range(settings.LOGIN_FAILURE_LIMIT - 1):
            assert api.post("/auth/login", {"username": "alice", "password": "guess"}).status_code == 401
        assert api.post("/auth/login", {"username": "alice", "password": "alice-pass-1404"}).status_code == 200


def test_a_malformed_login_is_422_with_one_sentence(client, db):
    response = Api(client).post("/auth/login", {"username": "alice"})
    assert response.status_code == 422
    assert detail(response) == "The request is malformed: password — this field is required."
    not_json = client.post("/api/auth/login", "{", content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")
    assert not_json.status_code == 422 and "not valid JSON" in detail(not_json)


# --- tokens -----------------------------------------------------------------------------------------------

ALL_GETS = ["/auth/me", "/auth/users", "/payments/config", "/payments/my-payments", "/loans/history",
            "/loans/my-history", "/loans/1"]  # fmt: skip


@pytest.mark.parametrize("path", ALL_GETS)
def test_every_endpoint_is_401_without_a_token(client, db, path):
    response = Api(client).get(path)
    assert response.status_code == 401
    assert detail(response).startswith("Log in first")


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/auth/me/loan-request"), ("post", "/auth/users"), ("post", "/payments/pay"), ("post", "/loans/start")],
)
def test_every_write_is_401_without_a_token_and_changes_nothing(client, member, method, path):
    body = {**pay_body(), "username": "x1", "loan_request_amount": "10"}
    response = getattr(Api(client), method)(path, body)
    assert response.status_code == 401 and detail(response).startswith("Log in first")
    assert not Payment.objects.exists() and not Draw.objects.exists() and User.objects.count() == 1
    member.refresh_from_db()
    assert member.loan_request_amount == 0


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "Bearer",
        jwt.encode(
            {"sub": "1", "iat": 1, "exp": 2**40}, "a-different-secret-key-of-forty-characters", algorithm="HS256"
        ),
    ],
)
def test_a_bad_or_forged_token_is_401(client, member, token):
    response = client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401


def test_an_unsigned_token_is_401(client, member):
    unsigned = jwt.encode({"sub": str(member.pk), "iat": int(time.time()), "exp": 2**40}, None, algorithm="none")
    assert client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {unsigned}").status_code == 401


def test_a_token_expires_after_its_lifetime(client, member):
    old = issue_token(member, issued_at=time.time() - settings.API_TOKEN_LIFETIME - 60)
    fresh = issue_token(member, issued_at=time.time() - settings.API_TOKEN_LIFETIME + 60)
    assert client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401
    assert client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {fresh}").status_code == 200


def test_the_lifetime_comes_from_the_settings(client, member, settings):
    settings.API_TOKEN_LIFETIME = 30
    claims = jwt.decode(issue_token(member), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30


def test_a_token_stops_working_when_the_password_changes(client, member, alice):
    assert alice.get("/auth/me").status_code == 200
    member.set_password("a-new-secret-1404")
    member.save()
    assert alice.get("/auth/me").status_code == 401


def test_a_token_stops_working_when_the_user_is_deactivated(member, alice):
    member.is_active = False
    member.save()
    assert alice.get("/auth/me").status_code == 401


def test_a_session_cookie_never_authenticates_the_api(client, member, today_in_this_month, config):
    client.force_login(member)
    assert client.get("/").status_code == 200  # the member page does accept the session
    assert client.get("/api/auth/me").status_code == 401
    response = client.post("/api/payments/pay", json.dumps(pay_body()), content_type="application/json")
    assert response.status_code == 401 and not Payment.objects.exists()


def test_csrf_does_not_apply_to_bearer_requests(member, config, today_in_this_month):
    strict = Client(enforce_csrf_checks=True)
    response = Api(strict, member).post("/payments/pay", pay_body())
    assert response.status_code == 201


# --- my profile and loan request ------------------------------------------------------------------------


def test_me_shows_my_profile_with_amounts_as_strings(fund, member, alice):
    response = alice.get("/auth/me")
    assert response.status_code == 200
    assert response.json() == {
        "id": member.pk,
        "username": "alice",
        "first_name": "Alice",
        "last_name": "",
        "email": "alice@example.org",
        "is_main": False,
        "balance": "60",
        "loan_request_amount": "40",
        "has_active_loan": False,
    }


def test_me_says_when_i_have_a_loan_to_repay(fund, member, alice):
    fund.loan(member, LAST_MONTH, 40)
    assert alice.get("/auth/me").json()["has_active_loan"] is True


def test_changing_my_loan_request(fund, member, alice):
    response = alice.patch("/auth/me/loan-request", {"loan_request_amount": "55.5"})
    assert response.status_code == 200
    assert response.json()["loan_request_amount"] == "55.5"
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("55.5")


@pytest.mark.parametrize(
    ("amount", "message"),
    [("-5", "The amount cannot be negative."), ("1.123456789", "Use at most 8 decimal places.")],
)
def test_a_bad_loan_request_is_400_in_words_and_changes_nothing(fund, member, alice, amount, message):
    response = alice.patch("/auth/me/loan-request", {"loan_request_amount": amount})
    assert (response.status_code, detail(response)) == (400, message)
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("40")


def test_a_malformed_loan_request_is_422(fund, alice):
    response = alice.patch("/auth/me/loan-request", {"loan_request_amount": "lots"})
    assert response.status_code == 422
    assert (
        detail(response)
        == "The request is malformed: loan_request_amount — must be a number written as text, like 20.5."
    )


def test_someone_who_is_not_a_member_cannot_ask_for_a_loan(client, outsider):
    response = Api(client, outsider).patch("/auth/me/loan-request", {"loan_request_amount": "10"})
    assert response.status_code == 403
    assert detail(response) == "Only an active member of the fund may do this."


# --- members (operator) ------------------------------------------------------------------------------------


def test_the_operator_creates_a_member_who_can_log_in(boss, db):
    body = {"username": "dara", "password": "dara-secret-1404", "first_name": "Dara", "last_name": "Karimi",
            "email": "dara@example.org", "loan_request_amount": "30"}  # fmt: skip
    response = boss.post("/auth/users", body)
    assert response.status_code == 201
    dara = User.objects.get(username="dara")
    assert response.json() == {
        "id": dara.pk,
        "username": "dara",
        "first_name": "Dara",
        "last_name": "Karimi",
        "email": "dara@example.org",
        "is_main": False,
        "balance": "0",
        "loan_request_amount": "30",
        "has_active_loan": False,
    }
    assert dara.is_member and dara.is_active and not dara.is_main and not dara.is_staff
    login = Api(Client()).post("/auth/login", {"username": "dara", "password": "dara-secret-1404"})
    assert login.status_code == 200


def test_a_member_created_without_a_password_has_none_until_they_choose_one(boss, db):
    assert boss.post("/auth/users", {"username": "dara"}).status_code == 201
    dara = User.objects.get(username="dara")
    assert not dara.has_usable_password() and dara.loan_request_amount == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"username": "alice"}, "A user with that username already exists."),
        ({"username": "no spaces allowed"}, "Enter a valid username."),
        ({"username": "dara", "email": "not-an-address"}, "Enter a valid email address."),
        ({"username": "dara", "password": "123"}, "This password is too short."),
        ({"username": "dara", "loan_request_amount": "-1"}, "The amount cannot be negative."),
    ],
)
def test_a_refused_member_is_400_in_words_and_nothing_is_created(boss, member, body, message):
    before = User.objects.count()
    response = boss.post("/auth/users", body)
    assert response.status_code == 400
    assert message in detail(response)
    assert User.objects.count() == before


def test_the_operator_lists_the_members(boss, fund, member, other_member, operator):
    fund.loan(other_member, LAST_MONTH, 40)
    response = boss.get("/auth/users")
    assert response.status_code == 200
    rows = response.json()
    assert [row["username"] for row in rows] == ["alice", "bob"]  # members only, by user name
    assert rows[0]["balance"] == "60" and rows[1]["has_active_loan"] is True


@pytest.mark.parametrize(
    "call", [lambda api: api.get("/auth/users"), lambda api: api.post("/auth/users", {"username": "x1"})]
)
def test_a_member_is_403_on_the_operators_endpoints(alice, member, call):
    response = call(alice)
    assert response.status_code == 403
    assert detail(response) == "Only the fund's operator may do this."
    assert not User.objects.filter(username="x1").exists()


# --- the configuration and paying ------------------------------------------------------------------------


def test_the_config_has_the_originals_names(alice, config):
    response = alice.get("/payments/config")
    assert response.json() == {
        "min_membership_fee": "20",
        "max_month_for_loan_payment": 24,
        "min_amount_for_loan_payment": "20",
    }


def test_paying_this_month_stores_a_pending_payment(fund, member, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/payments/pay", pay_body(membership_fee="25.5", loan_request_amount="50"))
    assert response.status_code == 201
    payment = Payment.objects.get(member=member, month=THIS_MONTH)
    assert response.json() == {
        "id": str(payment.pk),
        "user_id": member.pk,
        "amount": "25.5",
        "jalali_year": 1404,
        "jalali_month": 9,
        "bitpin_payment_id": "bp-1",
        "membership_fee": {"amount": "25.5"},
        "loan_payment": None,
        "status": "pending",
    }
    assert (payment.status, payment.source, payment.submitted_by) == ("pending", "member", member)
    # The Bitpin check is queued, as from the member page (beside the notification's delivery).
    assert [job.func for job in queued_jobs()].count("fund.tasks.verify_payment") == 1
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("50")


def test_paying_with_a_repayment(fund, member, alice):
    loan = fund.loan(member, LAST_MONTH, 40)
    response = alice.post("/payments/pay", pay_body(loan="20"))
    assert response.status_code == 201
    body = response.json()
    assert body["amount"] == "40"
    assert body["loan_payment"] == {"loan_id": str(loan.pk), "amount": "20"}


def test_paying_twice_in_a_month_is_409(fund, alice):
    assert alice.post("/payments/pay", pay_body()).status_code == 201
    response = alice.post("/payments/pay", pay_body(bitpin_payment_id="bp-2"))
    assert response.status_code == 409
    assert "already paid" in detail(response)
    assert Payment.objects.count() == 6 + 1


@pytest.mark.parametrize(
    ("body", "message", "with_loan"),
    [
        (pay_body(membership_fee="19.99"), "The membership fee must be at least 20.00 USDT.", False),
        (pay_body(loan="20"), "There is no active loan to repay: leave the repayment at 0.", False),
        (pay_body(), "The repayment must be between 20.00 and 40.00 USDT.", True),
        (pay_body(loan="41"), "The repayment must be between 20.00 and 40.00 USDT.", True),
        (
            pay_body(bitpin_payment_id="hist-1"),
            "This Bitpin payment id has already been used for another payment.",
            False,
        ),
        (pay_body(bitpin_payment_id="  "), "Enter the Bitpin payment id.", False),
        (pay_body(membership_fee="-20"), "The amount cannot be negative.", False),
    ],
)
def test_a_payment_breaking_a_rule_is_400_naming_it(fund, member, alice, body, message, with_loan):
    if with_loan:
        fund.loan(member, LAST_MONTH, 40)
    response = alice.post("/payments/pay", body)
    assert (response.status_code, detail(response)) == (400, message)
    assert not Payment.objects.filter(month=THIS_MONTH).exists()


@pytest.mark.parametrize(
    "body",
    [{"membership_fee": "20"}, {"bitpin_payment_id": "bp-1"}, pay_body(membership_fee="twenty"),
     pay_body(membership_fee="NaN"), pay_body(membership_fee="1e3"), pay_body(membership_fee="2e1000000"),
     pay_body(bitpin_payment_id=7), [1, 2]],
)  # fmt: skip
def test_a_malformed_payment_is_422_in_one_sentence(fund, alice, body):
    response = alice.post("/payments/pay", body)
    assert response.status_code == 422
    assert detail(response).startswith("The request is malformed")
    assert not Payment.objects.filter(month=THIS_MONTH).exists()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/login", {"username": "ali\x00ce", "password": "alice-pass-1404"}),
        ("/auth/users", {"username": "dara", "first_name": "Da\x00ra"}),
        ("/payments/pay", pay_body(bitpin_payment_id="bp\x00")),
    ],
)
def test_a_nul_character_is_malformed_not_a_server_error(fund, boss, operator, path, body):
    operator.is_member = True
    operator.save()
    response = boss.post(path, body)
    assert response.status_code == 422 and "is not in the expected format" in detail(response)


def test_someone_who_is_not_a_member_cannot_pay(client, outsider, today_in_this_month, config):
    response = Api(client, outsider).post("/payments/pay", pay_body())
    assert response.status_code == 403 and not Payment.objects.exists()


def test_errors_are_persian_by_default_and_follow_accept_language(fund, member, client):
    persian = Api(client, member, language=None).post("/payments/pay", pay_body(membership_fee="1"))
    assert detail(persian) == "حق عضویت باید دست‌کم 20.00 USDT باشد."
    assert "حق عضویت" in persian.content.decode()  # UTF-8 as it is, not \u escapes
    english = Api(client, member, language="en").post("/payments/pay", pay_body(membership_fee="1"))
    assert detail(english) == "The membership fee must be at least 20.00 USDT."


def test_my_payments_are_mine_newest_first(fund, member, other_member, alice):
    alice.post("/payments/pay", pay_body())
    response = alice.get("/payments/my-payments")
    assert response.status_code == 200
    rows = response.json()
    assert [(r["jalali_year"], r["jalali_month"]) for r in rows] == [(1404, 9), (1404, 8), (1404, 7), (1404, 6)]
    assert {r["user_id"] for r in rows} == {member.pk}
    assert [r["status"] for r in rows] == ["pending", "verified", "verified", "verified"]
    assert all(DECIMAL.match(r["amount"]) for r in rows)


# --- the draw ---------------------------------------------------------------------------------------------


def everyone_paid(fund, *people: User) -> None:
    for person in people:
        fund.pay(person, THIS_MONTH)


def test_starting_the_draw_runs_it_and_returns_the_loan(fund, member, other_member, alice):
    everyone_paid(fund, member, other_member)
    response = alice.post("/loans/start")
    assert response.status_code == 201
    body = response.json()
    loan = Loan.objects.get()
    assert body["message"] == "Draw of 1404/09: alice receives a loan of 40.00 USDT."
    assert body["loan"] == {
        "id": str(loan.pk),
        "user_id": member.pk,
        "username": "alice",
        "amount": "40",
        "state": "awaiting_payout",  # the loan model's own state names
        "jalali_year": 1404,
        "jalali_month": 9,
        "min_amount_for_each_payment": "20",
        "total_paid": "0",
        "remaining_balance": "40",
        "log": {
            "not_participated": [{"user_id": other_member.pk, "username": "bob", "reason": "is not asking for a loan"}],
            "participated": [{"user_id": member.pk, "username": "alice", "point": "unlimited"}],
            "selected": member.pk,
            "random_pool": [member.pk],
        },
        "payments": [],
    }
    assert Draw.objects.get().triggered_by == "alice"


def test_a_draw_without_a_winner_is_no_one(fund, member, other_member, bob):
    member.loan_request_amount = 0
    member.save()
    everyone_paid(fund, member, other_member)
    response = bob.post("/loans/start")
    assert response.status_code == 201
    loan = response.json()["loan"]
    drawn = Draw.objects.get()
    assert (loan["id"], loan["state"], loan["user_id"], loan["amount"]) == (f"draw-{drawn.pk}", "no_one", None, None)
    assert loan["log"]["selected"] is None and len(loan["log"]["not_participated"]) == 2
    assert bob.get(f"/loans/draw-{drawn.pk}").json() == loan


def test_the_draw_refuses_naming_who_has_not_paid(fund, member, other_member, alice):
    everyone_paid(fund, member)
    response = alice.post("/loans/start")
    assert response.status_code == 400
    assert detail(response) == "The draw for 1404/09 cannot run yet: 1 member has not paid: bob."
    assert not Draw.objects.exists()


def test_starting_a_drawn_month_again_is_409_with_its_loan(fund, member, other_member, alice, bob):
    everyone_paid(fund, member, other_member)
    first = alice.post("/loans/start").json()
    again = bob.post("/loans/start")
    assert again.status_code == 409
    assert detail(again) == "The draw for 1404/09 has already run."
    assert again.json()["loan"]["id"] == first["loan"]["id"]
    assert Draw.objects.count() == Loan.objects.count() == 1


def test_someone_who_is_not_a_member_cannot_start_the_draw(client, outsider, fund, member, other_member):
    everyone_paid(fund, member, other_member)
    assert Api(client, outsider).post("/loans/start").status_code == 403
    assert not Draw.objects.exists()


def test_the_operator_may_start_the_draw(fund, member, other_member, boss):
    everyone_paid(fund, member, other_member)
    assert boss.post("/loans/start").status_code == 201


# --- loan history -----------------------------------------------------------------------------------------


def paid_out(loan: Loan) -> None:
    """The operator sends the loan's USDT and the transfer is verified: the loan becomes active."""
    payout = payouts.record_loan_payout(loan=loan, transfer_id=f"tx-{loan.pk}", amount=loan.amount, by=None)
    payouts.mark_payout_verified(payout=payout, by=None, note="checked")


@pytest.fixture
def drawn_history(fund, member, other_member):
    """Bob's imported loan of 1404/06, settled; a month without a winner (1404/07); Alice's
    loan of 1404/08 with one repayment this month."""
    bobs = fund.loan(other_member, THIS_MONTH - 3, 20, state=Loan.State.SETTLED)
    Payment.objects.filter(member=other_member, month=THIS_MONTH - 2).update(repayment=20, loan=bobs)
    no_one = Draw.objects.create(month=THIS_MONTH - 2, fund_cash=0, seed="s", report={"rows": [], "pool": []})
    alices = draw.run_draw(month=LAST_MONTH, triggered_by="test").loan
    paid_out(alices)
    fund.pay(member, THIS_MONTH, 20, 20)
    return {"bob": bobs, "no_one": no_one, "alice": alices, "fund": fund}


def test_the_operator_reads_the_whole_history_newest_first(boss, drawn_history):
    response = boss.get("/loans/history")
    assert response.status_code == 200
    rows = response.json()
    assert [(r["jalali_month"], r["state"], r["username"]) for r in rows] == [
        (8, "active", "alice"),
        (7, "no_one", None),
        (6, "settled", "bob"),
    ]
    alice_row = rows[0]
    assert (alice_row["total_paid"], alice_row["remaining_balance"]) == ("20", "20")
    assert alice_row["payments"] == [
        {"id": alice_row["payments"][0]["id"], "amount": "20", "jalali_year": 1404, "jalali_month": 9}
    ]
    assert rows[2]["log"] == {"not_participated": [], "participated": [], "selected": None, "random_pool": []}


@pytest.mark.parametrize(
    ("params", "months"),
    [
        ({"from_month": "1404/07"}, [8, 7]),
        ({"to_month": "1404-7"}, [7, 6]),
        ({"from_month": "1404/07", "to_month": "1404/07"}, [7]),
        ({"state": "no_one"}, [7]),
        ({"state": "settled"}, [6]),
        ({"state": "active"}, [8]),
        ({"state": "awaiting_payout"}, []),
        ({"jalali_month_gt": 6}, [8, 7]),
        ({"jalali_month_lt": 8}, [7, 6]),
        ({"jalali_year_gt": 1403}, [8, 7, 6]),
        ({"jalali_year_lt": 1404}, []),
    ],
)
def test_the_history_filters(boss, drawn_history, params, months):
    response = boss.get("/loans/history", **params)
    assert [r["jalali_month"] for r in response.json()] == months


def test_the_history_reads_a_fixed_number_of_queries(boss, drawn_history, django_assert_max_num_queries):
    def count() -> int:
        with django_assert_max_num_queries(100) as queries:
            assert boss.get("/loans/history").status_code == 200
        return len(queries)

    before = count()
    for month in range(1, 6):  # five more months without a winner and five more loans
        Draw.objects.create(month=JalaliMonth(1403, month), fund_cash=0, seed="s", report={"rows": [], "pool": []})
        drawn_history.get("fund").loan(User.objects.get(username="bob"), JalaliMonth(1402, month), 20, state="settled")
    assert count() == before


def test_the_history_filtered_by_member(boss, drawn_history, other_member):
    rows = boss.get("/loans/history", user_id=other_member.pk).json()
    assert [(r["username"], r["jalali_month"]) for r in rows] == [("bob", 6)]


@pytest.mark.parametrize(
    "params", [{"from_month": "1404/13"}, {"state": "lost"}, {"user_id": "x"}, {"jalali_month_gt": 99}]
)
def test_a_malformed_history_filter_is_422(boss, drawn_history, params):
    response = boss.get("/loans/history", **params)
    assert response.status_code == 422 and detail(response)


def test_a_member_cannot_read_the_whole_history(alice, drawn_history):
    response = alice.get("/loans/history", user_id=1)
    assert response.status_code == 403


def test_my_history_has_only_my_loans(bob, drawn_history, other_member):
    rows = bob.get("/loans/my-history").json()
    assert [(r["user_id"], r["jalali_month"], r["state"]) for r in rows] == [(other_member.pk, 6, "settled")]
    assert rows[0]["total_paid"] == "20" and rows[0]["remaining_balance"] == "0" and len(rows[0]["payments"]) == 1


def test_my_loan_in_detail_with_its_repayments(alice, drawn_history):
    loan = drawn_history["alice"]
    body = alice.get(f"/loans/{loan.pk}").json()
    assert (body["id"], body["total_paid"], body["remaining_balance"]) == (str(loan.pk), "20", "20")
    assert [p["amount"] for p in body["payments"]] == ["20"]
    assert body["log"]["selected"] == loan.member_id


def test_another_members_loan_shows_its_draw_but_never_their_repayments(bob, drawn_history, member):
    loan = drawn_history["alice"]
    response = bob.get(f"/loans/{loan.pk}")
    assert response.status_code == 200
    body = response.json()
    assert (body["username"], body["amount"], body["state"]) == ("alice", "40", "active")
    assert body["log"]["selected"] == member.pk  # the draw's table is public
    assert (body["total_paid"], body["remaining_balance"], body["payments"]) == (None, None, [])


def test_a_member_never_sees_another_members_payments_or_repayments_anywhere(bob, drawn_history, member, other_member):
    alices = {str(p.pk) for p in Payment.objects.filter(member=member)}
    payment_ids = [row["id"] for row in bob.get("/payments/my-payments").json()]
    loans = [
        *bob.get("/loans/my-history").json(),
        bob.get(f"/loans/{drawn_history['alice'].pk}").json(),
        bob.get(f"/loans/draw-{drawn_history['no_one'].pk}").json(),
    ]
    payment_ids += [repayment["id"] for loan in loans for repayment in loan["payments"]]
    assert payment_ids and not alices & set(payment_ids)
    assert all(loan["total_paid"] is None for loan in loans if loan["user_id"] == member.pk)
    for params in ({}, {"user_id": member.pk}, {"state": "active"}):
        assert bob.get("/loans/history", **params).status_code == 403
    assert bob.get("/auth/users").status_code == 403


def test_an_outsider_cannot_read_a_members_loan(client, outsider, drawn_history):
    response = Api(client, outsider).get(f"/loans/{drawn_history['alice'].pk}")
    assert response.status_code == 403


@pytest.mark.parametrize("loan_id", ["424242", "draw-424242", "abc", "1" * 40, "draw-x"])
def test_an_unknown_loan_is_404(alice, drawn_history, loan_id):
    response = alice.get(f"/loans/{loan_id}")
    assert response.status_code == 404
    assert detail(response) == "There is no such loan."


def test_a_month_that_chose_no_one_is_not_a_loan_id(alice, drawn_history):
    # A granted loan's draw is read through its loan: "draw-N" names only months without a winner.
    with_winner = Draw.objects.get(month=LAST_MONTH)
    assert alice.get(f"/loans/draw-{with_winner.pk}").status_code == 404


# --- the API as a whole ------------------------------------------------------------------------------------


def test_an_unknown_address_or_method_under_api_answers_json(client, db):
    missing = client.get("/api/no/such/thing", HTTP_ACCEPT_LANGUAGE="en")
    assert (missing.status_code, detail(missing)) == (404, "Not found.")
    wrong = client.delete("/api/auth/login", HTTP_ACCEPT_LANGUAGE="en")
    assert wrong.status_code == 405 and wrong["Allow"] == "POST" and detail(wrong)


def test_the_documentation_and_schema_are_served(client, db):
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) == 12
    for path, method, op in operations:
        declared = set(op["responses"])
        if path != "/api/auth/login":
            assert "401" in declared, (path, method)
        assert any(code.startswith("2") for code in declared)
        assert all(code.startswith("2") or op["responses"][code]["content"] for code in declared)


def test_every_amount_in_the_schema_is_a_decimal_string(client, db):
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    fee = schemas["PayIn"]["properties"]["membership_fee"]
    assert fee["type"] == "string" and "pattern" in fee
    assert schemas["UserOut"]["properties"]["balance"]["type"] == "string"


def test_a_password_hash_never_leaves_the_api(boss, fund, member):
    everything = boss.get("/auth/users").content.decode() + boss.get("/auth/me").content.decode()
    assert member.password not in everything and "md5$" not in everything
