"""The operator's payment work through the admin's HTTP views: record, verify, reject, filter, history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from fund.health import queued_jobs
from fund.models import Payment
from tests.conftest import THIS_MONTH

CHANGELIST = reverse("admin:fund_payment_changelist")
ADD = reverse("admin:fund_payment_add")


pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def pending(history, member, other_member):
    return [
        history.pay(member, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-alice"),
        history.pay(other_member, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-bob"),
    ]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def bulk(web, action: str, payments: list[Payment], **extra: str):
    data = {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in payments], **extra}
    return web.post(CHANGELIST, data, follow=True)


# --- recording a payment ----------------------------------------------------------------------


def test_the_operator_records_a_past_payment_for_a_member(
    web, operator, member, config, django_capture_on_commit_callbacks
):
    data = {"member": member.pk, "month": "۱۴۰۴/۰۷", "fee": "25", "repayment": "", "bitpin_id": "bp-admin-1"}
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(ADD, data, follow=True)

    assert response.status_code == 200
    payment = Payment.objects.get()
    assert (payment.member, payment.month, payment.fee, payment.status) == (
        member, THIS_MONTH - 2, Decimal("25"), Payment.Status.PENDING
    )  # fmt: skip
    assert (payment.source, payment.submitted_by) == (Payment.Source.ADMIN, operator)
    # The verification job, and the delivery of the "payment received" notification.
    assert sorted(job.func for job in queued_jobs()) == [
        "fund.tasks.deliver_notifications",
        "fund.tasks.verify_payment",
    ]


def test_recording_a_payment_for_a_future_month_is_refused_on_the_form(web, member, config):
    data = {"member": member.pk, "month": "1404/10", "fee": "25", "bitpin_id": "bp-future"}
    response = web.post(ADD, data)

    assert response.status_code == 200
    assert "1404/10 has not started yet" in response.content.decode()
    assert not Payment.objects.exists()


def test_recording_a_fee_below_the_minimum_is_refused_on_the_form(web, member, config):
    data = {"member": member.pk, "month": "1404/09", "fee": "5", "bitpin_id": "bp-low"}
    response = web.post(ADD, data)

    assert "The membership fee must be at least 20.00 USDT." in response.content.decode()
    assert not Payment.objects.exists()


def test_recording_a_malformed_amount_says_so(web, member, config):
    data = {"member": member.pk, "month": "1404/09", "fee": "NaN", "bitpin_id": "bp-nan"}
    response = web.post(ADD, data)

    assert response.status_code == 200
    assert "finite number" in response.content.decode() or "is not a number" in response.content.decode()
    assert not Payment.objects.exists()


def test_a_recorded_payment_cannot_be_edited_or_deleted(web, pending):
    payment = pending[0]
    change = web.post(reverse("admin:fund_payment_change", args=(payment.pk,)), {"fee": "999"})
    delete = web.post(reverse("admin:fund_payment_delete", args=(payment.pk,)), {"post": "yes"})

    assert change.status_code == 403 and delete.status_code == 403
    payment.refresh_from_db()
    assert payment.fee == Decimal("20")


# --- verify with Bitpin (queued) ------------------------------------------------------------------


@pytest.mark.redis
def test_verify_with_bitpin_asks_first_then_queues_and_says_how_many(
    web, pending, history, member, django_capture_on_commit_callbacks
):
    verified = history.pay(member, THIS_MONTH - 1, bitpin_id="bp-old")
    selection = [*pending, verified]

    first = bulk(web, "verify_with_bitpin", selection)
    assert "Queue a Bitpin check for these payments?" in first.content.decode()
    assert not queued_jobs()

    with django_capture_on_commit_callbacks(execute=True):
        done = bulk(web, "verify_with_bitpin", selection, confirmed="yes")

    assert "2 payments were queued for a Bitpin check." in messages_of(done)
    assert sorted(job.args[0] for job in queued_jobs()) == sorted(p.pk for p in pending)


# --- verify or reject by hand, with a note ------------------------------------------------------------


def test_verifying_by_hand_requires_a_note(web, pending):
    response = bulk(web, "verify_by_hand", pending, confirmed="yes", note="  ")

    assert "Write a note: it is required." in response.content.decode()
    assert set(Payment.objects.values_list("status", flat=True)) == {Payment.Status.PENDING}


def test_verifying_by_hand_marks_the_payments_verified_with_the_note(web, operator, pending):
    first = bulk(web, "verify_by_hand", pending)
    assert "Mark these payments verified?" in first.content.decode()
    assert set(Payment.objects.values_list("status", flat=True)) == {Payment.Status.PENDING}

    done = bulk(web, "verify_by_hand", pending, confirmed="yes", note="Seen on the Bitpin statement")

    assert "2 payments verified." in messages_of(done)
    for payment in Payment.objects.all():
        assert (payment.status, payment.note, payment.verified_by) == (
            Payment.Status.VERIFIED, "Seen on the Bitpin statement", operator
        )  # fmt: skip


def test_rejecting_marks_the_payments_rejected_with_the_note(web, pending):
    done = bulk(web, "reject", pending[:1], confirmed="yes", note="No such transfer")

    assert "1 payment rejected." in messages_of(done)
    rejected = Payment.objects.get(pk=pending[0].pk)
    assert (rejected.status, rejected.note) == (Payment.Status.REJECTED, "No such transfer")
    assert Payment.objects.get(pk=pending[1].pk).status == Payment.Status.PENDING


def test_deciding_an_already_decided_payment_is_refused_with_the_reason(web, history, member):
    verified = history.pay(member, THIS_MONTH, bitpin_id="bp-done")
    done = bulk(web, "reject", [verified], confirmed="yes", note="oops")

    assert any("already verified" in text for text in messages_of(done))
    verified.refresh_from_db()
    assert verified.status == Payment.Status.VERIFIED


def test_the_payment_page_verifies_by_hand_only_after_a_confirmed_post(web, operator, pending):
    payment = pending[0]
    url = reverse("admin:fund_payment_verify_by_hand_detail", args=(payment.pk,))

    page = web.get(url)
    assert page.status_code == 200 and "Mark these payments verified?" in page.content.decode()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING

    done = web.post(url, {"confirmed": "yes", "note": "Checked by phone"}, follow=True)
    assert "1 payment verified." in messages_of(done)
    payment.refresh_from_db()
    assert (payment.status, payment.verified_by) == (Payment.Status.VERIFIED, operator)


def test_the_payment_page_rejects_with_a_note(web, pending):
    payment = pending[1]
    url = reverse("admin:fund_payment_reject_detail", args=(payment.pk,))
    web.post(url, {"confirmed": "yes", "note": "Wrong amount"})

    payment.refresh_from_db()
    assert (payment.status, payment.note) == (Payment.Status.REJECTED, "Wrong amount")


def test_a_post_without_the_csrf_token_changes_nothing(client, operator, pending):
    client.handler.enforce_csrf_checks = True
    client.force_login(operator)
    url = reverse("admin:fund_payment_reject_detail", args=(pending[0].pk,))
    response = client.post(url, {"confirmed": "yes", "note": "x"})

    assert response.status_code == 403
    assert Payment.objects.get(pk=pending[0].pk).status == Payment.Status.PENDING


# --- the payment page's buttons open unfold's dialog (htmx) --------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_payment_pages_verify_button_opens_a_dialog_and_its_get_changes_nothing(web, pending):
    payment = pending[0]
    url = reverse("admin:fund_payment_verify_by_hand_detail", args=(payment.pk,))
    page = web.get(reverse("admin:fund_payment_change", args=(payment.pk,))).content.decode()
    assert f'hx-get="{url}"' in page  # the button loads the dialog into the page, no navigation

    dialog = web.get(url, **HTMX).content.decode()

    assert 'id="dialog"' in dialog and 'name="note"' in dialog and 'name="confirmed"' in dialog
    assert "Mark these payments verified?" in dialog
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_the_dialog_refuses_a_post_without_a_note_and_says_why(web, pending):
    url = reverse("admin:fund_payment_reject_detail", args=(pending[0].pk,))
    response = web.post(url, {"confirmed": "yes", "note": "   "}, **HTMX)

    assert response.status_code == 200 and "HX-Redirect" not in response.headers
    assert "Write a note: it is required." in response.content.decode()
    assert Payment.objects.get(pk=pending[0].pk).status == Payment.Status.PENDING


def test_the_dialogs_post_decides_and_sends_the_browser_back_to_the_payment(web, operator, pending):
    payment = pending[0]
    url = reverse("admin:fund_payment_verify_by_hand_detail", args=(payment.pk,))
    response = web.post(url, {"confirmed": "yes", "note": "Seen on the Bitpin statement"}, **HTMX)

    change = reverse("admin:fund_payment_change", args=(payment.pk,))
    assert response.headers["HX-Redirect"] == change
    payment.refresh_from_db()
    assert (payment.status, payment.note, payment.verified_by) == (
        Payment.Status.VERIFIED, "Seen on the Bitpin statement", operator
    )  # fmt: skip
    page = web.get(change)
    assert messages_of(page) == ["1 payment verified."]
    assert url not in page.content.decode()  # decided: the buttons are gone


def test_the_dialog_reads_persian(web, pending):
    url = reverse("admin:fund_payment_reject_detail", args=(pending[0].pk,))
    dialog = web.get(url, HTTP_ACCEPT_LANGUAGE="fa", **HTMX).content.decode()
    assert "رد پرداخت‌ها" in dialog and "یادداشت" in dialog and "انصراف" in dialog

    refused = web.post(url, {"confirmed": "yes", "note": ""}, HTTP_ACCEPT_LANGUAGE="fa", **HTMX)
    assert "یادداشت را بنویسید؛ الزامی است." in refused.content.decode()


def test_a_dialog_address_with_no_such_payment_is_refused_not_a_server_error(web):
    for object_id in ("999999", "not-a-number"):
        url = reverse("admin:fund_payment_reject_detail", args=(object_id,))
        assert web.post(url, {"confirmed": "yes", "note": "x"}).status_code in (403, 404), object_id


# --- the list ---------------------------------------------------------------------------------------


def test_the_month_filter_takes_a_jalali_month(web, history, member):
    history.pay(member, THIS_MONTH - 1, bitpin_id="bp-aban")
    history.pay(member, THIS_MONTH, bitpin_id="bp-azar")

    page = web.get(CHANGELIST, {"month": "1404/8"}).content.decode()
    assert "bp-aban" in page and "bp-azar" not in page


def test_a_bad_month_in_the_filter_says_so_and_lists_nothing(web, history, member):
    history.pay(member, THIS_MONTH, bitpin_id="bp-azar")
    response = web.get(CHANGELIST, {"month": "1404/13"})

    assert "Month must be between 1 and 12, not 13." in messages_of(response)
    assert "bp-azar" not in response.content.decode()


def test_the_state_and_source_filters(web, pending, history, member):
    history.pay(member, THIS_MONTH - 1, bitpin_id="bp-imported")
    page = web.get(CHANGELIST, {"status__exact": "verified", "source__exact": "import"}).content.decode()
    assert "bp-imported" in page and "bp-alice" not in page


def test_searching_by_bitpin_id_or_member(web, pending):
    assert "bp-bob" not in web.get(CHANGELIST, {"q": "bp-alice"}).content.decode()
    assert "bp-alice" not in web.get(CHANGELIST, {"q": "bob"}).content.decode()


# --- audit trail --------------------------------------------------------------------------------------


def test_a_payments_life_is_in_its_history_with_who_did_what(
    web, operator, member, config, django_capture_on_commit_callbacks
):
    web.post(ADD, {"member": member.pk, "month": "1404/09", "fee": "20", "bitpin_id": "bp-life"})
    payment = Payment.objects.get()
    web.post(
        reverse("admin:fund_payment_verify_by_hand_detail", args=(payment.pk,)),
        {"confirmed": "yes", "note": "Seen"},
    )

    records = list(payment.history.order_by("history_date", "history_id"))
    assert [(r.status, r.history_type, r.history_user) for r in records] == [
        (Payment.Status.PENDING, "+", operator),
        (Payment.Status.VERIFIED, "~", operator),
    ]
    page = web.get(reverse("admin:fund_payment_history", args=(payment.pk,))).content.decode()
    assert "Seen" in page and "operator" in page


def test_a_decided_payment_offers_no_verify_or_reject_button(web, history, member):
    verified = history.pay(member, THIS_MONTH, bitpin_id="bp-done")
    page = web.get(reverse("admin:fund_payment_change", args=(verified.pk,))).content.decode()

    assert reverse("admin:fund_payment_reject_detail", args=(verified.pk,)) not in page
    assert (
        web.post(
            reverse("admin:fund_payment_reject_detail", args=(verified.pk,)), {"confirmed": "yes", "note": "x"}
        ).status_code
        == 403
    )
    verified.refresh_from_db()
    assert verified.status == Payment.Status.VERIFIED


def test_the_history_shows_jalali_moments_and_names_the_system_for_imports(web, history, member):
    imported = history.pay(member, THIS_MONTH, bitpin_id="bp-imported")
    page = web.get(reverse("admin:fund_payment_history", args=(imported.pk,))).content.decode()

    assert "1404/09/10" in page
    assert "the system (a job or an import)" in page
