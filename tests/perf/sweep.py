"""Scenario 5: the verification sweep of 1,000 pending payments against a slow Bitpin.

The fake Bitpin server (tests.fixtures.bitpin.FakeBitpin, a real HTTP server on 127.0.0.1) answers
every id "completed" after 50 ms. Before each repetition 1,000 payments of the current month are
made pending and due (not timed); the sweep job (``fund.tasks.sweep_pending_payments``) then checks
and verifies them all, committing each decision as in production. The baseline is the same sweep
asking Bitpin one payment at a time (``BITPIN_SWEEP_CONCURRENCY=1``). Afterwards the payments and
their history rows are removed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.test.utils import override_settings
from django.utils import timezone

from fund import tasks, verification
from fund.jalali import JalaliMonth
from fund.models import Payment, User
from tests.fixtures.bitpin import TEST_CONNECT_TIMEOUT, FakeBitpin
from tests.perf.fund import Fund, Sizes
from tests.perf.harness import Figure, Row, repeat

DELAY = 0.05
PREFIX = "perf-sweep-"
_round = itertools.count(1)


def make_pending(members: list[int], month: JalaliMonth) -> None:
    remove_pending()
    batch = next(_round)
    due = timezone.now() - dt.timedelta(seconds=1)
    Payment.objects.bulk_create(
        Payment(member_id=pk, month=month, fee=Decimal(20), bitpin_id=f"{PREFIX}{batch}-{pk}",
                status=Payment.Status.PENDING, source=Payment.Source.MEMBER, next_attempt_at=due)
        for pk in members
    )  # fmt: skip


@contextmanager
def unlimited_budget() -> Iterator[None]:
    budget = verification.SWEEP_TIME_BUDGET_SECONDS
    verification.SWEEP_TIME_BUDGET_SECONDS = 3600.0
    try:
        yield
    finally:
        verification.SWEEP_TIME_BUDGET_SECONDS = budget


def remove_pending() -> None:
    Payment.history.filter(bitpin_id__startswith=PREFIX).delete()
    Payment.objects.filter(bitpin_id__startswith=PREFIX).delete()


def sweep(expected: int) -> None:
    checked = tasks.sweep_pending_payments()
    verified = Payment.objects.filter(bitpin_id__startswith=PREFIX, status=Payment.Status.VERIFIED).count()
    if checked != expected or verified != expected:
        raise SystemExit(f"the sweep checked {checked} and verified {verified} of {expected} payments")


def run(fund: Fund, sizes: Sizes) -> list[Row]:
    month = JalaliMonth.current()
    paid = Payment.objects.filter(month=month).values("member_id")
    members = list(
        User.objects.members().exclude(pk__in=paid).order_by("pk").values_list("pk", flat=True)[: sizes.sweep_payments]
    )
    count = len(members)
    with FakeBitpin() as bitpin:
        bitpin.set_default("completed", delay=DELAY)
        # A read timeout well above the 50 ms answer: nothing here is a passing failure.
        bitpin_settings = {
            "BITPIN_API_BASE_URL": bitpin.url,
            "BITPIN_API_KEY": bitpin.key,
            "BITPIN_READ_TIMEOUT": 10.0,
            "BITPIN_CONNECT_TIMEOUT": TEST_CONNECT_TIMEOUT * 10,
        }
        try:
            with override_settings(**bitpin_settings):
                from django.conf import settings

                concurrency = settings.BITPIN_SWEEP_CONCURRENCY
                ours = repeat(lambda: sweep(count), times=sizes.reps, before=lambda: make_pending(members, month))
                # One at a time, a thousand look-ups and decisions outlast the job's 60 s budget (the
                # sweep would leave the rest to its next run): the baseline gets all the time it needs.
                with override_settings(BITPIN_SWEEP_CONCURRENCY=1), unlimited_budget():
                    baseline = repeat(
                        lambda: sweep(count), times=sizes.slow_reps, before=lambda: make_pending(members, month)
                    )
        finally:
            remove_pending()
    figure = Figure.of(ours, note=f"{concurrency} look-ups at once")
    return [
        Row(
            scenario="5. Verification sweep",
            what=f"{count:,} pending payments, Bitpin answering after {DELAY * 1000:.0f} ms each",
            ours=figure,
            baseline=Figure.of(baseline),
            baseline_what="same sweep, one look-up at a time",
            target="< 10 s",
            met=figure.value < 10,
        )
    ]
