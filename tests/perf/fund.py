"""The benchmark's fund: built once with the demo generator (fund.demo.generate_fund), then reused.

Sizes are the issue's (10,000 members × 120 months of verified history, so 1,200,000 payments) or,
with ``--quick``, small enough to check the harness in about a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection

from fund.demo import generate_fund
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, User

PREFIX = "member"
OPERATOR = "perf-operator"


@dataclass(frozen=True)
class Sizes:
    members: int
    months: int
    import_rows: int
    default_import_rows: int  # django-import-export's default import is timed on this many rows
    sweep_payments: int
    page_requests: int  # in-process member page requests per repetition set
    http_requests: int  # requests sent to gunicorn per throughput measurement
    reps: int  # repetitions of our code
    slow_reps: int  # repetitions of baselines that take tens of seconds


FULL = Sizes(
    members=10_000,
    months=120,
    import_rows=100_000,
    default_import_rows=3_000,
    sweep_payments=1_000,
    page_requests=30,
    http_requests=400,
    reps=5,
    slow_reps=3,
)
QUICK = Sizes(
    members=300,
    months=24,
    import_rows=3_000,
    default_import_rows=300,
    sweep_payments=100,
    page_requests=10,
    http_requests=60,
    reps=3,
    slow_reps=1,
)


@dataclass(frozen=True)
class Fund:
    members: int
    payments: int
    loans: int
    first_month: JalaliMonth
    last_month: JalaliMonth
    operator: User
    built_seconds: float | None  # None when an existing fund was reused (--keep)


def existing_fund(sizes: Sizes) -> bool:
    """A fund of exactly these sizes is already in the database (kept from an earlier run)."""
    members = User.objects.filter(username__startswith=PREFIX, is_member=True).count()
    return members == sizes.members and Payment.objects.count() >= sizes.members * sizes.months


def build_fund(sizes: Sizes, *, log: Callable[[str], None] = print) -> Fund:
    FundConfig.load()
    built = None
    if not existing_fund(sizes):
        if User.objects.exists():
            raise SystemExit("The benchmark database holds another fund: run without --keep to rebuild it.")
        log(f"building the fund: {sizes.members:,} members × {sizes.months} months (fund.demo.generate_fund) …")
        start = time.perf_counter()
        generate_fund(members=sizes.members, months=sizes.months, username_prefix=PREFIX)
        built = time.perf_counter() - start
        log(f"  built in {built:,.1f} s")
    log("vacuuming and analysing the tables …")
    analyse()
    operator = User.objects.filter(username=OPERATOR).first() or User.objects.create_user(
        OPERATOR, password="perf-operator-pass", is_main=True, is_staff=True, is_superuser=True
    )
    months = Payment.objects.order_by("month").values_list("month", flat=True)
    return Fund(
        members=User.objects.members().count(),
        payments=Payment.objects.count(),
        loans=Loan.objects.count(),
        first_month=months.first(),
        last_month=months.last(),
        operator=operator,
        built_seconds=built,
    )


def analyse() -> None:
    """The state autovacuum keeps a production database in: planner statistics and, on PostgreSQL,
    the visibility map that lets index-only scans skip the table."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
