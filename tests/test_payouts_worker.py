"""A real ``manage.py qcluster`` worker checks payouts and refunds against the fake Bitpin server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.models import Schedule

from fund import tasks
from fund.jalali import JalaliMonth
from fund.models import Loan, Payout, User
from fund.payouts import record_leaving, record_loan_payout

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def reload(obj):
    return type(obj).objects.get(pk=obj.pk)


def test_a_payout_is_verified_rejected_and_retried_in_the_worker(history, operator, fake_bitpin, qcluster_worker):
    month = JalaliMonth.current()  # the worker runs with the real clock
    alice, bob, sara = history.member("alice"), history.member("bob"), history.member("sara")
    for person in (alice, bob, sara):
        history.pay_months(person, month - 12, 12)
    won = history.loan(alice, month, 100, state=Loan.State.AWAITING_PAYOUT)
    wrong = history.loan(bob, month - 1, 50, state=Loan.State.AWAITING_PAYOUT)
    fake_bitpin.set_transfer("tr-ok", "completed", amount="100")
    fake_bitpin.set_transfer("tr-wrong", "completed", amount="49")
    fake_bitpin.transfer_sequence("tr-refund", ["error500", {"kind": "completed", "amount": "240"}])

    paid = record_loan_payout(loan=won, transfer_id="tr-ok", amount=Decimal(100), by=operator)
    refused = record_loan_payout(loan=wrong, transfer_id="tr-wrong", amount=Decimal(50), by=operator)
    refund = record_leaving(member=sara, transfer_id="tr-refund", by=operator)

    qcluster_worker.wait_for(lambda: reload(paid).status == Payout.Status.VERIFIED)
    assert reload(won).state == Loan.State.ACTIVE and reload(won).paid_out_month == month
    qcluster_worker.wait_for(lambda: reload(refused).status == Payout.Status.REJECTED)
    assert reload(wrong).state == Loan.State.AWAITING_PAYOUT
    # The refund's first check failed for a passing reason: the scheduled sweep retries it.
    qcluster_worker.wait_for(lambda: reload(refund).attempts == 1)
    assert reload(refund).status == Payout.Status.PENDING and reload(sara).is_leaving
    Payout.objects.filter(pk=refund.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
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
    qcluster_worker.wait_for(lambda: reload(refund).status == Payout.Status.VERIFIED, timeout=90)
    left = User.objects.get(pk=sara.pk)
    assert not left.is_active and left.left_at is not None
