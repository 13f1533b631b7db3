"""The audit trail: every change recorded with who and when; jobs recorded as the worker."""

from decimal import Decimal

from django.urls import reverse

from fund import tasks
from fund.audit import WORKER_USERNAME
from fund.models import FundConfig, Loan, Payment, User
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


def test_a_payments_life_is_in_the_history_with_who_did_each_step(
    history, client, settings, today_in_this_month, django_capture_on_commit_callbacks
):
    """Submitted by the member on their page → verified by the job → the loan it completes settles."""
    settings.BITPIN_API_KEY = ""
    alice = history.member("alice")
    loan = history.loan(alice, THIS_MONTH.previous(), 20)
    client.force_login(alice)
    with django_capture_on_commit_callbacks() as queued:
        client.post(reverse("member-pay"), {"fee": "20", "repayment": "20", "bitpin_id": "bp-life"})
    payment = Payment.objects.get(member=alice, month=THIS_MONTH)
    assert len(queued) == 1  # the verification job, queued once the payment committed

    tasks.verify_payment(payment.pk)

    steps = [(h.history_type, h.status, h.history_user.username) for h in payment.history.order_by("history_id")]
    assert steps == [("+", "pending", "alice"), ("~", "verified", WORKER_USERNAME)]
    loan.refresh_from_db()
    assert loan.state == Loan.State.SETTLED
    settled = loan.history.latest()
    assert (settled.state, settled.history_user.username, settled.history_change_reason) == (
        "settled",
        WORKER_USERNAME,
        "job: verify payment",
    )
