"""The draw job through a real django-q2 worker (``manage.py qcluster``) on the test database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django_q.models import Success
from django_q.tasks import async_task

from fund import tasks
from fund.draw import queue_draw
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User

M = JalaliMonth(1404, 9)


def lay_down_a_paid_month() -> User:
    FundConfig.load()  # transactional tests empty every table, the configuration row included
    alice = User.objects.create_user("alice", is_member=True, loan_request_amount=Decimal(40))
    bob = User.objects.create_user("bob", is_member=True)
    for member in (alice, bob):
        for month in (M - 1).range_to(M):
            Payment.objects.create(
                member=member, month=month, fee=Decimal(20), status=Payment.Status.VERIFIED, source="import"
            )
    return alice


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_queued_draw_once(qcluster_worker):
    alice = lay_down_a_paid_month()

    queue_draw(month=M, triggered_by="alice")  # as the member page's button does
    result = qcluster_worker.wait_for(lambda: Draw.objects.filter(month=M).first())

    assert (result.winner, result.amount, result.triggered_by) == (alice, Decimal(40), "alice")
    assert Loan.objects.get().member == alice

    # A second delivery of the same month (a double click, a redelivered task) changes nothing.
    async_task(tasks.RUN_DRAW, str(M), "again")
    qcluster_worker.wait_for(lambda: Success.objects.count() == 2)
    assert Draw.objects.get().triggered_by == "alice"
    assert Loan.objects.count() == 1
    assert {task.func for task in Success.objects.all()} == {tasks.RUN_DRAW}

    qcluster_worker.stop()
    assert qcluster_worker.process.returncode == 0  # stopped cleanly by SIGTERM
