"""Bearer tokens for the JSON API: JWTs signed with PyJWT, and the ninja authentication classes.

A token names its user and carries a fingerprint of the user's password hash, so it stops working
when the password changes; the user is read again on every request, so it also stops working when
the user is deactivated. Tokens expire after ``API_TOKEN_LIFETIME`` seconds. Only the
``Authorization: Bearer`` header authenticates the API: a session cookie never does.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from fund.admin.roles import is_operator
from fund.models import User

ALGORITHM = "HS256"
# Clocks of the web processes may differ by a few seconds.
LEEWAY_SECONDS = 10
_FINGERPRINT_SALT = "fund.api.tokens.password"


def _password_fingerprint(user: User) -> str:
    # salted_hmac of the hash (never the hash itself): the token is readable by whoever holds it.
    return salted_hmac(_FINGERPRINT_SALT, user.password, algorithm="sha256").hexdigest()


def issue_token(user: User, *, issued_at: float | None = None) -> str:
    """A signed token for ``user``, valid for ``API_TOKEN_LIFETIME`` seconds from ``issued_at``."""
    # Real time, not django.utils.timezone.now: PyJWT checks expiry against the real clock.
    now = int(time.time() if issued_at is None else issued_at)
    claims = {
        "sub": str(user.pk),  # PyJWT requires a string subject
        "iat": now,
        "exp": now + settings.API_TOKEN_LIFETIME,
        "pwd": _password_fingerprint(user),
    }
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)


def user_for_token(token: str) -> User | None:
    """The active user the token was issued to, or None when it is forged, expired or revoked."""
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
            leeway=LEEWAY_SECONDS,
        )
        pk = int(claims["sub"])
    except (jwt.InvalidTokenError, TypeError, ValueError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not constant_time_compare(str(claims.get("pwd", "")), _password_fingerprint(user)):
        return None
    return user


class BearerAuth(HttpBearer):
    """Any active user with a valid token."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = user_for_token(token)
        if user is not None:
            # The audit trail (simple-history) names whoever request.user is.
            request.user = user
        return user


class OperatorAuth(BearerAuth):
    """An operator with a valid token; anyone else with a valid token gets 403."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = super().authenticate(request, token)
        if user is not None and not is_operator(user):
            raise AuthorizationError(403, _("Only the fund's operator may do this."))
        return user


bearer = BearerAuth()
operator_only = OperatorAuth()
