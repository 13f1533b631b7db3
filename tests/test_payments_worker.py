"""A real ``manage.py qcluster`` worker verifies payments against the fake Bitpin server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Schedule

from fund import tasks
from fund.jalali import JalaliMonth
from fund.models import Payment
from fund.payments import requeue_verification, submit_payment

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def status_of(payment: Payment) -> Payment:
    return Payment.objects.get(pk=payment.pk)


def submit(member, bitpin_id: str) -> Payment:
    # The real month: the worker runs with the real clock.
    return submit_payment(member=member, month=JalaliMonth.current(), fee=Decimal("20"), bitpin_id=bitpin_id)


def test_a_submitted_payment_goes_from_pending_to_verified_in_the_worker(config, member, fake_bitpin, qcluster_worker):
    fake_bitpin.set("bp-1", "completed", amount="20")
    payment = submit(member, "bp-1")
    assert payment.status == Payment.Status.PENDING
    qcluster_worker.wait_for(lambda: status_of(payment).status == Payment.Status.VERIFIED)
    verified = status_of(payment)
    assert "20.00" in verified.note  # "Checked with Bitpin: 20.00 USDT, completed." in the worker's language
    assert verified.verified_by is None
    assert [r.authorization for r in fake_bitpin.requests_for("bp-1")] == ["Token test-bitpin-key"]


def test_a_500_then_completed_ends_verified_after_a_retry(config, member, fake_bitpin, qcluster_worker):
    fake_bitpin.sequence("bp-2", ["error500", {"kind": "completed", "amount": "20"}])
    payment = submit(member, "bp-2")
    failed = qcluster_worker.wait_for(lambda: (p := status_of(payment)).attempts == 1 and p)
    assert failed.status == Payment.Status.PENDING
    assert failed.last_error  # "Bitpin answered with HTTP 500." in the worker's language
    assert requeue_verification(payment_ids=[payment.pk]) == 1  # the operator's "verify with Bitpin"
    qcluster_worker.wait_for(lambda: status_of(payment).status == Payment.Status.VERIFIED)
    assert len(fake_bitpin.requests_for("bp-2")) == 2


def test_the_scheduled_sweep_retries_a_failed_check_in_the_worker(config, member, fake_bitpin, qcluster_worker):
    fake_bitpin.sequence("bp-3", ["error429", {"kind": "completed", "amount": "20"}])
    payment = submit(member, "bp-3")
    qcluster_worker.wait_for(lambda: status_of(payment).attempts == 1)
    # Make the retry due now instead of in a minute, and let the worker's scheduler run the sweep.
    Payment.objects.filter(pk=payment.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    Schedule.objects.update_or_create(
        name="test sweep",
        defaults={
            "func": tasks.SWEEP_PENDING_PAYMENTS,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )
    qcluster_worker.wait_for(lambda: status_of(payment).status == Payment.Status.VERIFIED, timeout=90)


def test_a_check_cut_short_by_a_crashed_worker_leaves_the_payment_pending_and_retryable(
    config, member, fake_bitpin, qcluster_worker
):
    # The first answer would come after the client's timeout anyway: the first check can never verify.
    fake_bitpin.sequence(
        "bp-4", [{"kind": "completed", "amount": "20", "delay": 2}, {"kind": "completed", "amount": "20"}]
    )
    payment = submit(member, "bp-4")
    qcluster_worker.wait_for(lambda: fake_bitpin.requests_for("bp-4"))
    qcluster_worker.kill()  # SIGKILL while the worker waits for Bitpin's answer
    assert status_of(payment).status == Payment.Status.PENDING  # nothing half-written
    qcluster_worker.start()
    requeue_verification(payment_ids=[payment.pk])
    qcluster_worker.wait_for(lambda: status_of(payment).status == Payment.Status.VERIFIED)
    assert Payment.objects.filter(member=member).count() == 1
