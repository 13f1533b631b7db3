"""django-unfold's configuration: the admin's look, sidebar and dashboard callback.

Every page of the sidebar is readable by operators and inspectors alike (fund.admin.roles); what
each may change is decided by the admin classes, so no item needs a permission callback.
"""

import os

from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

# With REDIS_URL the queue lives in Redis and django-q2's queue table has no admin page to link to
# (config.settings has read .env into the environment before importing this module).
QUEUE_IN_DATABASE = not os.environ.get("REDIS_URL")

UNFOLD = {
    "SITE_TITLE": _("Saghat"),
    "SITE_HEADER": _("Saghat fund"),
    "SITE_SUBHEADER": _("Friendly USDT loan fund"),
    "SITE_URL": "/",
    "SITE_SYMBOL": "savings",
    "STYLES": [lambda request: static("fund/admin.css")],
    "SCRIPTS": [lambda request: static("fund/admin.js")],
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("fund/favicon.svg")},
    ],
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_LANGUAGES": True,
    "DASHBOARD_CALLBACK": "fund.admin.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": [
            {
                "title": _("Fund"),
                "separator": False,
                "items": [
                    {"title": _("Dashboard"), "icon": "dashboard", "link": reverse_lazy("admin:index")},
                    {"title": _("Members"), "icon": "group", "link": reverse_lazy("admin:fund_user_changelist")},
                    {
                        "title": _("Payments"),
                        "icon": "payments",
                        "link": reverse_lazy("admin:fund_payment_changelist"),
                        "badge": "fund.admin.dashboard.pending_payments_badge",
                    },
                    {
                        "title": _("Loans"),
                        "icon": "account_balance",
                        "link": reverse_lazy("admin:fund_loan_changelist"),
                    },
                    {
                        "title": _("Payouts"),
                        "icon": "send_money",
                        "link": reverse_lazy("admin:fund_payout_changelist"),
                    },
                    {"title": _("Draws"), "icon": "casino", "link": reverse_lazy("admin:fund_draw_changelist")},
                    {
                        "title": _("Notifications"),
                        "icon": "notifications",
                        "link": reverse_lazy("admin:fund_notification_changelist"),
                    },
                    {
                        "title": _("Linked chats"),
                        "icon": "chat",
                        "link": reverse_lazy("admin:fund_chatlink_changelist"),
                    },
                    {
                        "title": _("Wallet readings"),
                        "icon": "account_balance_wallet",
                        "link": reverse_lazy("admin:fund_reconciliation_changelist"),
                    },
                    {
                        "title": _("Fund configuration"),
                        "icon": "settings",
                        "link": reverse_lazy("admin:fund_fundconfig_changelist"),
                    },
                    {
                        "title": _("Roles (groups)"),
                        "icon": "badge",
                        "link": reverse_lazy("admin:auth_group_changelist"),
                    },
                ],
            },
            {
                "title": _("Background jobs"),
                "separator": True,
                "collapsible": True,
                "items": [
                    *(
                        [
                            {
                                "title": _("Queued jobs"),
                                "icon": "schedule",
                                "link": reverse_lazy("admin:django_q_ormq_changelist"),
                            }
                        ]
                        if QUEUE_IN_DATABASE
                        else []
                    ),
                    {
                        "title": _("Failed jobs"),
                        "icon": "error",
                        "link": reverse_lazy("admin:django_q_failure_changelist"),
                    },
                    {
                        "title": _("Successful jobs"),
                        "icon": "task_alt",
                        "link": reverse_lazy("admin:django_q_success_changelist"),
                    },
                    {
                        "title": _("Scheduled jobs"),
                        "icon": "event_repeat",
                        "link": reverse_lazy("admin:django_q_schedule_changelist"),
                    },
                ],
            },
        ],
    },
}
