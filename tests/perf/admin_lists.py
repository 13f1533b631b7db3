"""Scenario 4: the back office's two big lists, members and payments, page by page.

Each page is requested through Django's test client as the operator (every middleware, unfold's
templates, the sidebar's badges). Baselines are the same admin classes as Django's defaults would
have them, patched on the registered instance for the baseline's requests only:

- payments: Django's Paginator (a COUNT(*) over the table, twice with the full result count) and
  no ``list_select_related`` (a query per row for the member);
- members: the standing columns computed per row with the ledger's single-member functions
  (balance_of, active_loan, a paid-this-month query) instead of the list's annotations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.test import Client

from fund import ledger
from fund.admin.display import money
from fund.jalali import JalaliMonth
from fund.models import Payment, User
from tests.perf.fund import Fund, Sizes
from tests.perf.harness import Figure, Row, repeat

TARGET = "< 500 ms, bounded queries"


@contextmanager
def patched(instance: Any, **attributes: Any) -> Iterator[None]:
    """Set attributes on one object for a while (instance attributes shadow the class's)."""
    missing = object()
    saved = {name: instance.__dict__.get(name, missing) for name in attributes}
    for name, value in attributes.items():
        setattr(instance, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                delattr(instance, name)
            else:
                setattr(instance, name, value)


def django_defaults_for_payments() -> dict[str, Any]:
    return {"paginator": Paginator, "show_full_result_count": True, "list_select_related": False}


def per_row_members(member_admin: Any) -> dict[str, Any]:
    month = JalaliMonth.current()
    plain = super(type(member_admin), member_admin).get_queryset

    def loan_remaining(obj: User) -> Any:
        loan = ledger.active_loan(obj)
        return money(loan.remaining) if loan else "—"

    return {
        "get_queryset": plain,
        "balance_display": lambda obj: money(ledger.balance_of(obj)),
        "loan_remaining_display": loan_remaining,
        "paid_display": lambda obj: Payment.objects.filter(
            member=obj, month=month, status=Payment.Status.VERIFIED
        ).exists(),
    }


def page(client: Client, url: str, expect: str):
    def get() -> None:
        response = client.get(url)
        if response.status_code != 200 or expect.encode() not in response.content:
            raise SystemExit(f"{url} answered {response.status_code} without “{expect}”")

    return get


def _row(what: str, ours: Any, baseline: Any | None, baseline_what: str) -> Row:
    figure = Figure.of(ours)
    return Row(
        scenario="4. Admin lists",
        what=what,
        ours=figure,
        baseline=Figure.of(baseline) if baseline is not None else None,
        baseline_what=baseline_what if baseline is not None else "",
        target=TARGET,
        met=figure.value < 0.5,
    )


def run(fund: Fund, sizes: Sizes) -> list[Row]:
    client = Client()
    client.force_login(fund.operator)
    members_admin = admin.site._registry[User]
    payments_admin = admin.site._registry[Payment]
    month = fund.last_month
    member = User.objects.members().order_by("username").first().username
    rows = []
    n_members, n_payments = f"{fund.members:,}", f"{fund.payments:,}"

    member_pages = [
        (f"members ({n_members}): first page", "/admin/fund/user/", member, True),
        ("members: sorted by balance", "/admin/fund/user/?o=-2", "member", False),
        ("members: search by name", "/admin/fund/user/?q=member12", "member12", True),
    ]
    dashboard = repeat(page(client, "/admin/", "admin"), times=sizes.reps, warmup=1)
    rows.append(
        Row(
            scenario="4. Admin lists",
            what="the dashboard (this month, fund totals, 24-month chart, projected ranking)",
            ours=Figure.of(dashboard),
            target="none set (reported)",
        )
    )
    for what, url, expect, with_baseline in member_pages:
        ours = repeat(page(client, url, expect), times=sizes.reps, warmup=1)
        baseline = None
        if with_baseline:
            with patched(members_admin, **per_row_members(members_admin)):
                baseline = repeat(page(client, url, expect), times=sizes.reps, warmup=1)
        rows.append(_row(what, ours, baseline, "standing computed per row"))

    payment_pages = [
        (f"payments ({n_payments}): first page", "/admin/fund/payment/", "member"),
        ("payments: page 100", "/admin/fund/payment/?p=100", "member"),
        (f"payments: month {month}", f"/admin/fund/payment/?month={month}", "member"),
        ("payments: search a member", f"/admin/fund/payment/?q={member}", member),
    ]
    for what, url, expect in payment_pages:
        ours = repeat(page(client, url, expect), times=sizes.reps, warmup=1)
        with patched(payments_admin, **django_defaults_for_payments()):
            baseline = repeat(page(client, url, expect), times=sizes.reps, warmup=1)
        rows.append(_row(what, ours, baseline, "Django defaults: COUNT(*), no select_related"))
    return rows
