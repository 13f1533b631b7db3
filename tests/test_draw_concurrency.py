"""Exactly once under real concurrency (DESIGN.md §7): many triggers at once, one draw, one loan."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from fund.draw import run_draw
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User
from tests.conftest import _database_vendor, requires_postgres  # noqa: F401 - the skip condition names it

M = JalaliMonth(1404, 9)
THREADS = 10


def lay_down_a_paid_month() -> None:
    FundConfig.load()  # transactional tests empty every table, the configuration row included
    for name in ("ann", "ben", "cid", "dee"):
        member = User.objects.create_user(name, is_member=True, loan_request_amount=Decimal(50))
        for month in (M - 2).range_to(M):
            Payment.objects.create(
                member=member, month=month, fee=Decimal(20), status=Payment.Status.VERIFIED, source="import"
            )


def trigger_at_once(count: int) -> tuple[list[int], list[BaseException]]:
    start = threading.Barrier(count)
    draw_ids: list[int] = []
    errors: list[BaseException] = []

    def trigger(n: int) -> None:
        try:
            start.wait(timeout=30)
            draw_ids.append(run_draw(month=M, triggered_by=f"trigger-{n}").pk)
        except BaseException as error:  # noqa: BLE001 - the test reports every failure
            errors.append(error)
        finally:
            connection.close()  # each thread has its own connection: close it or the test DB stays busy

    threads = [threading.Thread(target=trigger, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return draw_ids, errors


@requires_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_simultaneous_triggers_make_one_draw_and_one_loan():
    lay_down_a_paid_month()

    draw_ids, errors = trigger_at_once(THREADS)

    assert errors == []
    assert len(draw_ids) == THREADS
    assert len(set(draw_ids)) == 1  # every trigger got the same draw back, none failed
    assert Draw.objects.count() == 1
    assert Loan.objects.count() == 1
    draw = Draw.objects.get()
    assert Loan.objects.get() == draw.loan
    assert User.objects.get(pk=draw.winner_id).loan_request_amount == 0
