"""Once-after-commit actions, coalesced while a job decides many records in a row.

Two things every decision does after its transaction commits are the same whichever record it
was: tell other processes that the draw's inputs changed (fund.ledger) and queue the job that
delivers the outbox (fund.notifications). A member's payment or an operator's click commits them
once. The verification sweep decides up to thousands of payments one transaction each; doing
both after every one of them tripled the sweep's queries. Inside ``coalescing()`` each action runs
at most once per ``FLUSH_EVERY`` seconds and once more when the block ends, so other processes see
the sweep's decisions within a second and nothing waits for the end of a long sweep.

An action that ran is never lost: a rolled-back transaction registers nothing (Django's
``on_commit``), and the block's end runs whatever is still waiting, even when the block raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import transaction

log = logging.getLogger(__name__)

# How long a coalesced action may wait at most while the block is still running.
FLUSH_EVERY = 1.0

_local = threading.local()  # Django's connections are per thread: so is the batch


class _Batch:
    def __init__(self) -> None:
        self.waiting: dict[str, Callable[[], None]] = {}
        self.flushed_at = time.monotonic()

    def add(self, key: str, action: Callable[[], None]) -> None:
        self.waiting[key] = action
        if time.monotonic() - self.flushed_at >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
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
