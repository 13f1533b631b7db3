"""Every error of the API is ``{"detail": "…"}`` in the language of the request (Persian by default).

ninja's own answers (401 "Unauthorized", 403, 404, the 422 list of pydantic errors) are replaced by
the handlers below; what never reaches ninja (an unknown address under /api/, a wrong method, a
server error) is turned into the same shape by ``JsonErrorsMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled, ValidationError

from fund.api.schemas import Error

API_PREFIX = "/api/"


def responses(success: dict[int, Any], *errors: int) -> dict[int, Any]:
    """An operation's ``response=``: its success and every error it may answer, all declared."""
    return {**success, **dict.fromkeys(errors, Error)}


def status_message(status: int) -> str:
    """The generic message for a status, when nothing more precise is known."""
    messages = {
        400: _("The request cannot be processed."),
        401: _("Log in first: send a valid bearer token (it may have expired or been revoked)."),
        403: _("You are not allowed to do this."),
        404: _("Not found."),
        405: _("This method is not allowed at this address."),
        422: _("The request is malformed."),
        429: _("Too many attempts. Try again later."),
    }
    return messages.get(status, _("Something went wrong on our side. Try again later."))


# What was wrong with a field of a malformed request, by pydantic's error type.
def _problem(kind: str) -> str:
    problems = {
        "missing": _("this field is required"),
        "json_invalid": _("the body is not valid JSON"),
        "model_attributes_type": _("the body must be a JSON object"),
        "dict_type": _("the body must be a JSON object"),
        "decimal_parsing": _("must be a number written as text, like 20.5"),
        "decimal_type": _("must be a number written as text, like 20.5"),
        "finite_number": _("must be a finite number"),
        "string_type": _("must be text"),
        "int_parsing": _("must be a whole number"),
        "int_type": _("must be a whole number"),
        "literal_error": _("is not one of the allowed values"),
        "string_too_long": _("is too long"),
        "string_pattern_mismatch": _("is not in the expected format"),
        "greater_than_equal": _("is too small"),
        "less_than_equal": _("is too large"),
    }
    return problems.get(kind, _("is not valid"))


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One sentence naming the first bad field of a malformed request."""
    if not errors:
        return status_message(422)
    error = errors[0]
    location = [
        str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "payload", "filters")
    ]
    field = ".".join(location)
    if not field:
        return _("The request is malformed: %(problem)s.") % {"problem": _problem(error.get("type", ""))}
    return _("The request is malformed: %(field)s — %(problem)s.") % {
        "field": field,
        "problem": _problem(error.get("type", "")),
    }


def install_handlers(api: NinjaAPI) -> None:
    def error(request: HttpRequest, status: int, detail: str) -> HttpResponse:
        return api.create_response(request, {"detail": detail}, status=status)

    @api.exception_handler(ValidationError)
    def malformed(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return error(request, 422, validation_message(exc.errors))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # ninja's "Cannot parse request body" (400) for a body that is not JSON: a malformed body.
            return error(request, 422, validation_message([{"loc": ("body",), "type": "json_invalid"}]))
        # ninja's own defaults are English; ours are already in the request's language.
        generic = isinstance(exc, Throttled) or (
            isinstance(exc, AuthenticationError | AuthorizationError) and exc.message in ("Unauthorized", "Forbidden")
        )
        return error(request, exc.status_code, status_message(exc.status_code) if generic else exc.message)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error(request, 404, status_message(404))


class JsonErrorsMiddleware:
    """Under /api/, an error answered outside ninja (unknown address, wrong method, server error,
    a lockout page) becomes ``{"detail": …}`` with the same status and headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replaced = JsonResponse(
                {"detail": status_message(response.status_code)},
                status=response.status_code,
                json_dumps_params={"ensure_ascii": False},
            )
            for header in ("Allow", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response
