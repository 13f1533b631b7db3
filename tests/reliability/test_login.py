"""Failed logins are paused per user name *and* client address (django-axes, fund/security.py).

A stranger's failures never lock out another member, even with the whole fund behind one reverse
proxy; the client address comes from X-Forwarded-For only through the trusted proxies; and
guesses sent all at once get at most LOGIN_FAILURE_LIMIT passwords checked.
"""

from __future__ import annotations

import threading

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.db.models import F
from django.test import Client
from django.urls import reverse

from fund.models import User
from tests.conftest import requires_postgres

LOGIN = reverse("login")
HOME = reverse("member-home")
PROXY = "10.0.0.2"  # the reverse proxy: every request reaches gunicorn from it
PAUSED = "Too many failed logins with this user name from your address."


def try_login(client: Client, username: str, password: str, address: str = "10.0.0.1", forwarded: str | None = None):
    extra = {"REMOTE_ADDR": address, "HTTP_ACCEPT_LANGUAGE": "en"}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def logged_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == HOME


def test_after_repeated_failures_even_the_right_password_is_refused_for_a_while(client, member, config):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert try_login(client, "alice", "wrong").status_code == 200
    response = try_login(client, "alice", "wrong")  # the failure that reaches the limit says so at once
    assert response.status_code == 429 and PAUSED in response.content.decode()

    response = try_login(client, "alice", "alice-pass-1404")
    assert response.status_code == 429
    assert f"{PAUSED} Logging in is paused for 15 minutes; try again after that." in response.content.decode()
    assert "_auth_user_id" not in client.session

    # Once the window has passed (the failures are that old), the right password works again.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME)
    assert logged_in(try_login(client, "alice", "alice-pass-1404"))


def test_a_paused_login_keeps_the_login_page_in_the_visitors_language(client, member, config):
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
    response = client.post(LOGIN, {"username": "alice", "password": "alice-pass-1404"}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert 'lang="fa"' in response.content.decode() and 'id="login"' in response.content.decode()


def test_a_few_failures_then_success_is_not_throttled_and_clears_the_count(client, member, config):
    for _ in range(2):
        for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
            try_login(client, "alice", "wrong")
        assert logged_in(try_login(client, "alice", "alice-pass-1404"))
        client.logout()


def test_strangers_failing_behind_one_proxy_address_never_lock_out_another_member(client, member, config, settings):
    """The whole fund behind one reverse proxy: five people fail, a sixth logs in."""
    settings.TRUSTED_PROXY_COUNT = 1
    for i in range(5):
        User.objects.create_user(f"member{i}", password=f"member{i}-pass-1404", is_member=True)
        for _ in range(settings.LOGIN_FAILURE_LIMIT + 2):
            try_login(Client(), f"member{i}", "wrong", PROXY, forwarded="203.0.113.7")
        for _ in range(settings.LOGIN_FAILURE_LIMIT + 2):  # made-up names too
            try_login(Client(), f"made-up-{i}", "wrong", PROXY, forwarded="203.0.113.7")
    assert (
        PAUSED in try_login(Client(), "member0", "member0-pass-1404", PROXY, forwarded="203.0.113.7").content.decode()
    )

    # Alice, behind the same proxy, even from the same address as the five.
    assert logged_in(try_login(client, "alice", "alice-pass-1404", PROXY, forwarded="203.0.113.7"))


def test_a_stranger_guessing_a_members_password_pauses_only_the_stranger(client, member, config, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.LOGIN_FAILURE_LIMIT + 3):
        try_login(Client(), "alice", "guess", PROXY, forwarded="198.51.100.66")
    assert PAUSED in try_login(Client(), "alice", "alice-pass-1404", PROXY, forwarded="198.51.100.66").content.decode()
    assert logged_in(try_login(client, "alice", "alice-pass-1404", PROXY, forwarded="203.0.113.7"))


def test_the_client_address_is_read_only_through_the_trusted_proxies(client, member, config, settings):
    """A client cannot escape its pause by writing its own X-Forwarded-For entries."""
    settings.TRUSTED_PROXY_COUNT = 1
    for i in range(settings.LOGIN_FAILURE_LIMIT):
        # The proxy appends the real address; what the client wrote stays on the left and is ignored.
        try_login(Client(), "alice", "guess", PROXY, forwarded=f"192.0.2.{i}, 198.51.100.66")
    forged = try_login(Client(), "alice", "alice-pass-1404", PROXY, forwarded="192.0.2.99, 198.51.100.66")
    assert forged.status_code == 429

    # Without a trusted proxy, X-Forwarded-For is ignored altogether: the address is REMOTE_ADDR.
    settings.TRUSTED_PROXY_COUNT = 0
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        try_login(Client(), "alice", "guess", "198.51.100.77", forwarded="192.0.2.1")
    assert try_login(Client(), "alice", "alice-pass-1404", "198.51.100.77", forwarded="192.0.2.2").status_code == 429
    assert logged_in(try_login(client, "alice", "alice-pass-1404", "198.51.100.78", forwarded="192.0.2.1"))


# --- guesses sent all at once ---------------------------------------------------------------------------

checked_passwords: list[str] = []
_checked_lock = threading.Lock()


class CountingMD5PasswordHasher(MD5PasswordHasher):
    """The test settings' hasher, counting each password it checks (Django's hasher extension point)."""

    def verify(self, password: str, encoded: str) -> bool:
        with _checked_lock:
            checked_passwords.append(password)
        return super().verify(password, encoded)


@requires_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_thirty_simultaneous_wrong_guesses_get_at_most_the_limit_of_passwords_checked(settings):
    User.objects.create_user("alice", password="alice-pass-1404", is_member=True)
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingMD5PasswordHasher"]
    checked_passwords.clear()
    start = threading.Barrier(30)
    statuses: list[int] = []

    def guess(i: int) -> None:
        try:
            start.wait(timeout=30)
            statuses.append(try_login(Client(), "alice", f"guess-{i}", "198.51.100.9").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == 30
    assert len(checked_passwords) == settings.LOGIN_FAILURE_LIMIT
    assert statuses.count(200) == settings.LOGIN_FAILURE_LIMIT - 1 and statuses.count(429) == 30 - statuses.count(200)
    # And the right password is refused too while the pause lasts.
    assert try_login(Client(), "alice", "alice-pass-1404", "198.51.100.9").status_code == 429
