"""A property-based fuzz of the JSON API against its own OpenAPI schema (schemathesis).

Every operation gets generated requests that the schema allows, sent with an operator's token
(the operator is also a member, so member-only operations are reached too). No answer may be a
server error, and every answer must match what the schema declares for its status code.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from fund.api.tokens import issue_token
from fund.jalali import JalaliMonth
from fund.models import User

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
# 25 examples per operation keep the suite quick (about 12 operations); positive cases only: the
# requests the schema allows, so every answer must be one the schema declares.
schema.config.generation.update(max_examples=25, modes=[GenerationMode.POSITIVE])


@pytest.fixture
def same_connection():
    """Requests run inside the test's transaction, as with Django's test client: the WSGI handler
    must not close the connection at the start and end of each request."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def auth_headers(same_connection, history) -> dict[str, str]:
    month = JalaliMonth.current()
    boss = User.objects.create_user(
        "boss", password="boss-pass-1404", is_main=True, is_staff=True, is_member=True, loan_request_amount=40
    )
    alice = history.member("alice", request=30)
    for person in (boss, alice):
        history.pay_months(person, month - 3, 3)
    history.pay(alice, month)
    return {"Authorization": f"Bearer {issue_token(boss)}", "Accept-Language": "en"}


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
def test_the_api_keeps_its_schema_and_never_fails(case, auth_headers):
    case.call_and_validate(
        headers=auth_headers,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
