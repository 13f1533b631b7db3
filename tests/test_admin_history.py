"""A record's history in the back office reads as the record's own page does: states by their
labels, moments in the Jalali calendar, months by name; each old version says which one it is."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from fund import payments
from fund.models import Payment
from tests.conftest import THIS_MONTH
from tests.test_admin_jobs import text_of

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def persian(client, operator):
    client.force_login(operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fa"
    return client


@pytest.fixture
def rejected(history, member, operator) -> Payment:
    payment = history.pay(member, THIS_MONTH, 20, status=Payment.Status.PENDING, bitpin_id="bp-alice-1")
    return payments.reject_payment(payment=payment, by=operator, note="wrong id")


def test_the_history_of_a_payment_shows_its_changes_as_people_read_them(persian, rejected):
    page = persian.get(reverse("admin:fund_payment_history", args=(rejected.pk,)))
    changes = {
        (change["field"], str(change["old"]), str(change["new"]))
        for record in page.context["page_obj"]
        for change in getattr(record, "history_delta_changes", [])
    }
    labels = dict(Payment.Status.choices)
    assert ("وضعیت", str(labels[Payment.Status.PENDING]), str(labels[Payment.Status.REJECTED])) in changes
    text = text_of(page)
    assert "ردشده" in text and "rejected" not in text
    verified_at = next(new for field, _old, new in changes if field == "زمان تأیید یا رد")
    assert verified_at.startswith("۱۴۰۴/۰۹/۱۰")  # Jalali, Tehran time, Persian digits: no ISO date
    assert "-" not in verified_at


def test_an_old_version_of_a_record_says_which_one_it_is(persian, rejected):
    version = rejected.history.order_by("history_id").first()
    page = persian.get(reverse("admin:fund_payment_simple_history", args=(rejected.pk, version.history_id)))
    assert page.status_code == 200
    html = page.content.decode()
    banner = html.split("bg-blue-100", 1)[1].split("</div>", 1)[0]
    assert "۱۴۰۴/۰۹/۱۰" in banner and "فقط خواندنی" in banner  # not an empty blue box


def test_deleting_a_group_names_each_person_it_takes_the_role_from(persian, operator, member):
    group = Group.objects.create(name="Inspectors")
    member.groups.add(group)
    page = persian.get(reverse("admin:auth_group_delete", args=(group.pk,)))
    text = text_of(page)
    assert "object" not in text and "User_groups" not in text
    assert "عضویت در گروه: Alice (alice)" in text


def test_a_records_name_in_the_header_keeps_the_user_names_case(persian, rejected):
    for url in (
        reverse("admin:fund_payment_change", args=(rejected.pk,)),
        reverse("admin:fund_payment_history", args=(rejected.pk,)),
    ):
        text = text_of(persian.get(url))
        assert "alice برای" in text and "Alice برای" not in text
