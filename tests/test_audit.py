"""The audit trail: every change recorded with who and when; jobs recorded as the worker."""

from decimal import Decimal

from fund import tasks
from fund.audit import WORKER_USERNAME
from fund.models import FundConfig, Payment, User
from tests.conftest import THIS_MONTH


def test_a_change_by_a_job_is_recorded_as_the_worker_with_the_jobs_name(history, settings):
    settings.BITPIN_API_KEY = ""  # verified at once: "not checked"
    alice = history.member("alice")
    payment = history.pay(alice, THIS_MONTH, 20, status=Payment.Status.PENDING)
    tasks.verify_payment(payment.pk)
    latest = payment.history.latest()
    assert latest.status == Payment.Status.VERIFIED
    assert latest.history_user.username == WORKER_USERNAME
    assert latest.history_change_reason == "job: verify payment"
    worker = User.objects.get(username=WORKER_USERNAME)
    assert not worker.is_active and not worker.is_member and not worker.has_usable_password()


def test_changes_record_field_by_field_what_changed(config):
    config.min_fee = Decimal("25")
    config.save()
    new, old = FundConfig.objects.get().history.all()[:2]
    delta = new.diff_against(old)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("min_fee", Decimal("20"), Decimal("25"))]
