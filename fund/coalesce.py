"""Once-after-commit actions, coalesced while a job decides many records in a row.

Two things every decision does after its transaction commits are the same whichever record it
was: tell other processes that the draw's inputs changed (fund.ledger) and queue the job that
delivers the outbox (fund.notifications). A member's payment or an operator's click commits them
once. The verification sweep decides up to thousands of payments one transaction each; doing
both after every one of them tripled the sweep's queries. Inside ``coalescing()`` each action runs
at most once per ``FLUSH_EVERY`` seconds and once more when the block ends, so other processes see
the sweep's decisions within a second and nothing waits for the end of a long sweep.

Within the block, ``remembered(key, factory)`` also keeps what every decision reads alike and
the block does not change (the worker account its history names, the fund's configuration for
the messages' wording) instead of reading it again for each record.

An action that ran is never lost: a rolled-back transaction registers nothing (Django's
``on_commit``), and the block's end runs whatever is still waiting, even when the block raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

# How long a coalesced action may wait at most while the block is still running.
FLUSH_EVERY = 1.0

_local = threading.local()  # Django's connections are per thread: so is the batch


class _Batch:
    """Shared by the threads that ``joined`` it (the sweep's deciding threads): hence the lock."""

    def __init__(self) -> None:
        self.waiting: dict[str, Callable[[], None]] = {}
        self.remembered: dict[str, Any] = {}
        self.flushed_at = time.monotonic()
        self.lock = threading.Lock()

    def add(self, key: str, action: Callable[[], None]) -> None:
        with self.lock:
            self.waiting[key] = action
            due = time.monotonic() - self.flushed_at >= FLUSH_EVERY
        if due:
            self.flush()

    def remember(self, key: str, factory: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.remembered:
                return self.remembered[key]
        value = factory()  # outside the lock: it reads the database
        with self.lock:
            return self.remembered.setdefault(key, value)

    def flush(self) -> None:
        with self.lock:
            waiting, self.waiting = self.waiting, {}
            self.flushed_at = time.monotonic()
        for key, action in waiting.items():
            try:
                action()
            except Exception:  # like on_commit(robust=True): one failing action never stops the others
                log.exception("the coalesced action %s failed", key)


def after_commit_once(key: str, action: Callable[[], None], *, robust: bool = False) -> None:
    """Run ``action`` after this transaction commits; within ``coalescing()``, once per flush for ``key``."""
    batch: _Batch | None = getattr(_local, "batch", None)
    if batch is None:
        transaction.on_commit(action, robust=robust)
    else:
        transaction.on_commit(lambda: batch.add(key, action))


def remembered[T](key: str, factory: Callable[[], T]) -> T:
    """``factory()``, read once per ``coalescing()`` block for ``key`` (outside a block: every time)."""
    batch: _Batch | None = getattr(_local, "batch", None)
    if batch is None:
        return factory()
    return batch.remember(key, factory)


@contextmanager
def coalescing() -> Iterator[None]:
    """Coalesce ``after_commit_once`` actions registered in this thread until the block ends."""
    if getattr(_local, "batch", None) is not None:  # nested: the outer block flushes
        yield
        return
    _local.batch = batch = _Batch()
    try:
        yield
    finally:
        _local.batch = None
        batch.flush()


def current() -> _Batch | None:
    """This thread's block, for another thread to join."""
    return getattr(_local, "batch", None)


@contextmanager
def joined(batch: _Batch | None) -> Iterator[None]:
    """Register this thread's actions in another thread's block (which flushes them at its end)."""
    _local.batch = batch
    try:
        yield
    finally:
        _local.batch = None
