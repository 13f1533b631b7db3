"""Logging in and private pages: django-axes pauses a user name *at one address* after repeated
failures, and pages for a logged-in person are never cached (``PrivatePagesMiddleware``).

The pause is per combination of user name and client address (``AXES_LOCKOUT_PARAMETERS``), so a
stranger's failures never lock out another member, even when the whole fund sits behind one
reverse proxy. The client address is read from ``X-Forwarded-For`` only through the configured
number of trusted proxies (``TRUSTED_PROXY_COUNT``); anything a client writes further left is ignored.

django-axes counts failures atomically but does not make "check the pause, check the password,
count the failure" one step: thirty guesses arriving at once would all pass the check before the
first failure is counted. ``authenticate_throttled`` runs the three under one lock per user name
and address (a PostgreSQL advisory lock; on SQLite every write transaction is already exclusive),
so at most ``LOGIN_FAILURE_LIMIT`` passwords are ever checked. Every login path calls it: the
member login form here, and any other (an API login) with the request in hand.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the hop our trusted proxies saw (AXES_CLIENT_IP_CALLABLE).

    Each proxy appends the address it received the request from to ``X-Forwarded-For``; with N
    trusted proxies the client is the N-th hop from the right of ``X-Forwarded-For, REMOTE_ADDR``.
    Entries further left are whatever the client sent and are never trusted.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    chain = [*hops, remote]
    chosen = chain[max(len(chain) - 1 - settings.TRUSTED_PROXY_COUNT, 0)]
    try:
        return str(ipaddress.ip_address(chosen))
    except ValueError:
        return remote


def locked_out_message() -> str:
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return gettext(
        "Too many failed logins with this user name from your address. "
        "Logging in is paused for %(minutes)s minutes; try again after that."
    ) % {"minutes": minutes}


@contextmanager
def _one_attempt_at_a_time(username: str, address: str) -> Iterator[None]:
    """Serialise login attempts for one user name and address until the transaction ends."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            digest = hashlib.sha256(f"saghat-login\0{username}\0{address}".encode()).digest()
            key = int.from_bytes(digest[:8], "big", signed=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        # SQLite: Saghat's transactions begin IMMEDIATE, so this block already runs alone.
        yield


_USERNAME_MAX_LENGTH = 150  # fund.User's user name (Django's AbstractUser)


def authenticate_throttled(request: HttpRequest, *, username: str, password: str) -> AbstractBaseUser | None:
    """``authenticate()`` under the per-(user name, address) lock: the user, or None.

    None when the password is wrong *or* the pair is paused; ``is_locked_out(request)`` tells which.
    The caller logs the user in (``django.contrib.auth.login``), which clears the failures.
    """
    if len(username) > _USERNAME_MAX_LENGTH:
        # No member can have such a name, and django-axes could not store it (PostgreSQL refuses a
        # value longer than its column): a plain wrong login, with nothing to count.
        return None
    with _one_attempt_at_a_time(username, client_ip(request)):
        return authenticate(request=request, username=username, password=password)


def is_locked_out(request: HttpRequest) -> bool:
    """True when the last ``authenticate_throttled`` on this request met (or reached) a pause."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: keep our page (it already says why), with status 429.

    The login page shows ``locked_out_message`` as its form error; an API caller gets it as JSON.
    """
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": locked_out_message()}, status=status)
    if original_response is None:
        return HttpResponse(locked_out_message(), status=status, content_type="text/plain; charset=utf-8")
    original_response.status_code = status
    return original_response


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, authenticating through ``authenticate_throttled``."""

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            self.user_cache = authenticate_throttled(self.request, username=username, password=password)
            if is_locked_out(self.request):
                self.user_cache = None
                raise forms.ValidationError(locked_out_message(), code="locked_out")
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class PrivatePagesMiddleware:
    """``Cache-Control: private, no-store`` on every response to a logged-in visitor.

    Member pages and statement downloads carry one person's money: no shared proxy may keep them,
    and no browser may leave them on disk for the next user of the machine.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
