"""The Bitpin client against the fake Bitpin server, over the network: every class of answer."""

from __future__ import annotations

import datetime as dt
import socket
import time
from decimal import Decimal

import httpx
import pytest
from django.utils import translation

from fund import bitpin
from fund.bitpin import Outcome


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def check(bitpin_id: str, expected: str = "40") -> bitpin.Answer:
    return bitpin.check_payment(bitpin_id, Decimal(expected))


def test_it_verifies_a_completed_usdt_payment_of_the_whole_total(fake_bitpin):
    fake_bitpin.set("bp-1", "completed", amount="40.00")
    answer = check("bp-1", "40")
    assert answer.outcome == Outcome.VERIFIED
    assert "40.00 USDT" in answer.detail


def test_it_verifies_more_than_the_total(fake_bitpin):
    fake_bitpin.set("bp-1", "completed", amount="41")
    assert check("bp-1", "40").outcome == Outcome.VERIFIED


@pytest.mark.parametrize("status", ["paid", "Confirmed", "DONE"])
def test_it_accepts_every_completed_status_in_any_case(settings, status):
    answer = bitpin.classify(bitpin.BitpinPayment("x", Decimal("40"), "usdt", status), Decimal("40"))
    assert answer.outcome == Outcome.VERIFIED


def test_it_sends_the_key_as_a_token_header_to_the_payment_url(fake_bitpin):
    fake_bitpin.set("bp-1", "completed")
    check("bp-1")
    [request] = fake_bitpin.requests
    assert request.method == "GET"
    assert request.path == "/v1/mch/payments/bp-1/"
    assert request.authorization == "Token test-bitpin-key"


def test_it_quotes_the_id_so_it_stays_one_path_segment(fake_bitpin):
    fake_bitpin.set("a/../b?c", "completed")
    assert check("a/../b?c").outcome == Outcome.VERIFIED
    assert fake_bitpin.requests[0].path == "/v1/mch/payments/a%2F..%2Fb%3Fc/"


def test_it_rejects_an_unknown_id(fake_bitpin):
    fake_bitpin.set("bp-1", "unknown")
    answer = check("bp-1")
    assert answer.outcome == Outcome.REJECTED
    assert answer.detail == "Bitpin does not know the payment id “bp-1”."


def test_it_rejects_the_wrong_currency(fake_bitpin):
    fake_bitpin.set("bp-1", "wrong_currency", amount="40")
    answer = check("bp-1")
    assert answer.outcome == Outcome.REJECTED
    assert answer.detail == "Bitpin reports the payment in BTC, not USDT."


def test_it_rejects_an_amount_below_the_total(fake_bitpin):
    fake_bitpin.set("bp-1", "too_small", amount="39.99")
    answer = check("bp-1", "40")
    assert answer.outcome == Outcome.REJECTED
    assert answer.detail == "Bitpin reports 39.99 USDT, less than the 40.00 USDT of this payment."


def test_it_rejects_a_failed_payment(fake_bitpin):
    fake_bitpin.set("bp-1", "failed")
    answer = check("bp-1")
    assert answer.outcome == Outcome.REJECTED
    assert "“failed”" in answer.detail


def test_it_asks_again_later_while_bitpin_says_pending(fake_bitpin):
    fake_bitpin.set("bp-1", "pending")
    answer = check("bp-1")
    assert answer.outcome == Outcome.RETRY
    assert "still “pending”" in answer.detail


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("error500", "Bitpin answered with HTTP 500."),
        ("error429", "Bitpin asked us to slow down (HTTP 429)."),
        ("slow", "Bitpin did not answer in time."),
        ("malformed", "Bitpin's answer could not be read."),
    ],
)
def test_it_asks_again_later_after_a_passing_failure(fake_bitpin, kind, error):
    fake_bitpin.set("bp-1", kind)
    answer = check("bp-1")
    assert answer.outcome == Outcome.RETRY
    assert answer.detail == error


def test_a_slow_answer_gives_up_at_the_read_timeout(fake_bitpin, settings):
    import time

    fake_bitpin.set("bp-1", "slow")
    started = time.monotonic()
    check("bp-1")
    assert time.monotonic() - started < settings.BITPIN_READ_TIMEOUT + 0.4


def test_it_asks_again_later_when_bitpin_cannot_be_reached(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nobody listens there
    settings.BITPIN_API_BASE_URL = f"http://127.0.0.1:{port}"
    settings.BITPIN_API_KEY = "k"
    answer = check("bp-1")
    assert answer.outcome == Outcome.RETRY
    assert answer.detail.startswith("Could not reach Bitpin")


def test_a_refused_key_is_not_the_payments_fault(fake_bitpin, settings):
    settings.BITPIN_API_KEY = "wrong-key"
    fake_bitpin.set("bp-1", "completed")
    answer = check("bp-1")
    assert answer.outcome == Outcome.RETRY
    assert answer.detail == "Bitpin refused our API key (HTTP 401)."


def answer_body(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


def test_an_answer_about_another_id_is_not_trusted():
    body = b'{"id": "bp-2", "amount": "40", "currency": "USDT", "status": "completed"}'
    with pytest.raises(bitpin._TryLater, match="another payment id"):
        bitpin._parse(answer_body(body), "bp-1")


def test_amounts_written_as_json_numbers_are_read_exactly():
    body = b'{"id": "bp-1", "amount": 40.12345678, "currency": "USDT", "status": "completed"}'
    assert bitpin._parse(answer_body(body), "bp-1").amount == Decimal("40.12345678")


@pytest.mark.parametrize("amount", [b'"forty"', b"null", b"true", b'"NaN"', b"[1]"])
def test_an_unreadable_amount_is_a_malformed_answer(amount):
    body = b'{"id": "bp-1", "amount": ' + amount + b', "currency": "USDT", "status": "completed"}'
    with pytest.raises(bitpin._TryLater, match="could not be read"):
        bitpin._parse(answer_body(body), "bp-1")


def test_a_sequence_answers_in_turn_then_repeats_the_last(fake_bitpin):
    fake_bitpin.sequence("bp-1", ["error500", "completed"])
    assert [check("bp-1").outcome for _ in range(3)] == [Outcome.RETRY, Outcome.VERIFIED, Outcome.VERIFIED]


def test_an_empty_id_is_rejected_without_asking(fake_bitpin):
    answer = check("")
    assert answer.outcome == Outcome.REJECTED
    assert fake_bitpin.requests == []


# --- the overall deadline (issue 13, fault 7) ----------------------------------------------------------


def test_a_dripping_answer_is_cut_at_the_deadline_and_is_a_passing_failure(fake_bitpin, settings):
    """Each byte comes within the read timeout, so only an overall deadline ends the request."""
    from tests.fixtures.bitpin import TEST_READ_TIMEOUT

    assert fake_bitpin.drip_seconds < TEST_READ_TIMEOUT
    settings.BITPIN_DEADLINE = 1.5
    fake_bitpin.set("bp-1", "drip", amount="40")
    started = time.monotonic()
    answer = check("bp-1")
    took = time.monotonic() - started
    assert answer == bitpin.Answer(Outcome.RETRY, "Bitpin did not answer in time.")
    assert 1.5 <= took < 1.5 + TEST_READ_TIMEOUT


def test_the_deadline_also_bounds_a_shared_client_for_every_request(fake_bitpin, settings):
    settings.BITPIN_DEADLINE = 1.0
    fake_bitpin.set("bp-drip", "drip", amount="40")
    fake_bitpin.set("bp-ok", "completed", amount="40")
    with bitpin.make_client() as client:
        started = time.monotonic()
        assert bitpin.check_payment("bp-drip", Decimal("40"), client=client).outcome == Outcome.RETRY
        assert time.monotonic() - started < 1.0 + 0.5
        # The next request on the same client has its own whole deadline.
        assert bitpin.check_payment("bp-ok", Decimal("40"), client=client).outcome == Outcome.VERIFIED


@pytest.mark.django_db
def test_a_verification_cut_at_the_deadline_is_recorded_like_any_passing_failure(fake_bitpin, settings, history):
    from django.utils import timezone

    from fund.jalali import JalaliMonth
    from fund.models import Payment
    from fund.payments import sweep_pending_payments, verify_with_bitpin

    settings.BITPIN_DEADLINE = 1.0
    member = history.member("dora")
    payment = history.pay(member, JalaliMonth(1404, 9), 40, status=Payment.Status.PENDING, bitpin_id="bp-drip")
    fake_bitpin.set("bp-drip", "drip", amount="40")

    before = timezone.now()
    started = time.monotonic()
    verify_with_bitpin(payment_id=payment.pk)
    assert time.monotonic() - started < 1.0 + 0.5
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert (payment.attempts, payment.last_error) == (1, "Bitpin did not answer in time.")
    assert before + dt.timedelta(seconds=59) < payment.next_attempt_at < timezone.now() + dt.timedelta(seconds=61)

    # The sweep is bounded by the same deadline: it records a second attempt and returns.
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=timezone.now())
    started = time.monotonic()
    assert sweep_pending_payments() == 1
    assert time.monotonic() - started < 1.0 + 0.5
    payment.refresh_from_db()
    assert (payment.status, payment.attempts) == (Payment.Status.PENDING, 2)
