"""``manage.py run_worker``: the Procfile's worker. Runs ``qcluster`` and restarts it when it stalls.

django-q2's cluster can stall for good after one of its worker processes is killed (fund/health.py
explains how). This command keeps the cluster as a child process in its own process group and,
every ``WORKER_CHECK_EVERY`` seconds:

- queues a heartbeat job when the last beat is older than a third of ``WORKER_STALL_AFTER``, so a
  working cluster always has something recent to show;
- asks ``fund.health.worker_health``: once the cluster has finished a job since its start, it is
  stalled when no job has finished for ``WORKER_STALL_AFTER`` seconds; a new cluster that has not
  finished one within that time (a minute at least: starting can be slow) is stalled as well.
  A stalled cluster is reported in the log, stopped (SIGTERM, then SIGKILL to its whole group
  after ``STALLED_GRACE`` seconds: a stalled cluster cannot stop by itself) and started anew;
- starts a new cluster when the old one exited by itself.

With the ORM broker, jobs the dead cluster had taken are handed back at once (their lock is
lifted) instead of after django-q2's ``retry`` (5 minutes): nothing else was running them, and
every job is idempotent. Redis keeps no record of taken jobs, so every pending payment whose
verification never ran is queued again (the sweep would find them only after a minute or more).

SIGTERM or Ctrl+C stops the cluster the ordinary way (it finishes the jobs in hand) and exits.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from django.utils.functional import lazy
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ

from fund import health, notifications, payments
from fund.models import Payment

log = logging.getLogger("fund.worker")
MANAGE_PY = Path(__file__).resolve().parents[3] / "manage.py"
STALLED_GRACE = 5  # seconds a stalled cluster gets to stop before its process group is killed
# A new cluster gets at least this long to finish its first job: on a busy machine starting Django
# and forking the processes can take a while, and a cluster restarted while starting never starts.
STARTUP_GRACE = 60
# Seconds a healthy cluster gets to finish its jobs when we are asked to stop: within the 30 s
# platforms commonly allow between SIGTERM and SIGKILL, so the cluster is never left behind.
STOP_GRACE = 25


class Command(BaseCommand):
    help = "Run the worker (qcluster) and restart it whenever its jobs stop moving."

    def handle(self, *args: object, **options: object) -> None:
        Supervisor(stall_after=settings.WORKER_STALL_AFTER, check_every=settings.WORKER_CHECK_EVERY).run()


class Supervisor:
    def __init__(self, *, stall_after: float, check_every: float) -> None:
        self.stall_after = stall_after
        self.check_every = check_every
        self.probe_every = stall_after / 3
        self.cluster: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.started_wall = timezone.now()
        self.taking_jobs = False
        self.last_probe = 0.0
        self.restarts = 0
        self.stop_requested = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        self.start_cluster()
        while self._sleep(self.check_every):
            close_old_connections()
            try:
                self.check()
            except DatabaseError as error:  # the database is away: a new cluster would not help
                log.error("run_worker: cannot read the worker's state: %s", error)
        self.stop_cluster(grace=STOP_GRACE)

    def check(self) -> None:
        assert self.cluster is not None
        if self.cluster.poll() is not None:
            log.critical("run_worker: the cluster exited (status %s); starting a new one.", self.cluster.returncode)
            self.restart()
            return
        state = health.worker_health()
        if not self.taking_jobs and state.last_finished is not None and state.last_finished >= self.started_wall:
            self.taking_jobs = True
            log.info("run_worker: the cluster is taking jobs.")
        starting_for = time.monotonic() - self.started_at
        if self.taking_jobs and state.stalled:
            log.critical("run_worker: %s Restarting the cluster.", state.summary())
            notifications.worker_stalled(key=f"stalled {state.last_finished}", detail=lazy(state.summary, str)())
            self.restart()
            return
        if not self.taking_jobs and starting_for >= max(self.stall_after, STARTUP_GRACE):
            log.critical(
                "run_worker: the cluster has not finished a job since it started %d s ago. Restarting the cluster.",
                starting_for,
            )
            notifications.worker_stalled(key=f"start {self.started_wall}", detail=lazy(state.summary, str)())
            self.restart()
            return
        beat_age = None if state.last_heartbeat is None else (timezone.now() - state.last_heartbeat).total_seconds()
        if (beat_age is None or beat_age > self.probe_every) and time.monotonic() - self.last_probe > self.probe_every:
            health.queue_heartbeat()
            self.last_probe = time.monotonic()

    def start_cluster(self) -> None:
        self.cluster = subprocess.Popen(
            [sys.executable, str(MANAGE_PY), "qcluster"],
            # Its own process group: a stalled cluster is killed whole, sentinel, workers and all.
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.started_wall = timezone.now()
        self.taking_jobs = False  # until a job finishes after this start
        self.last_probe = 0.0
        log.info("run_worker: cluster started (pid %s).", self.cluster.pid)

    def restart(self) -> None:
        self.stop_cluster(grace=STALLED_GRACE)
        released = release_taken_jobs()
        if released:
            log.warning("run_worker: %s job(s) the stopped cluster had taken are queued again.", released)
        self.restarts += 1
        self.start_cluster()
        requeued = requeue_lost_verifications()
        if requeued:
            log.warning(
                "run_worker: %s payment verification(s) the stopped cluster may have lost are queued again.", requeued
            )

    def stop_cluster(self, grace: float) -> None:
        if self.cluster is None:
            return
        if self.cluster.poll() is None:
            self.cluster.send_signal(signal.SIGTERM)
            try:
                self.cluster.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("run_worker: the cluster did not stop within %s s; killing it.", grace)
        try:
            os.killpg(self.cluster.pid, signal.SIGKILL)  # whatever is left of the group we created
        except (ProcessLookupError, PermissionError):
            pass
        self.cluster.wait()

    def _request_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _sleep(self, seconds: float) -> bool:
        """Sleep in short steps so a stop request is seen at once; False once one came."""
        until = time.monotonic() + seconds
        while not self.stop_requested and time.monotonic() < until:
            time.sleep(min(0.2, max(until - time.monotonic(), 0)))
        return not self.stop_requested


def requeue_lost_verifications() -> int:
    """Redis broker: queue again the verification of every pending payment whose job never ran."""
    if Conf.ORM:
        return 0
    never_checked = Payment.objects.filter(status=Payment.Status.PENDING, next_attempt_at__isnull=True)
    return payments.requeue_verification(payment_ids=list(never_checked.values_list("pk", flat=True)))


def release_taken_jobs() -> int:
    """ORM broker: hand back the jobs a stopped cluster had taken (their lock is lifted now).

    Only ever called with our cluster stopped; the ORM broker serves one worker machine (several
    worker machines use Redis, README "Deployment").
    """
    if not Conf.ORM:
        return 0
    now = timezone.now()
    return OrmQ.objects.using(Conf.ORM).filter(key=get_broker().list_key, lock__gt=now).update(lock=now)
