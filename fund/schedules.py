"""The worker's recurring jobs. Created by migration 0002 and again by ``setup_fund`` (idempotent)."""

from django.utils import timezone
from django.utils.translation import gettext_noop
from django_q.models import Schedule

from fund import tasks

SCHEDULES = [
    # name (stored in English, shown translated by the admin), func, every N minutes
    (gettext_noop("Retry pending Bitpin verifications"), tasks.SWEEP_PENDING_PAYMENTS, 1),
    (gettext_noop("Run the month's draw when everyone has paid"), tasks.AUTO_DRAW, 10),
    (gettext_noop("Remind members who have not paid"), tasks.SEND_REMINDERS, 60),
    (gettext_noop("Compare the wallet with the ledger"), tasks.RECONCILE_WALLET, 24 * 60),
    (gettext_noop("Worker heartbeat"), tasks.HEARTBEAT, 1),
    # Checks the Tehran date each hour: the month's commitment is out within its first hour.
    (gettext_noop("Publish the month's seed commitment"), tasks.PUBLISH_COMMITMENT, 60),
    (gettext_noop("Deliver notifications"), tasks.DELIVER_NOTIFICATIONS, 1),
    (gettext_noop("Read the bots' messages (when there is no webhook)"), tasks.POLL_BOT_UPDATES, 1),
    (gettext_noop("Tell operators about payments pending for over a day"), tasks.WARN_PENDING_PAYMENTS, 60),
]


def ensure_schedules() -> None:
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
            create_defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
                "next_run": timezone.now(),
            },
        )
