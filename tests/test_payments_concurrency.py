"""Simultaneous submissions on PostgreSQL: the member lock and the unique constraints leave one payment."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone, translation

from fund.models import Payment, User
from fund.payments import PaymentRefused, submit_payment, sweep_pending_payments
from tests.conftest import THIS_MONTH, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def english_in_this_month(monkeypatch):
    moment = THIS_MONTH.starts_at() + dt.timedelta(days=9, hours=12)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    with translation.override("en"):
        yield


def run_together(calls: list[Callable[[], Payment]]) -> tuple[list[Payment], list[str]]:
    """Start every call at the same moment, each on its own connection; collect payments and refusals."""
    barrier = threading.Barrier(len(calls))
    accepted: list[Payment] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Payment]) -> None:
        try:
            with translation.override("en"):
                barrier.wait(timeout=10)
                accepted.append(call())
        except PaymentRefused as refusal:
            refused.append(refusal.message)
        except BaseException as error:  # noqa: BLE001  (reported below: a 500 would be a defect)
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return accepted, refused


def test_ten_simultaneous_submissions_for_one_month_leave_one_payment(config, member):
    calls = [
        lambda i=i: submit_payment(member=member, month=THIS_MONTH, fee=Decimal("20"), bitpin_id=f"bp-{i}")
        for i in range(10)
    ]
    accepted, refused = run_together(calls)
    assert len(accepted) == 1
    assert len(refused) == 9
    assert all("already paid for 1404/09" in message for message in refused)
    assert Payment.objects.filter(member=member, month=THIS_MONTH).count() == 1


def test_two_members_submitting_one_bitpin_id_leave_one_accepted(config, history):
    for round_ in range(5):  # a few rounds: the race lands differently each time
        alice, bob = history.member(f"alice{round_}"), history.member(f"bob{round_}")
        calls = [
            lambda who=who, same=f"bp-same-{round_}": submit_payment(
                member=who, month=THIS_MONTH, fee=Decimal("20"), bitpin_id=same
            )
            for who in (alice, bob)
        ]
        accepted, refused = run_together(calls)
        assert len(accepted) == 1
        assert refused == ["This Bitpin payment id has already been used for another payment."]
        assert Payment.objects.filter(bitpin_id=f"bp-same-{round_}").count() == 1


def test_two_sweeps_at_once_check_each_payment_once(config, history, fake_bitpin):
    fake_bitpin.set_default("completed", amount="20", delay=0.02)
    members = [history.member(f"m{i}") for i in range(40)]
    for i, who in enumerate(members):
        history.pay(who, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id=f"bp-{i}")
    Payment.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    counts: list[int] = []

    def sweep() -> None:
        try:
            counts.append(sweep_pending_payments())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == 40
    assert len(fake_bitpin.requests) == 40
    assert Payment.objects.filter(status=Payment.Status.VERIFIED).count() == 40
    assert User.objects.count() == 40


def test_the_sweep_decides_in_its_threads_as_the_job_in_the_sweeps_language_and_closes_their_connections(
    config, history, fake_bitpin, settings
):
    from fund import tasks

    settings.BITPIN_SWEEP_CONCURRENCY = 8
    fake_bitpin.set_default("completed", amount="20", delay=0.02)
    fake_bitpin.set("bp-3", "unknown")  # one rejection among them
    members = [history.member(f"m{i}") for i in range(60)]  # enough to be decided in the threads
    for i, who in enumerate(members):
        history.pay(who, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id=f"bp-{i}")
    Payment.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))

    def open_connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = open_connections()
    with translation.override("fa"):
        assert tasks.sweep_pending_payments() == 60

    assert Payment.objects.filter(status=Payment.Status.VERIFIED).count() == 59
    rejected = Payment.objects.get(status=Payment.Status.REJECTED)
    assert rejected.bitpin_id == "bp-3" and "بیت‌پین" in rejected.note  # the sweep's language, not the default
    decisions = Payment.history.filter(status__in=["verified", "rejected"])
    assert decisions.count() == 60
    assert {(h.history_user.username, h.history_change_reason) for h in decisions} == {
        ("saghat-worker", "job: retry pending verifications")
    }
    assert open_connections() == before  # each deciding thread closed its own connection
