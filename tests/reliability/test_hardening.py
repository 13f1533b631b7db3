"""Hardening (issue 13, fault 12): a Content-Security-Policy on every page, no caching of anything a
logged-in person sees (member pages, statement downloads), and production refuses a SECRET_KEY
with too little variety. The browser check of the policy is tests/browser/test_csp_browser.py."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.reliability.test_access import run_python

CSP = "Content-Security-Policy"


def policy(response) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in response[CSP].split(";") if part.strip()]
    return {name: values for name, *values in directives}


def test_every_page_carries_the_content_security_policy(client, member, operator, config):
    pages = [reverse("login"), reverse("password-reset"), reverse("healthz"), "/no-such-page/"]
    responses = [client.get(path) for path in pages]
    client.force_login(member)
    for name in ("member-home", "member-statement", "member-statement-csv", "member-draw-table", "member-ranking"):
        responses.append(client.get(reverse(name)))
    client.force_login(operator)
    for name in (
        "admin:index",
        "admin:fund_payment_changelist",
        "admin:fund_user_changelist",
        "admin:fund_draw_changelist",
    ):
        responses.append(client.get(reverse(name)))
    for response in responses:
        assert response.status_code in (200, 404), response
        directives = policy(response)
        # Scripts only from our own static files, never inline; nothing may frame the pages or plugins run.
        assert directives["default-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'", "'unsafe-eval'"]
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
        assert directives["form-action"] == ["'self'"] and directives["base-uri"] == ["'self'"]


def test_member_pages_and_statement_downloads_are_never_cached(client, member, operator, config):
    client.force_login(member)
    for name in ("member-home", "member-statement", "member-statement-csv", "member-draw-table", "member-ranking"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        directives = {part.strip() for part in response["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives, (name, response["Cache-Control"])
    client.force_login(operator)
    download = client.get(reverse("admin:fund_user_statement_download", args=[member.pk]))
    assert download.status_code == 200 and "text/csv" in download["Content-Type"]
    assert {"private", "no-store"} <= {part.strip() for part in download["Cache-Control"].split(",")}


@pytest.mark.parametrize(
    "secret",
    ["x" * 36, "ab" * 30, "012345678" * 4],
    ids=["36-identical-characters", "two-characters-repeated", "nine-distinct-characters"],
)
def test_production_refuses_a_secret_key_with_too_little_variety(secret):
    result = run_python(
        ["-c", "import django; django.setup(); print('started')"],
        {"DEBUG": "false", "ALLOWED_HOSTS": "fund.example.org", "SECRET_KEY": secret},
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SECRET_KEY has too little variety" in result.stderr
    assert "started" not in result.stdout
