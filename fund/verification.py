"""Checking records with Bitpin, retrying passing failures with back-off: one mechanism for all.

Payments (money in) and payouts (money out: loans and refunds) are checked the same way
(DESIGN.md, "Bitpin verification", "Loan payout"): a job asks Bitpin, the answer falls in one of
three classes, and a passing failure leaves the record pending with its error noted and a next
attempt scheduled. The scheduled sweep retries whatever is due, for every kind at once.

Each kind is a ``Checked``: its model (a ``CheckedWithBitpin``), how to ask Bitpin about one
record, and its service's two decisions (fund.payments, fund.payouts). The job that checks one
record, applying an answer and queueing checks again are written here once, for every kind.
Nothing here decides a record; what the services share is how a decision is taken and written:
once, under the record's row lock (``claim_pending``, ``decide``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import F, Model, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fund import bitpin, coalesce, ledger, tasks

PENDING = "pending"

# Back-off between Bitpin attempts: 1, 2, 4 … minutes, at most an hour (the sweep runs every minute).
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=1)
# A record whose verification job never ran (a worker died) is swept after this long.
LOST_JOB_AFTER = dt.timedelta(minutes=1)
# The sweep claims what it will check for this long, so an overlapping sweep leaves it alone.
SWEEP_LEASE = dt.timedelta(minutes=5)
# The sweep stops starting new lookups after this long: the job must end well within django-q's timeout.
SWEEP_TIME_BUDGET_SECONDS = 60.0
SWEEP_BATCH = 5000
# From this many due records a PostgreSQL sweep decides in its asking threads; fewer are decided in
# turn in the sweep's own thread (one order, as every sweep had before: the ledger's state machine
# replays its histories and needs the same outcome each time).
DECIDE_IN_THREADS_FROM = 50


@dataclass(frozen=True)
class Checked:
    """One kind of record checked with Bitpin."""

    model: type[Model]
    ask: Callable[[Any, httpx.Client | None], bitpin.Answer]  # (record, shared client) → Bitpin's answer
    verify: Callable[[Any, str], object]  # (record, Bitpin's note): the kind's service verifies it
    reject: Callable[[Any, str], object]  # … or rejects it
    refused: type[Exception]  # what those two raise for a record decided meanwhile
    task: str  # the job checking one record (fund.tasks)

    @property
    def name(self) -> str:
        return self.model._meta.model_name  # "payment", "payout": the job results' word

    def check(self, pk: int) -> str:
        """The verification job: ask Bitpin about one pending record and apply the answer.

        Idempotent: a record that is no longer pending is left alone, so a redelivered job or one
        racing a decision by hand changes nothing. Returns a line for the job's result.
        """
        record = self.model.objects.filter(pk=pk).first()
        if record is None:
            return f"{self.name} {pk} does not exist"
        if record.status != PENDING:
            return f"{self.name} {pk} is already {record.status}"
        return self.apply(record, self.answer(record))

    def answer(self, record: Any, client: httpx.Client | None = None) -> bitpin.Answer:
        """Bitpin's answer about ``record``; no network at all when no key is configured (development)."""
        if not settings.BITPIN_API_KEY:
            return bitpin.Answer(bitpin.Outcome.VERIFIED, _("not checked: no Bitpin key configured"))
        return self.ask(record, client)

    def apply(self, record: Any, answer: bitpin.Answer) -> str:
        """Verified or rejected by the kind's service, or a passing failure noted for a retry."""
        try:
            if answer.outcome == bitpin.Outcome.VERIFIED:
                self.verify(record, answer.detail)
            elif answer.outcome == bitpin.Outcome.REJECTED:
                self.reject(record, answer.detail)
            else:
                record_retry(record, answer.detail)
        except self.refused:
            # Someone decided the record while Bitpin was answering: their decision stands.
            return f"{self.name} {record.pk} was decided meanwhile; Bitpin said {answer.outcome}"
        return f"{self.name} {record.pk}: {answer.outcome}: {answer.detail}"

    def requeue(self, pks: list[int]) -> int:
        """Queue a Bitpin check for each pending record among ``pks``; returns how many."""
        pending = list(self.model.objects.filter(pk__in=pks, status=PENDING).values_list("pk", flat=True))
        for pk in pending:
            tasks.queue(self.task, pk)
        return len(pending)


def every_kind() -> list[Checked]:
    """Every kind the sweep retries: money in, then money out."""
    from fund import payments, payouts  # they build on this module

    return [payments.CHECKED, payouts.CHECKED]


def retry_delay(attempts: int) -> dt.timedelta:
    """Back-off after the ``attempts``-th failed attempt: 1, 2, 4 … minutes, at most an hour."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def record_retry(record: Model, error: str) -> None:
    """Note a passing failure and when to try again."""
    # A conditional UPDATE: only a still-pending record is marked for another try.
    attempts = record.attempts + 1
    type(record).objects.filter(pk=record.pk, status=PENDING).update(
        attempts=F("attempts") + 1,
        last_error=error,
        next_attempt_at=timezone.now() + retry_delay(attempts),
    )


# --- deciding: once, under the record's row lock ----------------------------------------------------


def claim_pending[R: Model](record: R, refusal: Callable[[str], Exception], already_decided: str) -> R:
    """Lock the record's row and make sure nobody has decided it yet: the decision is taken once,
    so Bitpin's answer racing a manual decision decides once. Otherwise raises ``refusal`` with the
    kind's ``already_decided`` message (``%(status)s`` is the record's status)."""
    # Not joined with the member (the sweep hands over the one it read; otherwise the notification
    # loads it by id): with many dead rows in the payments' member index (a large import rolled
    # back, before autovacuum has run), the planner spends milliseconds estimating that join.
    claimed = type(record).objects.select_for_update(of=("self",)).select_related("loan").get(pk=record.pk)
    if type(record).member.is_cached(record) and claimed.member_id == record.member_id:
        claimed.member = record.member  # read with the sweep's batch
    if claimed.status != PENDING:
        raise refusal(str(already_decided) % {"status": claimed.get_status_display()})
    return claimed


def decide(record: Model, status: str, by: Model | None, note: str) -> None:
    """Write the decision on a record ``claim_pending`` returned: who, when, why; no more retries."""
    record.status = status
    record.verified_by = by
    record.verified_at = timezone.now()
    record.note = note
    record.next_attempt_at = None
    record.save(update_fields=["status", "verified_by", "verified_at", "note", "next_attempt_at"])
    ledger.draw_inputs_changed()


def required_note(note: str | None, refusal: Callable[[str, str], Exception]) -> str:
    """A decision by hand says why: the note, or ``refusal`` (on the form's ``note`` field)."""
    note = (note or "").strip()
    if not note:
        raise refusal(_("Write a note saying why."), "note")
    return note


# --- the sweep --------------------------------------------------------------------------------------


def sweep(kinds: list[Checked] | None = None) -> int:
    """Check every pending record of every kind that is due again (the scheduled job).

    Returns how many were checked. Bitpin is asked from a pool of threads sharing one HTTP
    client, so a slow API does not serialise the sweep; on PostgreSQL each thread also decides
    what it asked about, on its own connection (``_ask_and_decide_in_threads``), elsewhere the
    answers are decided one by one in this thread.
    """
    deadline = time.monotonic() + SWEEP_TIME_BUDGET_SECONDS
    # Each decision is its own transaction; what follows every commit alike (the draw inputs'
    # version, the delivery job) runs once a second instead of once a record.
    with coalesce.coalescing():
        return sum(_sweep_one(kind, deadline) for kind in (every_kind() if kinds is None else kinds))


def _sweep_one(kind: Checked, deadline: float) -> int:
    records = _claim_due(kind.model)
    if not records:
        return 0
    if not settings.BITPIN_API_KEY:
        for record in records:
            kind.apply(record, kind.answer(record))
        return len(records)
    if connection.vendor == "postgresql" and not connection.in_atomic_block and len(records) >= DECIDE_IN_THREADS_FROM:
        return _ask_and_decide_in_threads(kind, records, deadline)
    checked = 0
    with bitpin.make_client() as client, ThreadPoolExecutor(max_workers=settings.BITPIN_SWEEP_CONCURRENCY) as pool:
        language = translation.get_language()
        futures = {pool.submit(_ask_before, deadline, kind, record, client, language): record for record in records}
        for future in as_completed(futures):
            answer = future.result()
            if answer is not None:
                kind.apply(futures[future], answer)
                checked += 1
    return checked


def _ask_and_decide_in_threads(kind: Checked, records: list[Any], deadline: float) -> int:
    """Each of ``BITPIN_SWEEP_CONCURRENCY`` threads asks Bitpin about a record, then decides it on its
    own database connection, until none is left or the time budget is spent.

    A decision is a few queries and its notification (about 10 ms); one thread deciding a thousand
    answers was the sweep's bottleneck. Decisions are independent (each locks its own row, a
    repayment its loan's), so they run side by side. Only on PostgreSQL (SQLite has one writer) and
    outside a transaction (the threads' connections could not see its rows): elsewhere, and in the
    tests that run inside one, the answers are decided in this thread.
    """
    work: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for record in records:
        work.put(record)
    language, batch = translation.get_language(), coalesce.current()
    checked: list[int] = []
    errors: list[BaseException] = []

    def decide_until_done(client: httpx.Client) -> None:
        try:
            with coalesce.joined(batch), translation.override(language):
                while time.monotonic() <= deadline:
                    try:
                        record = work.get_nowait()
                    except queue.Empty:
                        return
                    kind.apply(record, kind.answer(record, client))
                    checked.append(record.pk)
        except BaseException as error:  # noqa: BLE001 - raised again in the sweep's thread
            errors.append(error)
        finally:
            connections.close_all()  # this thread's own connection

    with bitpin.make_client() as client:
        # Each thread runs in a copy of this context: the job's name, which the audit trail records.
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(decide_until_done, client))
            for _ in range(min(settings.BITPIN_SWEEP_CONCURRENCY, len(records)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return len(checked)


def _ask_before(
    deadline: float, kind: Checked, record: Model, client: httpx.Client, language: str
) -> bitpin.Answer | None:
    # Past the budget the record is left for the next sweep (its lease runs out soon).
    if time.monotonic() > deadline:
        return None
    # The active language is per thread: notes are written in the sweep's language, not the default.
    with translation.override(language):
        return kind.answer(record, client)


def _claim_due(model: type[Model]) -> list[Any]:
    """Pending records due for a check, leased so that an overlapping sweep skips them."""
    now = timezone.now()
    due = Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, created_at__lte=now - LOST_JOB_AFTER)
    with transaction.atomic():
        # skip_locked: two sweeps at once split the work instead of waiting for each other.
        # The member comes along (the decision's notification is addressed to them), not locked.
        queryset = model.objects.select_for_update(skip_locked=True, of=("self",)).select_related("member")
        queryset = queryset.filter(due, status=PENDING)
        records = list(queryset.order_by(F("next_attempt_at").asc(nulls_first=True), "pk")[:SWEEP_BATCH])
        model.objects.filter(pk__in=[r.pk for r in records]).update(next_attempt_at=now + SWEEP_LEASE)
    return records
