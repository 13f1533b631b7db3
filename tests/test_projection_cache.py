"""The projected ranking is never stale (issue 13, fault 9): every write of a draw input shows on the
member page and the dashboard at the next request, in this process and in another one.

The projection is kept in Django's cache (the database cache by default, shared by every process)
under a version the services change when they write a draw input, at once and again on commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal

import pytest
import tablib
from django.db import transaction
from django.urls import reverse

from fund import draw, payments
from fund.imports import run_import
from fund.jalali import JalaliMonth
from fund.models import Payment, User
from tests.conftest import THIS_MONTH, empty_inline_management
from tests.fixtures.worker import BASE_DIR, database_url

RANKING = reverse("member-ranking")
DASHBOARD = reverse("admin:index")

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def fund(history, member, other_member, config):
    """alice paid 20 in each of the last 3 months and asks 40; bob paid 30 in 1404/06, got a loan of
    40 in 1404/07, repaid 20 of it in 1404/08 and has 30 + 20 pending this month (which repays it)."""
    history.pay_months(member, THIS_MONTH - 2, 3)
    payments.change_loan_request(member=member, amount=Decimal("40"))
    history.pay_months(other_member, THIS_MONTH - 3, 1, fee=30)
    loan = history.loan(other_member, THIS_MONTH - 2, 40)
    history.pay(other_member, THIS_MONTH - 1, 30, 20, loan=loan)
    history.pay(other_member, THIS_MONTH, 30, 20, loan=loan, status=Payment.Status.PENDING, bitpin_id="bp-wait")
    return member, other_member


@pytest.fixture
def pages(client, web, other_member):
    """A member's (Bob's) whole projected ranking and the operator's dashboard section, as text."""
    member_client = client.__class__()
    member_client.force_login(other_member)
    member_client.cookies["django_language"] = "en"

    def read() -> dict[str, str]:
        ranking = member_client.get(RANKING)
        dashboard = web.get(DASHBOARD)
        assert ranking.status_code == dashboard.status_code == 200
        board = dashboard.content.decode()
        return {
            "member page": ranking.content.decode(),
            "dashboard": board[board.index('id="projected-ranking"') :],
        }

    return read


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _row(html: str, name: str) -> str:
    """The text of the ranking's row naming ``name`` ("" when no row does)."""
    rows = [_text(row) for row in html.split("<tr")[1:]]
    return next((row for row in rows if name in row), "")


def _import(kind: str, header: list[str], *rows: list[str]) -> None:
    outcome = run_import(kind=kind, dataset=tablib.Dataset(*rows, headers=header), file_name=f"{kind}.csv")
    assert outcome.ok, [str(problem) for problem in outcome.problems]


def _admin_change(web, user: User, **changes: str | None) -> None:
    url = reverse("admin:fund_user_change", args=(user.pk,))
    page = web.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "groups" and not isinstance(v, bool)}
    data |= {"is_member": "on", "date_joined_0": "", "last_login_0": "", **empty_inline_management(page)}
    data.pop("password", None)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    assert web.post(url, data).status_code == 302


# Each write of a draw input, through the path a person or the worker takes, and what it shows.
WRITES: dict[str, tuple[Callable, str, str]] = {
    "Bitpin verifies a repayment that settles a loan": (
        lambda web, alice, bob: payments.verify_with_bitpin(payment_id=Payment.objects.get(bitpin_id="bp-wait").pk),
        "Bob",
        "is not asking for a loan",
    ),
    "the verification sweep settles a loan (its decisions coalesced)": (
        lambda web, alice, bob: (
            Payment.objects.filter(bitpin_id="bp-wait").update(next_attempt_at=THIS_MONTH.starts_at()),
            payments.sweep_pending_payments(),
        ),
        "Bob",
        "is not asking for a loan",
    ),
    "the operator verifies by hand": (
        lambda web, alice, bob: payments.verify_by_hand(
            payment=Payment.objects.get(bitpin_id="bp-wait"), by=User.objects.get(username="operator"), note="bank"
        ),
        "Bob",
        "90.00",
    ),
    "the member changes the loan request on the member page": (
        lambda web, alice, bob: _post_as(alice, reverse("member-loan-request"), {"amount": "55"}),
        "Alice",
        "55.00",
    ),
    "the operator creates a member": (
        lambda web, alice, bob: web.post(
            reverse("admin:fund_user_add"), {"username": "dara", "is_member": "on", "loan_request_amount": "0"}
        ),
        "dara",
        "is not asking for a loan",
    ),
    "the operator makes a member inactive": (
        lambda web, alice, bob: _admin_change(web, alice, is_active=None, loan_request_amount="0"),
        "Alice",
        "",  # her row goes
    ),
    "a draw grants a loan": (
        lambda web, alice, bob: draw.run_draw(month=THIS_MONTH - 1, triggered_by="test"),
        "Alice",
        "has an open loan",
    ),
    "payments are imported": (
        lambda web, alice, bob: _import("payments", ["member", "month", "fee"], ["alice", "1404/05", "25"]),
        "Alice",
        "85.00",
    ),
    "a loan is imported": (
        lambda web, alice, bob: _import("loans", ["member", "month", "amount"], ["alice", "1404/08", "10"]),
        "Alice",
        "has an open loan",
    ),
    "members are imported": (
        lambda web, alice, bob: _import("members", ["username"], ["erfan"]),
        "erfan",
        "is not asking for a loan",
    ),
}


def _post_as(user: User, url: str, data: dict[str, str]) -> None:
    from django.test import Client

    client = Client()
    client.force_login(user)
    assert client.post(url, data).status_code in (200, 302)


@pytest.mark.django_db(transaction=True)  # each write commits, as in production
@pytest.mark.parametrize("write", list(WRITES))
def test_every_write_of_a_draw_input_shows_at_the_next_request(fund, pages, web, write):
    alice, bob = fund
    act, name, shows = WRITES[write]
    before = pages()
    for text in before.values():
        assert _row(text, name) if not shows else shows not in _row(text, name)

    act(web, alice, bob)

    after = pages()
    for where, text in after.items():
        assert _text(text) != _text(before[where]), f"{write}: the {where} did not change"
        if not shows:
            assert not _row(text, name), f"{write}: the {where} still shows {name}"
        else:
            assert shows in _row(text, name), f"{write}: the {where} does not show {shows!r} for {name}"


@pytest.mark.django_db(transaction=True)
def test_a_projection_computed_in_a_rolled_back_transaction_is_never_served(fund, pages):
    """After a rollback ids repeat (SQLite) and a frozen clock repeats the audit trail's moments:
    only an explicit version tells the two states apart."""
    alice, bob = fund
    pages()
    with transaction.atomic():
        payments.change_loan_request(member=alice, amount=Decimal("35"))
        assert "35.00" in _row(pages()["member page"], "Alice")
        transaction.set_rollback(True)
    payments.change_loan_request(member=bob, amount=Decimal("35"))

    after = pages()
    for where, text in after.items():
        assert "35.00" not in _row(text, "Alice"), where
        assert "40.00" in _row(text, "Alice"), where


# --- from another process ------------------------------------------------------------------------------


def _in_another_process(code: str) -> str:
    """Run ``code`` in a fresh Django process on this test's database (and so its database cache)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SAGHAT_TESTING": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = "import django; django.setup()\n" + code
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_write_in_another_process_shows_at_the_next_request_here(history, member, other_member, config, client):
    history.pay_months(member, THIS_MONTH - 2, 3)
    payments.change_loan_request(member=member, amount=Decimal("40"))
    client.force_login(member)
    client.cookies["django_language"] = "en"
    assert "40.00" in _row(client.get(RANKING).content.decode(), "Alice")  # computed and kept here

    # The worker, say, verifies a payment and the member changes their request from another web process.
    _in_another_process(
        "from decimal import Decimal\n"
        "from fund.models import User\n"
        "from fund.payments import change_loan_request\n"
        f"change_loan_request(member=User.objects.get(pk={member.pk}), amount=Decimal('75'))\n"
    )

    assert "75.00" in _row(client.get(RANKING).content.decode(), "Alice")


@pytest.mark.django_db(transaction=True)
def test_another_process_never_serves_a_projection_older_than_a_write_here(history, member, config):
    history.pay_months(member, THIS_MONTH - 2, 3)
    read_there = (
        "from fund.draw import current_projection\n"
        "from fund.jalali import JalaliMonth\n"
        f"report = current_projection(JalaliMonth({THIS_MONTH.year}, {THIS_MONTH.month}))\n"
        "print([row['loan_request_amount'] for row in report['rows']][0])\n"
    )
    assert Decimal(_in_another_process(read_there).strip()) == 0  # computed there and kept in the shared cache

    payments.change_loan_request(member=member, amount=Decimal("45"))

    assert Decimal(_in_another_process(read_there).strip()) == 45
    assert JalaliMonth.current() == THIS_MONTH
