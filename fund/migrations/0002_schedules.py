"""The worker's recurring jobs, created idempotently (never in AppConfig.ready, which runs before
the database is ready and in every process)."""

from django.db import migrations
from django.utils import timezone

SCHEDULES = [
    # name, func, minutes
    ("Retry pending Bitpin verifications", "fund.tasks.sweep_pending_payments", 1),
    ("Run the month's draw when everyone has paid", "fund.tasks.auto_draw", 10),
    ("Remind members who have not paid", "fund.tasks.send_reminders", 60),
]


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": "I",  # Schedule.MINUTES
                "minutes": minutes,
                "repeats": -1,
                "next_run": timezone.now(),
            },
        )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("fund", "0001_initial"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]
    operations = [migrations.RunPython(create_schedules, remove_schedules)]
