"""Faults: Bitpin down, slow, flapping or garbled for a while; a worker killed in the middle of a job.

Bitpin's faults run in this process against the fake Bitpin server, with the clock moved on
between sweeps (time is the edge we control). Killed workers are real ``manage.py qcluster``
processes sent SIGKILL; redelivery is made due at once by moving the queued job's lock into
the past, which is what the ORM broker's ``retry`` period does after a crash.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone, translation
from django_q.models import OrmQ, Success
from django_q.tasks import async_task

from fund import ledger, tasks
from fund.draw import queue_draw
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User
from fund.payments import submit_payment, sweep_pending_payments
from tests.conftest import THIS_MONTH, requires_orm_broker, requires_postgres
from tests.fixtures.bitpin import FakeBitpin
from tests.fixtures.worker import Worker

PENDING, VERIFIED, REJECTED = Payment.Status.PENDING, Payment.Status.VERIFIED, Payment.Status.REJECTED

# Each payment's Bitpin answers in turn, and what the payment must end as.
SCENARIOS: dict[str, tuple[list[str], str]] = {
    "completes-at-once": (["completed"], VERIFIED),
    "flaps-then-completes": (["error500", "error429", "error500", "completed"], VERIFIED),
    "garbage-then-completes": (["malformed", "malformed", "completed"], VERIFIED),
    "slow-then-completes": (["slow", "completed"], VERIFIED),
    "processing-then-completes": (["pending", "pending", "completed"], VERIFIED),
    "flaps-then-unknown": (["error500", "unknown"], REJECTED),
    "garbage-then-too-small": (["malformed", "too_small"], REJECTED),
    "slow-then-wrong-currency": (["slow", "wrong_currency"], REJECTED),
    "throttled-then-failed": (["error429", "failed"], REJECTED),
}
ASK_AGAIN = {"error500", "error429", "malformed", "slow", "pending"}


def closed_port_url() -> str:
    """A loopback URL where nothing listens: Bitpin is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def now(self) -> dt.datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock((THIS_MONTH.starts_at() + dt.timedelta(days=9, hours=12)).astimezone(dt.UTC))
    monkeypatch.setattr(timezone, "now", clock.now)
    return clock


@pytest.fixture
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


# --- Bitpin misbehaving, then recovering --------------------------------------------------------------


@pytest.mark.django_db
def test_every_payment_ends_decided_once_bitpin_recovers_from_being_down_slow_flapping_or_garbled(
    clock, english, history, fake_bitpin, settings
):
    payments = {}
    for name, (answers, _final) in SCENARIOS.items():
        member = history.member(name)
        payments[name] = submit_payment(member=member, month=THIS_MONTH, fee=Decimal("20"), bitpin_id=f"bp-{name}")
        fake_bitpin.sequence(f"bp-{name}", answers)
    working_url = settings.BITPIN_API_BASE_URL

    # Bitpin is down: every check fails for a passing reason and nothing is decided or lost.
    settings.BITPIN_API_BASE_URL = closed_port_url()
    clock.advance(minutes=2)  # the verification jobs were lost: the sweep picks the payments up
    assert sweep_pending_payments() == len(SCENARIOS)
    for payment in Payment.objects.all():
        assert (payment.status, payment.attempts) == (PENDING, 1)
        assert "Could not reach Bitpin" in payment.last_error
    assert fake_bitpin.requests == []

    # Bitpin is back but misbehaves for a while; each sweep runs after the back-off has passed.
    settings.BITPIN_API_BASE_URL = working_url
    for _round in range(10):
        clock.advance(hours=2)
        sweep_pending_payments()
        if not Payment.objects.filter(status=PENDING).exists():
            break

    assert Payment.objects.count() == len(SCENARIOS)  # nothing lost, nothing doubled
    for name, (answers, final) in SCENARIOS.items():
        payment = Payment.objects.get(pk=payments[name].pk)
        assert payment.status == final, name
        assert payment.verified_at is not None, name
        # One failed attempt while Bitpin was down, then one per passing failure; asked once per answer.
        assert payment.attempts == 1 + sum(answer in ASK_AGAIN for answer in answers), name
        assert len(fake_bitpin.requests_for(f"bp-{name}")) == len(answers), name
    verified_fees = sum(p.fee for p in Payment.objects.filter(status=VERIFIED))
    assert ledger.fund_totals().fees == verified_fees == Decimal(20) * 5


@pytest.mark.django_db
def test_a_restarted_bitpin_answering_again_verifies_what_waited(clock, english, history, settings):
    members = [history.member(f"m{i}") for i in range(5)]
    for i, member in enumerate(members):
        submit_payment(member=member, month=THIS_MONTH, fee=Decimal("20"), bitpin_id=f"bp-{i}")
    with FakeBitpin() as first:
        for name, value in first.env().items():
            setattr(settings, name, float(value) if name.endswith("TIMEOUT") else value)
        first.set_default("error500")
        clock.advance(minutes=2)
        sweep_pending_payments()
    # The server is gone (connection refused), then comes back on a new address with its old key.
    clock.advance(hours=2)
    sweep_pending_payments()
    with FakeBitpin() as second:
        settings.BITPIN_API_BASE_URL = second.url
        second.set_default("completed")
        clock.advance(hours=2)
        assert sweep_pending_payments() == 5
    assert set(Payment.objects.values_list("status", "attempts")) == {(VERIFIED, 2)}
    assert ledger.fund_totals().fees == Decimal(100)


# --- a worker killed in the middle of a job -------------------------------------------------------------


@pytest.fixture
def worker(transactional_db, tmp_path: Path, fake_bitpin) -> Iterator[Worker]:
    """A worker not yet started, pointed at the fake Bitpin with a patient read timeout (so a kill,
    not the timeout, ends the first check)."""
    FundConfig.load()  # transactional tests empty every table
    worker = Worker(tmp_path / "qcluster.log", {**fake_bitpin.env(), "BITPIN_READ_TIMEOUT": "30"})
    try:
        yield worker
    finally:
        worker.stop()


def redeliver_unacknowledged_jobs() -> int:
    """What the broker does once ``retry`` seconds have passed after a crash, done now."""
    return OrmQ.objects.update(lock=timezone.now() - dt.timedelta(seconds=1))


def pay_this_month(member: User, bitpin_id: str) -> Payment:
    # The real month: the worker runs with the real clock.
    return submit_payment(member=member, month=JalaliMonth.current(), fee=Decimal("20"), bitpin_id=bitpin_id)


@requires_orm_broker
@pytest.mark.worker
def test_a_worker_killed_while_bitpin_answers_leaves_the_payment_pending_and_the_job_completes_after_restart(
    worker, fake_bitpin, member
):
    fake_bitpin.sequence("bp-1", [{"kind": "completed", "amount": "20", "delay": 20}, "completed"])
    member.email = ""  # no channel to notify: the verification is the only job in the queue
    member.save(update_fields=["email"])
    payment = pay_this_month(member, "bp-1")
    worker.start()
    worker.wait_for(lambda: fake_bitpin.requests_for("bp-1"))
    worker.kill()  # SIGKILL while the worker waits for Bitpin's answer

    assert Payment.objects.get(pk=payment.pk).status == PENDING  # nothing half-written
    assert OrmQ.objects.count() == 1  # the job was never acknowledged: it is not lost

    worker.start()
    assert redeliver_unacknowledged_jobs() == 1
    worker.wait_for(lambda: Payment.objects.get(pk=payment.pk).status == VERIFIED)
    worker.wait_for(lambda: not OrmQ.objects.exists())
    assert Payment.objects.count() == 1
    assert len(fake_bitpin.requests_for("bp-1")) == 2
    assert [s.func for s in Success.objects.all()] == [tasks.VERIFY_PAYMENT]
    assert ledger.balance_of(member) == Decimal(20)


# PostgreSQL: the test holds a row lock on its own connection, so the worker stops *inside* its
# transaction, after it has written part of its work, and is killed there.


def open_lock(sql: str, *params: object) -> psycopg.Connection:
    """A separate connection to the test database holding the row lock ``sql`` takes, until closed."""
    db = connection.settings_dict
    holder = psycopg.connect(
        dbname=db["NAME"], user=db.get("USER") or None, host=db.get("HOST") or None, port=db.get("PORT") or None
    )
    holder.execute(sql, params)  # psycopg starts a transaction: the lock is held until rollback
    return holder


def waiting_statements() -> list[str]:
    """The statements of the test database's sessions that are waiting for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [row[0] for row in cursor.fetchall()]


def wait_until_nobody_waits_for_a_lock(timeout: float = 30) -> None:
    """The killed worker's session ends once it gets the lock and finds its client gone."""
    deadline = time.monotonic() + timeout
    while waiting_statements():
        assert time.monotonic() < deadline, "a killed worker's session still waits for a lock"
        time.sleep(0.1)


@requires_postgres
@requires_orm_broker
@pytest.mark.worker
def test_a_worker_killed_while_recording_a_verification_leaves_nothing_half_done(worker, fake_bitpin, member):
    fake_bitpin.set("bp-2", "completed", amount="20")
    payment = pay_this_month(member, "bp-2")
    holder = open_lock("SELECT id FROM fund_payment WHERE id = %s FOR UPDATE", payment.pk)
    try:
        worker.start()
        # Bitpin said yes; the worker waits to claim the payment's row for its decision.
        waiting = worker.wait_for(waiting_statements)
        assert 'FROM "fund_payment"' in waiting[0] and "FOR UPDATE" in waiting[0]
        worker.kill()
    finally:
        holder.rollback()
        holder.close()
    wait_until_nobody_waits_for_a_lock()

    assert Payment.objects.get(pk=payment.pk).status == PENDING
    worker.start()
    redeliver_unacknowledged_jobs()
    worker.wait_for(lambda: Payment.objects.get(pk=payment.pk).status == VERIFIED)
    worker.wait_for(lambda: not OrmQ.objects.exists())
    verified = Payment.objects.get(pk=payment.pk)
    assert verified.attempts == 0 and verified.last_error == ""
    assert verified.history.filter(status=VERIFIED).count() == 1  # decided once
    assert len(fake_bitpin.requests_for("bp-2")) == 2


def lay_down_a_paid_month(month: JalaliMonth) -> User:
    alice = User.objects.create_user("alice", is_member=True, loan_request_amount=Decimal(40))
    bob = User.objects.create_user("bob", is_member=True)
    for person in (alice, bob):
        for paid in (month - 1).range_to(month):
            Payment.objects.create(
                member=person, month=paid, fee=Decimal(20), status=VERIFIED, source=Payment.Source.IMPORT
            )
    return alice


@requires_postgres
@requires_orm_broker
@pytest.mark.worker
def test_a_worker_killed_in_the_middle_of_a_draw_leaves_no_loan_and_the_draw_completes_once_after_restart(worker):
    month = JalaliMonth.current()
    alice = lay_down_a_paid_month(month)
    # The draw has inserted the loan and waits to reset the winner's request when it is killed.
    holder = open_lock("SELECT id FROM fund_user WHERE id = %s FOR NO KEY UPDATE", alice.pk)
    try:
        queue_draw(month=month, triggered_by="alice")
        worker.start()
        waiting = worker.wait_for(waiting_statements)
        assert waiting[0].startswith('UPDATE "fund_user"')  # after the loan's INSERT, in the same transaction
        worker.kill()
        assert not Draw.objects.exists() and not Loan.objects.exists()
    finally:
        holder.rollback()
        holder.close()
    wait_until_nobody_waits_for_a_lock()

    assert (Draw.objects.count(), Loan.objects.count()) == (0, 0)
    assert User.objects.get(pk=alice.pk).loan_request_amount == Decimal(40)
    worker.start()
    assert redeliver_unacknowledged_jobs() == 1
    draw = worker.wait_for(lambda: Draw.objects.filter(month=month).first())
    assert (draw.winner, draw.amount) == (alice, Decimal(40))
    assert Loan.objects.get().member == alice
    assert User.objects.get(pk=alice.pk).loan_request_amount == Decimal(0)

    # Delivered once more (a second crash after the commit, before the acknowledgement): still one draw.
    worker.wait_for(lambda: not OrmQ.objects.exists())
    async_task(tasks.RUN_DRAW, str(month), "again")
    worker.wait_for(lambda: Success.objects.count() == 2)
    assert (Draw.objects.count(), Loan.objects.count()) == (1, 1)
