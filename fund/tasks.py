"""django-q2 entry points. Thin: each receives ids or text, loads rows again and calls one service.

Every task is idempotent, because django-q2 may deliver a task twice (after a worker dies, or
when a task outlives ``retry``). Jobs are queued with ``transaction.on_commit`` so a job never
sees a row its caller's transaction has not committed yet.
"""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task

from fund.audit import acting_as_job
from fund.jalali import JalaliMonth

# Dotted names: the schedules in migrations and the admin refer to these.
VERIFY_PAYMENT = "fund.tasks.verify_payment"
SWEEP_PENDING_PAYMENTS = "fund.tasks.sweep_pending_payments"
VERIFY_PAYOUT = "fund.tasks.verify_payout"
RECONCILE_WALLET = "fund.tasks.reconcile_wallet"
RUN_DRAW = "fund.tasks.run_draw"
AUTO_DRAW = "fund.tasks.auto_draw"
SEND_REMINDERS = "fund.tasks.send_reminders"
PUBLISH_COMMITMENT = "fund.tasks.publish_commitment"
DELIVER_NOTIFICATIONS = "fund.tasks.deliver_notifications"
POLL_BOT_UPDATES = "fund.tasks.poll_bot_updates"
WARN_PENDING_PAYMENTS = "fund.tasks.warn_pending_payments"
CHECK_IMPORT = "fund.tasks.check_import"
WRITE_IMPORT = "fund.tasks.write_import"
HEARTBEAT = "fund.health.heartbeat"  # see fund/health.py: the job that proves a worker takes jobs


def queue(func: str, *args: object, group: str | None = None) -> None:
    """Queue a job once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: async_task(func, *args, group=group))


def verify_payment(payment_id: int) -> str:
    from fund import payments

    with acting_as_job("verify payment"):
        return payments.verify_with_bitpin(payment_id=payment_id)


def sweep_pending_payments() -> int:
    """Retry every pending Bitpin check that is due: payments and payouts (one sweep)."""
    from fund import verification

    with acting_as_job("retry pending verifications"):
        return verification.sweep()


def verify_payout(payout_id: int) -> str:
    from fund import payouts

    with acting_as_job("verify payout"):
        return payouts.verify_payout_with_bitpin(payout_id=payout_id)


def reconcile_wallet() -> str:
    from fund import reconciliation

    with acting_as_job("daily reconciliation"):
        return reconciliation.reconcile_daily()


def run_draw(month: str, triggered_by: str = "") -> str:
    from fund import draw

    with acting_as_job("run draw"):
        return draw.run_draw_job(month=JalaliMonth.parse(month), triggered_by=triggered_by)


def auto_draw() -> str:
    from fund import draw

    with acting_as_job("automatic draw"):
        return draw.run_automatic_draw()


def send_reminders() -> int:
    from fund import reminders

    with acting_as_job("send reminders"):
        return reminders.send_due_reminders()


def publish_commitment() -> str:
    from fund import proof

    with acting_as_job("publish seed commitment"):
        return proof.publish_month_commitment()


def deliver_notifications() -> int:
    from fund import notifications

    return notifications.deliver_due()


def poll_bot_updates() -> int:
    from fund import bot

    return bot.poll_updates()


def warn_pending_payments() -> int:
    from fund import notifications

    return notifications.warn_about_pending_payments()


def check_import(job_id: int) -> str:
    from fund.imports import jobs

    with acting_as_job("check import"):
        return jobs.check_import_job(job_id)


def write_import(job_id: int) -> str:
    from fund.imports import jobs

    with acting_as_job("write import"):
        return jobs.write_import_job(job_id)
