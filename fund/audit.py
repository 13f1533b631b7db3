"""Who changed what: django-simple-history records every change, and this module names the actor.

In a web request the actor is the logged-in person (simple-history's middleware). In a background
job there is no request, so the job runs inside ``acting_as_job(name)``: its changes are recorded
as made by the built-in worker account, with the job's name as the change reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

WORKER_USERNAME = "saghat-worker"
_current_job: ContextVar[str | None] = ContextVar("saghat_current_job", default=None)


@contextmanager
def acting_as_job(name: str) -> Iterator[None]:
    token = _current_job.set(name)
    try:
        yield
    finally:
        _current_job.reset(token)


def current_job() -> str | None:
    return _current_job.get()


def worker_user() -> Any:
    """The account that background jobs act as: inactive, no password, never a member."""
    from fund.models import User

    worker = _existing_worker()
    if worker is None:
        worker = User(username=WORKER_USERNAME, first_name="Saghat worker", is_active=False)
        worker.set_unusable_password()
        worker._history_user = None  # its own creation is not attributed to itself
        try:
            with transaction.atomic():  # a savepoint: two jobs (or a sweep's threads) may create it at once
                worker.save()
        except IntegrityError:
            worker = User.objects.get(username=WORKER_USERNAME)
    return worker


def _existing_worker() -> Any:
    from fund.models import User

    return User.objects.filter(username=WORKER_USERNAME).first()


def _job_user() -> Any:
    """The worker account, read once per sweep (fund.coalesce) once it exists: a sweep's threads
    never share an account that one of them created in a transaction not committed yet."""
    from fund import coalesce

    worker = coalesce.remembered("worker-user", _existing_worker)
    return worker if worker is not None else worker_user()


class AuditedHistory(HistoricalRecords):
    def get_history_user(self, instance: Any) -> Any:
        user = super().get_history_user(instance)
        if user is None and current_job() and getattr(instance, "username", None) != WORKER_USERNAME:
            return _job_user()
        return user

    def get_change_reason_for_object(self, instance: Any, history_type: str, using: Any) -> str | None:
        reason = super().get_change_reason_for_object(instance, history_type, using)
        job = current_job()
        return reason or (f"job: {job}" if job else None)


def record_last_login(sender: Any, user: Any, **kwargs: Any) -> None:
    """When the user logged in, written without a save: a login is not a change in the audit trail."""
    user.last_login = timezone.now()
    type(user)._default_manager.filter(pk=user.pk).update(last_login=user.last_login)
