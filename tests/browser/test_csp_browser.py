"""The Content-Security-Policy in a real browser: the operator's admin (dashboard with its chart,
lists with filters, a change form, the import page), the API documentation and the member page
run with no console error, so the policy blocks nothing they need (Alpine, htmx, Chart.js,
unfold's styles, Swagger UI)."""

from __future__ import annotations

from typing import Any

import pytest

from fund.jalali import JalaliMonth
from fund.models import FundConfig, User
from tests.fixtures.history import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def collect_errors(page: Any) -> list[str]:
    errors: list[str] = []

    def on_console(message: Any) -> None:
        # A missing favicon is the browser's guess, not a page's resource.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_the_admin_and_the_member_page_run_under_the_policy_without_a_console_error(
    live_server, new_page, log_in, screenshot
):
    FundConfig.load()
    history = History()
    now = JalaliMonth.current()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    alice = history.member("alice", request=60, first_name="Alice")
    history.pay_months(alice, now - 6, 6, fee=25)

    page = new_page(language="en")
    errors = collect_errors(page)
    log_in(page, "operator", "operator-pass-1404", next="/admin/")
    page.wait_for_load_state("networkidle")
    assert page.locator("canvas").count() >= 1  # the chart was drawn by Chart.js
    screenshot(page, "csp-dashboard-en")
    for path in (
        "/admin/fund/payment/",
        "/admin/fund/user/?q=ali",
        f"/admin/fund/user/{alice.pk}/change/",
        "/admin/fund/payment/import/",
        "/admin/fund/fundconfig/",
    ):
        page.goto(path)
        page.wait_for_load_state("networkidle")

    page.goto("/api/docs")  # Swagger UI, from the static files django-ninja ships
    page.wait_for_selector(".swagger-ui .opblock", timeout=15_000)
    screenshot(page, "csp-api-docs")

    member_page = new_page(language="fa", width=390, height=844)
    errors += collect_errors(member_page)
    log_in(member_page, "alice", "alice-pass-1404")
    member_page.wait_for_load_state("networkidle")
    screenshot(member_page, "csp-member-fa-phone")
    assert errors == []
