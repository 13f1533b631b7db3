"""``manage.py health``: is the worker doing its work? For a platform's health check or a person.

Exit status 0 when jobs are moving, 1 when the worker is stalled, has never reported, or the
database cannot be reached; one or two plain sentences say which (fund/health.py has the rule).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from fund.health import worker_health


class Command(BaseCommand):
    help = "Say whether the worker is doing its work; exit 1 when it is stalled or has never reported."

    def handle(self, *args: object, **options: object) -> None:
        try:
            health = worker_health()
        except DatabaseError as error:
            raise CommandError(f"Cannot read the worker's state from the database: {error}") from None
        if health.stalled:
            self.stderr.write(health.summary())
            raise SystemExit(1)
        self.stdout.write(health.summary())
