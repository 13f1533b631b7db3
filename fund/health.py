"""Is the worker doing its work? The heartbeat, the oldest queued job, and the rule for "stalled".

A django-q2 cluster can stop silently: a worker process killed while it waits for a job (kill -9,
the out-of-memory killer) dies holding the lock of the cluster's task queue (a
``multiprocessing.Queue``, whose reader lock is taken while a worker blocks in ``get()``). The
sentinel replaces the dead process, but no worker can ever take a job again, and nothing says so:
payments stay pending and draws never run. That is an open django-q2 bug, so Saghat makes it
visible and heals it:

- the ``heartbeat`` job (scheduled every minute; ``run_worker`` also queues one whenever the last
  beat is older than a third of the limit) records when a worker last ran it;
- the worker is **stalled** when no job has finished, heartbeat included, for
  ``WORKER_STALL_AFTER`` seconds; jobs that are merely busy keep finishing, so a long queue is not
  a stall;
- ``manage.py health`` says so in words (exit 1), the dashboard shows it with the age of the
  oldest queued job, and ``manage.py run_worker`` (the Procfile's worker) restarts the cluster.

Jobs are read from whichever broker is configured (the ORM table or the Redis list).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.signing import BadSignature, SignedPackage

from fund import tasks
from fund.models import WorkerHeartbeat


def heartbeat() -> str:
    """The heartbeat job: a worker took a job from the queue and ran it."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(pk=1, defaults={"beat_at": now})
    return f"alive at {now.isoformat()}"


def queue_heartbeat() -> None:
    """Queue a heartbeat at once (not on commit: ``run_worker`` calls it outside any transaction).

    ``save: False``: the beats are recorded by their own row, not as thousands of job results.
    """
    from django_q.tasks import async_task

    async_task(tasks.HEARTBEAT, q_options={"save": False, "group": "heartbeat"})


@dataclass(frozen=True)
class QueuedJob:
    """A job in the broker, not yet acknowledged: waiting, or taken by a worker and not finished."""

    func: str
    args: tuple
    queued_at: dt.datetime | None


def queued_jobs(limit: int | None = None) -> list[QueuedJob]:
    """The broker's unacknowledged jobs, oldest first (ORM table or Redis list alike)."""
    broker = get_broker()
    if Conf.ORM:
        rows = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key).order_by("pk")
        payloads = [row.payload for row in (rows[:limit] if limit else rows)]
    else:
        payloads = broker.connection.lrange(broker.list_key, 0, (limit or 0) - 1)
    jobs = []
    for payload in payloads:
        try:
            task: dict[str, Any] = SignedPackage.loads(payload)
        except (BadSignature, TypeError, ValueError):
            continue  # a job this installation did not sign: django-q2 drops it as well
        func = task.get("func")
        jobs.append(
            QueuedJob(
                func=func if isinstance(func, str) else f"{func.__module__}.{func.__name__}",
                args=tuple(task.get("args") or ()),
                queued_at=task.get("started"),
            )
        )
    return jobs


def queued_count() -> int:
    broker = get_broker()
    if Conf.ORM:
        return OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key).count()
    return int(broker.connection.llen(broker.list_key))


@dataclass(frozen=True)
class WorkerHealth:
    checked_at: dt.datetime
    stall_after: dt.timedelta
    last_heartbeat: dt.datetime | None
    last_finished: dt.datetime | None  # any job, the heartbeat included
    oldest_queued_at: dt.datetime | None
    queued: int

    @property
    def stalled(self) -> bool:
        return self.last_finished is None or self.checked_at - self.last_finished > self.stall_after

    @property
    def oldest_queued_age(self) -> dt.timedelta | None:
        return None if self.oldest_queued_at is None else max(self.checked_at - self.oldest_queued_at, dt.timedelta())

    def summary(self) -> str:
        """One plain sentence or two, for the health command, logs and the dashboard."""
        if self.last_finished is None:
            state = _("The worker has never reported: is it running?")
        elif self.stalled:
            state = _("The worker is stalled: no job has finished for %(age)s.") % {
                "age": duration(self.checked_at - self.last_finished)
            }
        else:
            state = _("The worker is running: its last job finished %(age)s ago.") % {
                "age": duration(self.checked_at - self.last_finished)
            }
        if not self.queued:
            return state + " " + _("No job is waiting.")
        waiting = ngettext(
            "%(count)s job is waiting; the oldest was queued %(age)s ago.",
            "%(count)s jobs are waiting; the oldest was queued %(age)s ago.",
            self.queued,
        ) % {"count": self.queued, "age": duration(self.oldest_queued_age or dt.timedelta())}
        return f"{state} {waiting}"


def worker_health(now: dt.datetime | None = None) -> WorkerHealth:
    """The worker's state in four small queries."""
    now = now or timezone.now()
    beat = WorkerHeartbeat.objects.filter(pk=1).values_list("beat_at", flat=True).first()
    finished = Task.objects.aggregate(last=Max("stopped"))["last"]
    oldest = queued_jobs(limit=1)
    return WorkerHealth(
        checked_at=now,
        stall_after=dt.timedelta(seconds=settings.WORKER_STALL_AFTER),
        last_heartbeat=beat,
        last_finished=max((t for t in (beat, finished) if t is not None), default=None),
        oldest_queued_at=oldest[0].queued_at if oldest else None,
        queued=queued_count(),
    )


def duration(delta: dt.timedelta) -> str:
    """A short duration in words: "45 seconds", "12 minutes", "3 hours"."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return ngettext("%(n)s second", "%(n)s seconds", seconds) % {"n": seconds}
    if seconds < 2 * 3600:
        return ngettext("%(n)s minute", "%(n)s minutes", seconds // 60) % {"n": seconds // 60}
    return ngettext("%(n)s hour", "%(n)s hours", seconds // 3600) % {"n": seconds // 3600}
