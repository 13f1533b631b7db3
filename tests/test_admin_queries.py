"""List pages stay fast on big tables: the same number of queries with 10 rows as with 300."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from fund.demo import generate_fund
from fund.models import Draw, Loan, Payment, User
from tests.conftest import THIS_MONTH

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def web(client, operator, config):
    client.force_login(operator)
    return client


def queries(web, url: str) -> list[str]:
    web.get(url)  # warm caches (content types, session) so both counts measure the page alone
    with CaptureQueriesContext(connection) as captured:
        response = web.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def members(count: int) -> list[User]:
    start = User.objects.count()
    return User.objects.bulk_create(
        User(username=f"m{start + i}", first_name="M", is_member=True, loan_request_amount=Decimal(10))
        for i in range(count)
    )


def payments_for(people: list[User]) -> None:
    Payment.objects.bulk_create(
        Payment(member=p, month=THIS_MONTH, fee=Decimal(20), bitpin_id=f"bp-{p.pk}", status="verified") for p in people
    )


def loans_for(people: list[User]) -> None:
    Loan.objects.bulk_create(
        Loan(member=p, month=THIS_MONTH - 1, amount=Decimal(100), monthly_minimum=Decimal(20)) for p in people
    )


def draws(count: int, winner: User) -> None:
    start = Draw.objects.count()
    loans = Loan.objects.bulk_create(
        Loan(member=winner, month=THIS_MONTH - 400 + start + i, amount=Decimal(50), monthly_minimum=Decimal(20),
             state=Loan.State.SETTLED)
        for i in range(count)
    )  # fmt: skip
    Draw.objects.bulk_create(
        Draw(month=loan.month, winner=winner, loan=loan, amount=loan.amount, fund_cash=Decimal(1000), seed="s")
        for loan in loans
    )


def assert_same_queries_with_10_and_300(web, url: str, add_rows) -> None:
    add_rows(10)
    few = queries(web, url)
    add_rows(290)
    many = queries(web, url)
    assert len(few) == len(many), "\n".join(many)


def test_the_members_list(web):
    def add(count: int) -> None:
        people = members(count)
        payments_for(people[::2])
        loans_for(people[1::2])

    assert_same_queries_with_10_and_300(web, reverse("admin:fund_user_changelist"), add)


def test_the_payments_list_never_counts_the_whole_table(web):
    assert_same_queries_with_10_and_300(
        web, reverse("admin:fund_payment_changelist"), lambda n: payments_for(members(n))
    )
    sql = queries(web, reverse("admin:fund_payment_changelist") + "?status__exact=verified")
    counts = [q for q in sql if "COUNT(" in q.upper() and "fund_payment" in q]
    # Only the sidebar's badge counts, and only the pending payments (an index range, not the table).
    assert len(counts) == 1 and "'pending'" in counts[0], counts


def test_the_loans_list(web):
    def add(count: int) -> None:
        people = members(count)
        loans_for(people)
        Payment.objects.bulk_create(
            Payment(member=p, month=THIS_MONTH, fee=Decimal(20), repayment=Decimal(20), loan=loan, status="verified")
            for p, loan in zip(people, Loan.objects.filter(member__in=people), strict=True)
        )

    assert_same_queries_with_10_and_300(web, reverse("admin:fund_loan_changelist"), add)


def test_the_draws_list(web, member):
    assert_same_queries_with_10_and_300(web, reverse("admin:fund_draw_changelist"), lambda n: draws(n, member))


def test_the_dashboard(web):
    assert_same_queries_with_10_and_300(web, reverse("admin:index"), lambda n: generate_fund(members=n, months=3))
