"""Members in the admin: the list's figures and filters, creation without a password, the link, the statement."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse

from fund import statement
from fund.models import Payment, User
from tests.conftest import THIS_MONTH, empty_inline_management

CHANGELIST = reverse("admin:fund_user_changelist")


pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def fund(history, member, other_member):
    """alice: 3 × 20 paid, this month too, asks 50. bob: 3 × 30 before this month, a loan of 100 (20 repaid)."""
    history.pay_months(member, THIS_MONTH - 2, 3)
    member.loan_request_amount = Decimal("50")
    member.save()
    history.pay_months(other_member, THIS_MONTH - 3, 2, fee=30)
    loan = history.loan(other_member, THIS_MONTH - 2, 100)
    history.pay(other_member, THIS_MONTH - 1, 30, 20, loan=loan, bitpin_id="bob-repay")
    return loan


def row_of(page: str, name: str) -> str:
    """The list row of the member whose full name is ``name`` (shown in bold above the username)."""
    return next(row for row in page.split('<tr class="data-row')[1:] if f">{name}</span>" in row)


def test_the_list_shows_each_members_standing(web, fund):
    page = web.get(CHANGELIST).content.decode()

    alice = row_of(page, "Alice")
    assert "60.00" in alice and "50.00" in alice and 'title="True"' in alice
    assert reverse("admin:fund_user_set_password_link", args=(fund.member_id,)) in page  # the row action
    bob = row_of(page, "Bob")
    assert "90.00" in bob and "80.00" in bob
    assert re.search(r'title="False">\s*<span[^>]*>\s*close_small', bob)


def test_the_list_filters_by_paid_this_month_and_active_loan(web, fund):
    unpaid = web.get(CHANGELIST, {"paid": "no", "is_member__exact": "1"}).content.decode()
    assert "bob" in unpaid and ">alice<" not in unpaid and "Alice" not in unpaid

    with_loan = web.get(CHANGELIST, {"loan": "yes"}).content.decode()
    assert "Bob" in with_loan and "Alice" not in with_loan


def test_the_list_filters_inactive_members_and_searches(web, fund, other_member):
    other_member.is_active = False
    other_member.save()
    assert "Bob" not in web.get(CHANGELIST, {"is_active__exact": "1"}).content.decode()
    assert "Alice" not in web.get(CHANGELIST, {"q": "bob@example"}).content.decode()


def test_a_new_member_gets_no_password_and_the_operator_gets_a_set_password_link(web, config):
    data = {
        "username": "dara",
        "first_name": "Dara",
        "email": "dara@example.org",
        "is_member": "on",
        "loan_request_amount": "0",
    }
    response = web.post(reverse("admin:fund_user_add"), data, follow=True)

    dara = User.objects.get(username="dara")
    assert dara.is_member and not dara.has_usable_password()
    page = response.content.decode()
    link = re.search(r'value="(http://testserver/password/set/[^"]+)"', page).group(1)
    uidb64, token = link.rstrip("/").split("/")[-2:]
    assert default_token_generator.check_token(dara, token)
    assert "Copy the link" in page


def test_the_set_password_link_opens_the_members_password_page(web, client, config):
    web.post(reverse("admin:fund_user_add"), {"username": "dara", "is_member": "on", "loan_request_amount": "0"})
    dara = User.objects.get(username="dara")
    page = web.get(reverse("admin:fund_user_set_password_link", args=(dara.pk,))).content.decode()
    link = re.search(r'value="http://testserver(/password/set/[^"]+)"', page).group(1)

    web.logout()
    landing = client.get(link, follow=True)
    assert landing.status_code == 200
    assert "password" in landing.content.decode().lower()
    assert landing.context["validlink"]


def test_the_members_page_shows_their_payments_and_loans(web, fund, other_member):
    page = web.get(reverse("admin:fund_user_change", args=(other_member.pk,))).content.decode()
    assert "bob-repay" in page
    assert "80.00" in page  # the loan's remaining


def test_the_statement_downloads_as_the_members_csv(web, fund, member):
    response = web.get(reverse("admin:fund_user_statement_download", args=(member.pk,)))

    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="saghat-statement-alice.csv"' in response["Content-Disposition"]
    assert response.content.decode() == statement.statement_csv(member)


def test_the_statement_prints_for_any_member(web, fund, other_member):
    response = web.get(reverse("admin:fund_user_statement_page", args=(other_member.pk,)))
    assert response.status_code == 200
    assert "Bob" in response.content.decode()


def test_the_operator_changes_a_loan_request(web, fund, member):
    url = reverse("admin:fund_user_change", args=(member.pk,))
    page = web.get(url)
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "groups"}
    data.update(
        {"loan_request_amount": "۴۰", "is_active": "on", "is_member": "on", "date_joined_0": "", "last_login_0": ""}
    )
    data = {k: v for k, v in data.items() if not isinstance(v, bool)} | {"is_active": "on", "is_member": "on"}
    data.pop("password", None)
    data.update(empty_inline_management(page))
    response = web.post(url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("40")
    assert member.history.first().history_user.username == "operator"


def test_a_loan_request_for_someone_who_is_not_a_member_is_refused(web, outsider):
    url = reverse("admin:fund_user_change", args=(outsider.pk,))
    data = {"username": "carol", "loan_request_amount": "40", "is_active": "on", "date_joined_0": "1404-01-01"}
    response = web.post(url, data)
    assert "Only an active member can ask for a loan" in response.content.decode()
    outsider.refresh_from_db()
    assert outsider.loan_request_amount == Decimal("0")


def test_a_member_with_payments_cannot_be_deleted(web, fund, member):
    response = web.post(reverse("admin:fund_user_delete", args=(member.pk,)), {"post": "yes"})
    assert response.status_code == 200  # the admin explains the protected payments instead
    assert User.objects.filter(pk=member.pk).exists()
    assert Payment.objects.filter(member=member).count() == 3
