"""The API in a real browser: its documentation page renders every operation under the site's
Content-Security-Policy, and a script on the page (as the original web client) logs in and reads
the profile with the bearer token."""

from __future__ import annotations

from typing import Any

import pytest

from fund.models import FundConfig, User
from tests.browser.test_csp_browser import collect_errors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_SCRIPT = """async () => {
    const login = await fetch("/api/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({username: "alice", password: "alice-pass-1404"})});
    const {access_token} = await login.json();
    const me = await fetch("/api/auth/me", {headers: {"Authorization": `Bearer ${access_token}`}});
    const anonymous = await fetch("/api/auth/me");
    return {login: login.status, me: await me.json(), anonymous: anonymous.status};
}"""


def test_the_documentation_renders_and_a_browser_client_uses_the_token(live_server, new_page, screenshot):
    FundConfig.load()
    User.objects.create_user("alice", password="alice-pass-1404", is_member=True, loan_request_amount=30)
    page: Any = new_page(language="en")
    errors = collect_errors(page)
    page.goto("/api/docs")
    page.wait_for_selector(".opblock-summary-path")
    page.wait_for_load_state("networkidle")
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/api/auth/login", "/api/payments/pay", "/api/loans/start", "/api/loans/{loan_id}"} <= paths
    assert len(page.locator(".opblock").all()) == 12
    screenshot(page, "api-docs")
    assert errors == []  # the policy blocked nothing the documentation needs
    answer = page.evaluate(CLIENT_SCRIPT)
    assert answer["login"] == 200 and answer["anonymous"] == 401
    assert (answer["me"]["username"], answer["me"]["loan_request_amount"]) == ("alice", "30")
