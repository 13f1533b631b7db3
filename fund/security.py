"""Login throttling with Django's own cache: after repeated failures a user name is paused.

We count in the shared cache (the database cache by default, Redis when configured) rather than
add django-axes: the rule is small, and every process (gunicorn workers) sees the same counters.
Failures are counted per user name *and* per client address, so one attacker cannot lock out a
member from elsewhere by guessing from many addresses without also being paused per address.
"""

from __future__ import annotations

import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _


def _keys(username: str, request: HttpRequest | None) -> list[str]:
    address = (request.META.get("REMOTE_ADDR", "") if request else "") or "unknown"
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:user:{digest}", f"login-fail:addr:{address}"]


def seconds_locked(username: str, request: HttpRequest | None) -> int:
    """0 when a login may be tried, otherwise the seconds until the pause ends."""
    now = time.time()
    waits = []
    for key in _keys(username, request):
        failures = cache.get(key) or []
        recent = [t for t in failures if now - t < settings.LOGIN_FAILURE_WINDOW]
        if len(recent) >= settings.LOGIN_FAILURE_LIMIT:
            waits.append(settings.LOGIN_FAILURE_WINDOW - (now - min(recent)))
    return math.ceil(max(waits)) if waits else 0


def record_failure(username: str, request: HttpRequest | None) -> None:
    now = time.time()
    for key in _keys(username, request):
        failures = [t for t in (cache.get(key) or []) if now - t < settings.LOGIN_FAILURE_WINDOW]
        cache.set(key, [*failures, now], settings.LOGIN_FAILURE_WINDOW)


def clear_failures(username: str, request: HttpRequest | None) -> None:
    cache.delete(_keys(username, request)[0])


class ThrottledAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": _("Too many failed logins. Try again in %(minutes)s minutes."),
    }

    def clean(self) -> dict:
        username = self.cleaned_data.get("username") or ""
        wait = seconds_locked(username, self.request)
        if wait:
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": math.ceil(wait / 60)}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            record_failure(username, self.request)
            raise
        clear_failures(username, self.request)
        return cleaned
