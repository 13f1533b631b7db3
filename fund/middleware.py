"""The back office's gate: only operators and inspectors reach the admin.

Strangers are sent to the login page; logged-in members (and anyone else without a back-office
role) are sent to their own page, never shown an admin page. What an inspector may do once inside
(read only) is decided by the admin classes, through fund.admin.roles.
"""

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from fund.admin.roles import may_read


class AdminOnlyForOperatorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(reverse("admin:index")):
            user = request.user
            if not user.is_authenticated:
                return redirect(f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}")
            if not may_read(user):
                messages.info(
                    request, _("The back office is for the fund's operators and inspectors; this is your page.")
                )
                return redirect("member-home")
            if _has_nul(request):
                # The admin's list filters pass parameters to the database as they are, and
                # PostgreSQL refuses NUL in text: say so instead of failing with a server error.
                return HttpResponseBadRequest(_("The address contains a NUL character, which is not allowed."))
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())
