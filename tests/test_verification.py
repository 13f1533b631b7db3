"""Verifying payments: the Bitpin job against the fake server, retries with back-off, manual decisions, the sweep."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone, translation

from fund import ledger, tasks
from fund.health import queued_jobs
from fund.models import Loan, Payment
from fund.payments import (
    PaymentRefused,
    reject_payment,
    requeue_verification,
    retry_delay,
    submit_payment,
    sweep_pending_payments,
    verify_by_hand,
    verify_with_bitpin,
)
from tests.conftest import THIS_MONTH


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def pending(history, member):
    """Alice's pending payment of 40 USDT (20 fee + 20 repaying her whole 20 USDT loan), Bitpin id bp-1."""
    history.loan(member, THIS_MONTH.previous(), 20)
    return history.pay(member, THIS_MONTH, 20, 20, status=Payment.Status.PENDING, bitpin_id="bp-1")


def reload(payment: Payment) -> Payment:
    return Payment.objects.select_related("loan").get(pk=payment.pk)


# --- one payment, every answer -----------------------------------------------------------------------


def test_a_completed_payment_is_verified_and_settles_the_loan(fake_bitpin, pending):
    fake_bitpin.set("bp-1", "completed", amount="40")
    verify_with_bitpin(payment_id=pending.pk)
    payment = reload(pending)
    assert payment.status == Payment.Status.VERIFIED
    assert payment.note == "Checked with Bitpin: 40.00 USDT, completed."
    assert payment.verified_by is None
    assert payment.verified_at is not None
    assert payment.loan.state == Loan.State.SETTLED
    assert ledger.balance_of(pending.member) == Decimal("20")


@pytest.mark.parametrize(
    ("kind", "note"),
    [
        ("unknown", "Bitpin does not know the payment id “bp-1”."),
        ("wrong_currency", "Bitpin reports the payment in BTC, not USDT."),
        ("too_small", "Bitpin reports 39.99 USDT, less than the 40.00 USDT of this payment."),
        ("failed", "Bitpin reports the payment as “failed”, not completed."),
    ],
)
def test_a_payment_bitpin_refuses_for_good_is_rejected_with_the_reason(fake_bitpin, pending, kind, note):
    fake_bitpin.set("bp-1", kind, amount="39.99")
    verify_with_bitpin(payment_id=pending.pk)
    payment = reload(pending)
    assert payment.status == Payment.Status.REJECTED
    assert payment.note == note
    assert payment.loan.state == Loan.State.ACTIVE
    assert ledger.balance_of(pending.member) == 0


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("error500", "Bitpin answered with HTTP 500."),
        ("error429", "Bitpin asked us to slow down (HTTP 429)."),
        ("slow", "Bitpin did not answer in time."),
        ("malformed", "Bitpin's answer could not be read."),
        ("pending", "Bitpin says the payment is still “pending”; it will be checked again."),
    ],
)
def test_a_passing_failure_leaves_the_payment_pending_with_the_error_recorded(fake_bitpin, pending, kind, error):
    fake_bitpin.set("bp-1", kind)
    before = timezone.now()
    verify_with_bitpin(payment_id=pending.pk)
    payment = reload(pending)
    assert payment.status == Payment.Status.PENDING
    assert payment.attempts == 1
    assert payment.last_error == error
    assert before + dt.timedelta(seconds=59) < payment.next_attempt_at < timezone.now() + dt.timedelta(seconds=61)


def test_each_failed_attempt_waits_twice_as_long_up_to_an_hour(fake_bitpin, pending):
    fake_bitpin.set("bp-1", "error500")
    waits = []
    for _ in range(8):
        started = timezone.now()
        verify_with_bitpin(payment_id=pending.pk)
        waits.append(round((reload(pending).next_attempt_at - started).total_seconds() / 60))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert reload(pending).attempts == 8
    assert retry_delay(1) == dt.timedelta(minutes=1)


def test_a_500_then_completed_ends_verified_on_the_retry(fake_bitpin, pending):
    fake_bitpin.sequence("bp-1", ["error500", {"kind": "completed", "amount": "40"}])
    verify_with_bitpin(payment_id=pending.pk)
    assert reload(pending).status == Payment.Status.PENDING
    verify_with_bitpin(payment_id=pending.pk)
    payment = reload(pending)
    assert payment.status == Payment.Status.VERIFIED
    assert payment.attempts == 1
    assert payment.last_error == "Bitpin answered with HTTP 500."  # the history of attempts stays readable
    assert payment.next_attempt_at is None


# --- idempotency -----------------------------------------------------------------------------------------


def test_verifying_twice_counts_the_payment_once_and_asks_bitpin_once(fake_bitpin, pending):
    fake_bitpin.set("bp-1", "completed", amount="40")
    verify_with_bitpin(payment_id=pending.pk)
    first = reload(pending)
    assert verify_with_bitpin(payment_id=pending.pk) == f"payment {pending.pk} is already verified"
    assert len(fake_bitpin.requests) == 1
    assert reload(pending).verified_at == first.verified_at
    assert ledger.fund_totals().repayments == Decimal("20")


def test_a_late_bitpin_failure_never_flips_a_verified_payment_back(fake_bitpin, pending, operator):
    fake_bitpin.set("bp-1", "unknown")
    verify_by_hand(payment=pending, by=operator, note="seen on the exchange")
    verify_with_bitpin(payment_id=pending.pk)
    payment = reload(pending)
    assert payment.status == Payment.Status.VERIFIED
    assert payment.verified_by == operator
    assert fake_bitpin.requests == []


def test_a_verification_job_for_a_missing_payment_does_nothing(fake_bitpin, db):
    assert verify_with_bitpin(payment_id=987654) == "payment 987654 does not exist"


@pytest.mark.django_db(transaction=True)
def test_bitpin_racing_a_manual_verification_counts_the_payment_once(fake_bitpin, history, operator):
    """The job asks Bitpin (slowly) while the operator verifies by hand: one decision, one count."""
    member = history.member("alice")
    history.loan(member, THIS_MONTH.previous(), 40)
    payment = history.pay(member, THIS_MONTH, 20, 40, status=Payment.Status.PENDING, bitpin_id="bp-1")
    fake_bitpin.set("bp-1", "failed", delay=0.3)
    results: list[str] = []

    def job() -> None:
        try:
            results.append(verify_with_bitpin(payment_id=payment.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 10
    while not fake_bitpin.requests:  # the job is now waiting for Bitpin's answer
        assert thread.is_alive() and time.monotonic() < deadline, f"the job never asked Bitpin: {results}"
        time.sleep(0.01)
    verify_by_hand(payment=payment, by=operator, note="seen on the exchange")
    thread.join(timeout=10)
    assert results == [f"payment {payment.pk} was decided meanwhile; Bitpin said rejected"]
    decided = reload(payment)
    assert (decided.status, decided.verified_by, decided.note) == ("verified", operator, "seen on the exchange")
    assert decided.loan.state == Loan.State.SETTLED
    assert ledger.fund_totals().repayments == Decimal("40")


# --- no key ----------------------------------------------------------------------------------------------


def test_without_a_key_the_payment_is_verified_at_once_without_asking(fake_bitpin, pending, settings):
    settings.BITPIN_API_KEY = ""
    verify_with_bitpin(payment_id=pending.pk)
    payment = reload(pending)
    assert payment.status == Payment.Status.VERIFIED
    assert payment.note == "not checked: no Bitpin key configured"
    assert fake_bitpin.requests == []


def test_without_a_key_the_sweep_verifies_what_is_waiting(fake_bitpin, pending, settings):
    settings.BITPIN_API_KEY = ""
    Payment.objects.filter(pk=pending.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
    assert sweep_pending_payments() == 1
    assert reload(pending).note == "not checked: no Bitpin key configured"


# --- the operator's decisions ----------------------------------------------------------------------------


def test_the_operator_verifies_by_hand_with_a_note_recording_who_and_when(pending, operator):
    before = timezone.now()
    verify_by_hand(payment=pending, by=operator, note="  seen in the Bitpin dashboard ")
    payment = reload(pending)
    assert (payment.status, payment.verified_by, payment.note) == ("verified", operator, "seen in the Bitpin dashboard")
    assert payment.verified_at >= before
    assert payment.loan.state == Loan.State.SETTLED


def test_the_operator_rejects_by_hand_with_a_note(pending, operator):
    reject_payment(payment=pending, by=operator, note="refunded to the member")
    payment = reload(pending)
    assert (payment.status, payment.verified_by, payment.note) == ("rejected", operator, "refunded to the member")
    assert payment.verified_at is not None


@pytest.mark.parametrize("decide", [verify_by_hand, reject_payment])
def test_a_manual_decision_needs_a_note(pending, operator, decide):
    with pytest.raises(PaymentRefused) as caught:
        decide(payment=pending, by=operator, note="  ")
    assert (caught.value.message, caught.value.field) == ("Write a note saying why.", "note")
    assert reload(pending).status == Payment.Status.PENDING


@pytest.mark.parametrize("decide", [verify_by_hand, reject_payment])
def test_a_decided_payment_cannot_be_decided_again(pending, operator, decide):
    verify_by_hand(payment=pending, by=operator, note="ok")
    with pytest.raises(PaymentRefused) as caught:
        decide(payment=pending, by=operator, note="again")
    assert (
        caught.value.message == "This payment is already verified; only pending payments can be verified or rejected."
    )
    assert reload(pending).note == "ok"


def test_a_rejected_payment_cannot_be_verified_later(pending, operator):
    reject_payment(payment=pending, by=operator, note="no such transfer")
    with pytest.raises(PaymentRefused, match="already rejected"):
        verify_by_hand(payment=pending, by=operator, note="found it after all")


@pytest.mark.redis
def test_requeue_queues_only_the_pending_payments(history, member, other_member, django_capture_on_commit_callbacks):
    waiting = history.pay(member, THIS_MONTH, status=Payment.Status.PENDING)
    done = history.pay(other_member, THIS_MONTH)
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_verification(payment_ids=[waiting.pk, done.pk, 424242]) == 1
    [queued] = queued_jobs()
    assert (queued.func, queued.args) == (tasks.VERIFY_PAYMENT, (waiting.pk,))


def test_submitting_and_running_the_queued_job_verifies_against_bitpin(
    fake_bitpin, config, member, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the queued job runs here, as the worker would run it
    fake_bitpin.set("bp-9", "completed", amount="20")
    monkeypatch.setattr(timezone, "now", lambda: THIS_MONTH.starts_at() + dt.timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        payment = submit_payment(member=member, month=THIS_MONTH, fee=Decimal("20"), bitpin_id="bp-9")
    assert reload(payment).status == Payment.Status.VERIFIED


# --- the sweep ------------------------------------------------------------------------------------------


def make_pending(history, count: int, *, due: bool = True) -> list[Payment]:
    members = [history.member(f"m{i}") for i in range(count)]
    payments = [
        history.pay(m, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id=f"bp-{i}") for i, m in enumerate(members)
    ]
    when = timezone.now() - dt.timedelta(seconds=1) if due else timezone.now() + dt.timedelta(minutes=10)
    Payment.objects.filter(pk__in=[p.pk for p in payments]).update(next_attempt_at=when)
    return payments


def test_the_sweep_checks_only_payments_that_are_due(fake_bitpin, history):
    fake_bitpin.set_default("completed", amount="20")
    due = make_pending(history, 2)
    not_yet = history.pay(history.member("later"), THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-later")
    Payment.objects.filter(pk=not_yet.pk).update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    fresh = history.pay(history.member("fresh"), THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-fresh")
    assert sweep_pending_payments() == 2
    assert {p.status for p in map(reload, due)} == {"verified"}
    assert reload(not_yet).status == reload(fresh).status == "pending"  # fresh: its own job is on the way


def test_the_sweep_picks_up_a_payment_whose_job_was_lost(fake_bitpin, history):
    fake_bitpin.set_default("completed", amount="20")
    lost = history.pay(history.member("lost"), THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-lost")
    Payment.objects.filter(pk=lost.pk).update(created_at=timezone.now() - dt.timedelta(minutes=2))
    assert sweep_pending_payments() == 1
    assert reload(lost).status == "verified"


def test_the_sweep_records_failures_and_backs_off(fake_bitpin, history):
    [payment] = make_pending(history, 1)
    fake_bitpin.set("bp-0", "error429")
    assert sweep_pending_payments() == 1
    failed = reload(payment)
    assert (failed.status, failed.attempts, failed.last_error) == (
        "pending",
        1,
        "Bitpin asked us to slow down (HTTP 429).",
    )
    assert failed.next_attempt_at > timezone.now() + dt.timedelta(seconds=50)
    assert sweep_pending_payments() == 0  # not due again yet


def test_the_sweep_applies_every_kind_of_answer(fake_bitpin, history):
    payments = make_pending(history, 3)
    fake_bitpin.set("bp-0", "completed", amount="20")
    fake_bitpin.set("bp-1", "unknown")
    fake_bitpin.set("bp-2", "error500")
    assert sweep_pending_payments() == 3
    assert [reload(p).status for p in payments] == ["verified", "rejected", "pending"]


def test_the_sweep_asks_bitpin_concurrently(fake_bitpin, history, settings):
    settings.BITPIN_SWEEP_CONCURRENCY = 16
    fake_bitpin.set_default("completed", amount="20", delay=0.05)
    payments = make_pending(history, 160)
    started = time.monotonic()
    assert sweep_pending_payments() == 160
    elapsed = time.monotonic() - started
    assert Payment.objects.filter(status="verified").count() == len(payments)
    assert elapsed < 160 * 0.05 / 2  # one at a time would take 8 s


@pytest.mark.django_db(transaction=True)  # each decision commits, as in production
def test_a_sweep_queues_one_delivery_job_and_changes_the_draw_inputs_version_once_for_many_decisions(
    fake_bitpin, history, monkeypatch
):
    from django.core.cache import cache

    from fund import coalesce
    from fund.models import Notification, User

    monkeypatch.setattr(coalesce, "FLUSH_EVERY", 3600.0)  # the whole sweep is one flush
    fake_bitpin.set_default("completed", amount="20")
    payments = make_pending(history, 12)
    User.objects.filter(payments__in=payments).update(email="member@example.org")
    versions = []
    monkeypatch.setattr(ledger, "_new_version", lambda real=ledger._new_version: versions.append(1) or real())
    before = cache.get(ledger.DRAW_INPUTS_VERSION_KEY)

    assert sweep_pending_payments() == 12

    assert {reload(p).status for p in payments} == {"verified"}
    # Every member still gets their own message; one job delivers them all.
    assert Notification.objects.filter(event="payment_verified").count() == 12
    assert [job.func for job in queued_jobs()].count(tasks.DELIVER_NOTIFICATIONS) == 1
    assert versions == [1] and cache.get(ledger.DRAW_INPUTS_VERSION_KEY) != before


@pytest.mark.django_db(transaction=True)
def test_a_long_sweep_lets_other_processes_see_its_decisions_every_second(fake_bitpin, history, monkeypatch):
    from fund import coalesce

    monkeypatch.setattr(coalesce, "FLUSH_EVERY", 0.0)  # a sweep slower than the flush period
    fake_bitpin.set_default("completed", amount="20")
    make_pending(history, 3)
    versions = []
    monkeypatch.setattr(ledger, "_new_version", lambda: versions.append(1))

    assert sweep_pending_payments() == 3

    assert len(versions) == 3  # one flush after each decision: nothing waits for the sweep's end
