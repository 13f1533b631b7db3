"""The original Saghat REST API, served under /api/ on the same services as the admin and the
member page (DESIGN.md, "The JSON API"). Nothing here decides a fund rule: each operation reads
the ledger or calls one service and turns its answer or refusal into JSON.

Documentation: /api/docs (Swagger UI) and /api/openapi.json.
"""

from __future__ import annotations

from ninja import NinjaAPI
from ninja.renderers import JSONRenderer

from fund.api import auth, errors, loans, payments


class Utf8JsonRenderer(JSONRenderer):
    # Persian messages and names readable as they are, not as \\u escapes (the body is UTF-8).
    json_dumps_params = {"ensure_ascii": False}


api = NinjaAPI(
    title="Saghat API",
    version="1",
    description=(
        "The original Saghat API: log in at /api/auth/login for a bearer token, then send it as "
        '`Authorization: Bearer <token>`. Amounts are decimal strings; errors are `{"detail": "…"}` '
        "in the language of Accept-Language (Persian by default)."
    ),
    urls_namespace="api",
    renderer=Utf8JsonRenderer(),
)
api.add_router("/auth", auth.router)
api.add_router("/payments", payments.router)
api.add_router("/loans", loans.router)
errors.install_handlers(api)

__all__ = ["api"]
