"""The back office (django-unfold): one module per part of the fund; importing registers them."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from fund.admin import (  # noqa: F401
    config,
    draws,
    groups,
    jobs,
    loans,
    members,
    notifications,
    payments,
    payouts,
    reconciliations,
)

admin.site.index_title = _("Dashboard")
