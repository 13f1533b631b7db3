"""Who reaches the back office, and the inspector: reads everything, changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Success, Task

from fund import tasks
from fund.admin.roles import INSPECTORS
from fund.models import Draw, FundConfig, Loan, Payment, User
from tests.conftest import THIS_MONTH

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def inspector(db) -> User:
    user = User.objects.create_user("ivy", password="ivy-pass-1404")
    call_command("create_inspector_group", "--add", "ivy", stdout=open("/dev/null", "w"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def fund(history, member, other_member, config):
    """A drawn month with a loan, a pending payment, and one job of each kind."""
    history.pay_months(member, THIS_MONTH - 2, 2)
    history.pay_months(other_member, THIS_MONTH - 2, 3)
    member.loan_request_amount = Decimal("30")
    member.save()
    history.pay(member, THIS_MONTH)
    tasks.run_draw(str(THIS_MONTH), "operator")
    pending = history.pay(member, THIS_MONTH + 1, status=Payment.Status.PENDING, bitpin_id="bp-pending")
    now = timezone.now()
    job = {"func": "fund.tasks.sweep_pending_payments", "started": now, "stopped": now}
    Task.objects.create(id="ok1", name="ok-job", success=True, **job)
    Task.objects.create(id="bad1", name="bad-job", success=False, **job)
    schedule = Schedule.objects.create(name="every minute", func="fund.tasks.sweep_pending_payments")
    queued = OrmQ.objects.create(key="saghat", payload="x", lock=now)
    return {
        "user": member,
        "payment": pending,
        "loan": Loan.objects.get(),
        "draw": Draw.objects.get(),
        "fundconfig": config,
        "success": Success.objects.get(),
        "failure": Failure.objects.get(),
        "schedule": schedule,
        "ormq": queued,
    }


@pytest.fixture
def as_inspector(client, inspector):
    client.force_login(inspector)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def snapshot() -> dict:
    """Everything an inspector might try to change."""
    return {
        "users": list(User.objects.order_by("pk").values()),
        "payments": list(Payment.objects.order_by("pk").values()),
        "loans": list(Loan.objects.order_by("pk").values()),
        "draws": list(Draw.objects.order_by("pk").values("pk", "winner", "amount", "seed")),
        "config": list(FundConfig.objects.values()),
        "tasks": list(Task.objects.order_by("pk").values("pk")),
        "schedules": list(Schedule.objects.order_by("pk").values()),
        "queue": list(OrmQ.objects.order_by("pk").values("pk")),
    }


def admin_urls(fund) -> list[tuple[str, str, object]]:
    """(name, kind, object) for every registered model's add, change and delete views."""
    found = []
    for model in admin.site._registry:
        opts = model._meta
        obj = fund.get(opts.model_name)
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        found.append((f"{prefix}_add", "add", None))
        if obj is not None:
            found.append((f"{prefix}_change", "change", obj))
            found.append((f"{prefix}_delete", "delete", obj))
    return found


# --- the gate ---------------------------------------------------------------------------------------


def test_strangers_are_sent_to_the_login_page(client, db):
    response = client.get(reverse("admin:fund_payment_changelist") + "?month=1404/09")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fadmin%2Ffund%2Fpayment%2F%3Fmonth%3D1404%2F09"


def test_members_never_see_an_admin_page(client, member):
    member.is_staff = True  # even with staff status, a member without a back-office role is sent home
    member.save()
    client.force_login(member)
    for url in (reverse("admin:index"), reverse("admin:fund_payment_changelist"), reverse("admin:login")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("member-home")


def test_an_operator_without_staff_status_cannot_enter(client, member):
    member.is_main = True
    member.save()
    client.force_login(member)
    assert client.get(reverse("admin:index"))["Location"] == reverse("member-home")


def test_the_command_makes_an_inspector_staff_and_a_group_member(inspector):
    assert inspector.is_staff and inspector.groups.filter(name=INSPECTORS).exists()


# --- reading -------------------------------------------------------------------------------------------


def test_the_inspector_reads_every_list(as_inspector, fund):
    for model in admin.site._registry:
        opts = model._meta
        response = as_inspector.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"), follow=True)
        assert response.status_code == 200, opts.label


def test_the_inspector_reads_every_page_and_history(as_inspector, fund):
    for name, kind, obj in admin_urls(fund):
        if kind != "change":
            continue
        assert as_inspector.get(reverse(name, args=(obj.pk,))).status_code == 200, name
        history = name.replace("_change", "_history")
        if hasattr(obj, "history"):
            assert as_inspector.get(reverse(history, args=(obj.pk,))).status_code == 200, history


def test_the_inspector_reads_the_dashboard_without_the_run_button(as_inspector, fund):
    page = as_inspector.get(reverse("admin:index")).content.decode()
    assert 'id="figure-cash"' in page and "Projected ranking" in page
    assert reverse("admin:fund_draw_run_monthly_draw") not in page


def test_the_inspector_reads_draw_reports_and_statements(as_inspector, fund):
    draw, member = fund["draw"], fund["user"]
    assert (
        'id="draw-winner">Alice (alice)<'
        in as_inspector.get(reverse("admin:fund_draw_change", args=(draw.pk,))).content.decode()
    )
    assert as_inspector.get(reverse("admin:fund_draw_rederive", args=(draw.pk,))).status_code == 302
    assert as_inspector.get(reverse("admin:fund_user_statement_download", args=(member.pk,))).status_code == 200
    assert as_inspector.get(reverse("admin:fund_user_statement_page", args=(member.pk,))).status_code == 200


def test_the_inspector_sees_read_only_pages_without_save_buttons(as_inspector, fund):
    page = as_inspector.get(reverse("admin:fund_user_change", args=(fund["user"].pk,))).content.decode()
    assert 'name="_save"' not in page


# --- changing nothing ---------------------------------------------------------------------------------


def test_every_add_change_and_delete_view_refuses_the_inspector(as_inspector, fund):
    before = snapshot()
    for name, kind, obj in admin_urls(fund):
        args = () if obj is None else (obj.pk,)
        url = reverse(name, args=args)
        if kind != "change":
            assert as_inspector.get(url).status_code == 403, name
        assert as_inspector.post(url, {"post": "yes", "name": "changed", "fee": "1"}).status_code == 403, name
    assert snapshot() == before


def test_every_bulk_action_refuses_the_inspector(as_inspector, fund):
    before = snapshot()
    attempts = [
        ("fund", "payment", ["verify_with_bitpin", "verify_by_hand", "reject"], fund["payment"]),
        ("fund", "user", ["delete_selected"], fund["user"]),
        ("django_q", "success", ["resubmit", "delete_selected"], fund["success"]),
        ("django_q", "failure", ["resubmit", "delete_selected"], fund["failure"]),
        ("django_q", "schedule", ["delete_selected"], fund["schedule"]),
        ("django_q", "ormq", ["delete_selected"], fund["ormq"]),
    ]
    for app, model, actions, obj in attempts:
        url = reverse(f"admin:{app}_{model}_changelist")
        page = as_inspector.get(url).content.decode()
        for name in actions:
            assert f'value="{name}"' not in page, (model, name)
            data = {"action": name, ACTION_CHECKBOX_NAME: [obj.pk], "confirmed": "yes", "note": "x", "post": "yes"}
            as_inspector.post(url, data)
    assert snapshot() == before


def test_every_unfold_action_refuses_the_inspector(as_inspector, fund, django_capture_on_commit_callbacks):
    before = snapshot()
    payment, member = fund["payment"], fund["user"]
    urls = [
        reverse("admin:fund_draw_run_monthly_draw"),
        reverse("admin:fund_payment_verify_by_hand_detail", args=(payment.pk,)),
        reverse("admin:fund_payment_reject_detail", args=(payment.pk,)),
        reverse("admin:fund_user_set_password_link", args=(member.pk,)),
        reverse("admin:auth_user_password_change", args=(member.pk,)),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for url in urls:
            assert as_inspector.get(url).status_code == 403, url
            data = {"confirmed": "yes", "note": "x", "password1": "Xx-long-pass-1404", "password2": "Xx-long-pass-1404"}
            assert as_inspector.post(url, data).status_code == 403, url
    assert snapshot() == before


def test_nobody_can_revert_a_row_from_its_history(as_inspector, client, operator, fund):
    payment = fund["payment"]
    record = payment.history.earliest()
    url = reverse("admin:fund_payment_simple_history", args=(payment.pk, record.history_id))
    Payment.objects.filter(pk=payment.pk).update(note="later note")

    assert as_inspector.get(url).status_code == 200
    assert as_inspector.post(url, {}).status_code == 403
    client.force_login(operator)
    assert client.post(url, {}).status_code == 403
    assert Payment.objects.get(pk=payment.pk).note == "later note"


def test_the_inspector_exports_but_never_imports(as_inspector, fund):
    before = snapshot()
    for model in ("user", "payment", "loan"):
        assert as_inspector.get(reverse(f"admin:fund_{model}_export")).status_code == 200, model
        assert as_inspector.get(reverse(f"admin:fund_{model}_import")).status_code == 403, model
        assert as_inspector.post(reverse(f"admin:fund_{model}_process_import")).status_code == 403, model
    assert snapshot() == before
