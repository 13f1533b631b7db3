"""Standing people and a small history factory, so each test states only what matters to it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone, translation

from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, User

pytest_plugins = [
    "tests.fixtures.history",
    "tests.fixtures.bitpin",
    "tests.fixtures.beacon",
    "tests.fixtures.worker",
    "tests.fixtures.browser",
    "tests.fixtures.botapi",
]

# The month most tests live in: a fixed month keeps tests independent of today's date.
THIS_MONTH = JalaliMonth(1404, 9)


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def _database_vendor() -> str:
    from django.conf import settings

    return "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"


def _broker() -> str:
    from django.conf import settings

    return "redis" if settings.REDIS_URL else "orm"


# A worker killed in the middle of a job leaves it in the ORM broker's table, delivered again later;
# Redis keeps no receipt, so the job is gone (README, "Deployment": run_worker queues lost payment
# checks again). Tests of that redelivery run without REDIS_URL only.
requires_orm_broker = pytest.mark.skipif(
    _broker() != "orm", reason="needs the ORM broker's redelivery of a job whose worker died (Redis has no receipts)"
)

requires_postgres = pytest.mark.skipif(
    _database_vendor() != "postgresql",
    reason="needs PostgreSQL's row locks across connections: run with DATABASE_URL=postgres://… (CI does)",
)


@pytest.fixture(autouse=True)
def empty_redis():
    """With REDIS_URL (CI's third pass), the job queue and the cache live in Redis, which no test
    transaction rolls back: each test starts from an empty Redis database. That database is the
    test run's own (CI uses redis://127.0.0.1:6379/1): it is emptied."""
    from django.conf import settings

    if settings.REDIS_URL:
        from django.core.cache import cache

        cache.clear()  # FLUSHDB: the cache and django-q2's queue share the database
    yield


@pytest.fixture(autouse=True)
def english_outside_requests():
    """Code called directly by a test speaks English; pages still follow the visitor's language
    (LocaleMiddleware, Persian by default). Without this a test would inherit whatever language
    the previous test's last request left active in the thread."""
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def no_projection_from_another_test(request, django_db_blocker):
    """A test that commits leaves the draw inputs' version in the database cache, whose table the
    flush between tests keeps: forget it, so the next test's fund never meets this one's projection."""
    from fund import draw, ledger

    draw._PROJECTIONS.clear()
    yield
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        from django.core.cache import cache

        with django_db_blocker.unblock():
            cache.delete(ledger.DRAW_INPUTS_VERSION_KEY)
        draw._PROJECTIONS.clear()


@pytest.fixture
def config(db) -> FundConfig:
    return FundConfig.load()


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_user(
        "operator", password="operator-pass-1404", is_main=True, is_staff=True, is_superuser=True
    )


@pytest.fixture
def member(db) -> User:
    return User.objects.create_user(
        "alice", password="alice-pass-1404", first_name="Alice", is_member=True, email="alice@example.org"
    )


@pytest.fixture
def other_member(db) -> User:
    return User.objects.create_user(
        "bob", password="bob-pass-1404", first_name="Bob", is_member=True, email="bob@example.org"
    )


@pytest.fixture
def outsider(db) -> User:
    """Logged in but neither member nor operator."""
    return User.objects.create_user("carol", password="carol-pass-1404")


@pytest.fixture
def today_in_this_month(monkeypatch) -> dt.datetime:
    """Time is the edge we control: noon of the 10th day of THIS_MONTH in Tehran (20 days left)."""
    moment = THIS_MONTH.starts_at() + dt.timedelta(days=9, hours=12)
    monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))
    return moment


@pytest.fixture
def web(client, operator):
    """The operator's browser, in English so tests read English messages."""
    client.force_login(operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


__all__ = ["THIS_MONTH", "Decimal", "Loan", "Payment", "on_postgres"]


def empty_inline_management(response) -> dict[str, str]:
    """The management-form fields of every inline on an admin change page, posting no inline rows."""
    data: dict[str, str] = {}
    for inline in response.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data
