"""The member's self-service page through the test client: who may see what, every state of this
month, every form error, the loan request, the draw button, and bounded queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from fund import draw, payments, views
from fund.health import queued_jobs
from fund.jalali import JalaliMonth
from fund.models import Draw, FundConfig, Loan, Payment, User

HOME = reverse("member-home")
PAY = reverse("member-pay")
LOAN_REQUEST = reverse("member-loan-request")
RUN_DRAW = reverse("member-run-draw")


@pytest.fixture
def now() -> JalaliMonth:
    return JalaliMonth.current()


def login(client, user: User, language: str = "en"):
    client.force_login(user)
    client.cookies["django_language"] = language
    return client


@pytest.fixture
def alice(client, member, config):
    """The standing member, logged in, reading in English."""
    return login(client, member)


def page(client) -> str:
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


def submit(member: User, month: JalaliMonth, bitpin_id: str, fee: str = "20", repayment: str = "0") -> Payment:
    return payments.submit_payment(
        member=member, month=month, fee=Decimal(fee), repayment=Decimal(repayment), bitpin_id=bitpin_id,
        submitted_by=member,
    )  # fmt: skip


def post_payment(client, follow: bool = False, **data: str):
    return client.post(PAY, {"fee": "20", "bitpin_id": "bp-alice-1", **data}, follow=follow)


# --- who may see the page ---------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_the_login_page(client, db):
    response = client.get(HOME)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_logged_in_user_who_is_not_a_member_gets_a_friendly_page(client, outsider):
    html = page(login(client, outsider))
    assert "not a member of the fund" in html
    assert reverse("admin:index") not in html


def test_an_operator_who_is_not_a_member_is_pointed_to_the_back_office(client, operator):
    html = page(login(client, operator))
    assert "Go to the back office" in html
    assert reverse("admin:index") in html


def test_an_operator_who_is_also_a_member_sees_the_page_and_a_link_to_the_admin(client, operator, config):
    operator.is_member = True
    operator.save()
    html = page(login(client, operator))
    assert "Your balance" in html
    assert f'href="{reverse("admin:index")}"' in html


def test_a_plain_member_sees_no_admin_link(alice):
    assert f'href="{reverse("admin:index")}"' not in page(alice)


def test_non_members_cannot_post_anything(client, outsider, now):
    login(client, outsider)
    assert client.post(PAY, {"fee": "20", "bitpin_id": "x-1"}).status_code == 403
    assert client.post(LOAN_REQUEST, {"amount": "50"}).status_code == 403
    assert client.post(RUN_DRAW).status_code == 403
    outsider.refresh_from_db()
    assert not Payment.objects.exists()
    assert outsider.loan_request_amount == 0


def test_every_form_needs_the_csrf_token(member, config, now):
    from django.test import Client

    client = login(Client(enforce_csrf_checks=True), member)
    assert client.post(PAY, {"fee": "20", "bitpin_id": "bp-1"}).status_code == 403
    assert client.post(LOAN_REQUEST, {"amount": "50"}).status_code == 403
    assert client.post(RUN_DRAW).status_code == 403
    assert not Payment.objects.exists()
    html = client.get(HOME).content.decode()
    assert html.count("csrfmiddlewaretoken") >= 4  # payment, loan request, logout, language


# --- the figures ------------------------------------------------------------------------------------


def test_it_shows_balance_loan_request_and_fund_rules(alice, member, history, now):
    history.pay_months(member, now - 3, 3, fee=25)
    member.loan_request_amount = Decimal("60")
    member.save()
    FundConfig.objects.filter(pk=1).update(min_fee=Decimal("25"), min_repayment=Decimal("15"), max_repayment_months=18)
    html = page(alice)
    assert "75.00" in html  # balance: three verified fees of 25
    assert "60.00" in html  # loan request
    assert "Minimum monthly loan repayment" in html and "15.00" in html
    assert "Maximum loan repayment months" in html and "18" in html


def test_it_shows_the_active_loan_with_repaid_remaining_and_this_months_bounds(alice, member, history, now):
    loan = history.loan(member, now - 3, 300, monthly_minimum_amount=50)
    history.pay(member, now - 2, 20, 50, loan=loan)
    history.pay(member, now - 1, 20, 50, loan=loan)
    html = page(alice)
    section = html.split('id="loan"')[1].split("</div>\n  <div")[0]
    assert "300.00" in section and "100.00" in section and "200.00" in section
    assert "at least 50.00, at most 200.00" in section


def test_a_loan_granted_this_month_is_repaid_from_next_month(alice, member, history, now):
    history.loan(member, now, 300)
    html = page(alice)
    assert "starts next month" in html
    assert 'name="repayment"' not in html


def test_it_lists_only_the_members_own_payments_and_loans(alice, member, other_member, history, now):
    history.pay(member, now - 1, 20, bitpin_id="alice-old-1")
    history.pay(other_member, now - 1, 20, bitpin_id="bob-secret-1")
    history.loan(other_member, now - 2, 77, state=Loan.State.SETTLED)
    submit(other_member, now, "bob-secret-2")
    html = page(alice)
    assert "alice-old-1" in html
    assert "bob-secret" not in html
    loans = html.split('id="loan-history"')[1].split("</section>")[0]
    assert "77.00" not in loans and "No loans yet." in loans


# --- this month: every state --------------------------------------------------------------------------


def test_not_paid_shows_the_form_with_the_minimum_fee_and_no_repayment_without_a_loan(alice, now, config):
    html = page(alice)
    assert "Not paid yet" in html
    assert 'id="payment-form"' in html
    assert 'name="fee" value="20.00"' in html
    assert 'name="bitpin_id"' in html
    assert 'name="loan_request"' in html
    assert 'name="repayment"' not in html
    assert 'name="month"' not in html and 'name="member"' not in html


def test_with_an_active_loan_the_form_asks_for_a_repayment_prefilled_with_the_minimum(alice, member, history, now):
    history.loan(member, now - 2, 480, monthly_minimum_amount=20)
    html = page(alice)
    assert 'name="repayment" value="20.00"' in html


def test_pending_shows_the_payment_and_no_form(alice, member, now):
    submit(member, now, "bp-pending-1")
    html = page(alice)
    assert "Pending: waiting for verification with Bitpin" in html
    assert "bp-pending-1" in html
    assert 'id="payment-form"' not in html


def test_verified_shows_verified_and_no_form(alice, member, operator, now):
    payment = submit(member, now, "bp-ok-1")
    payments.verify_by_hand(payment=payment, by=operator, note="seen on Bitpin")
    html = page(alice)
    assert 'id="month-status">' in html and "Verified" in html
    assert 'id="payment-form"' not in html


def test_rejected_shows_the_reason_and_the_form_again(alice, member, operator, now):
    payment = submit(member, now, "bp-bad-1")
    payments.reject_payment(payment=payment, by=operator, note="Bitpin does not know this payment id")
    html = page(alice)
    assert "Rejected" in html
    assert "Bitpin does not know this payment id" in html
    assert 'id="payment-form"' in html


# --- paying -----------------------------------------------------------------------------------------------


def test_submitting_stores_a_pending_payment_for_the_member_and_the_current_month(
    alice, member, other_member, now, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = alice.post(
            PAY,
            {"fee": "25", "bitpin_id": " bp-alice-1 ", "month": str(now - 5), "member": other_member.pk},
            follow=True,
        )
    payment = Payment.objects.get()
    assert (payment.member, payment.month, payment.fee, payment.status) == (member, now, Decimal("25"), "pending")
    assert payment.bitpin_id == "bp-alice-1"
    assert payment.source == Payment.Source.MEMBER and payment.submitted_by == member
    assert len(callbacks) == 2  # the verification job and the "payment received" delivery, queued on commit
    assert "waiting for verification with Bitpin" in response.content.decode()


def test_a_payment_with_a_repayment_is_tied_to_the_active_loan(alice, member, history, now):
    loan = history.loan(member, now - 2, 480, monthly_minimum_amount=20)
    alice.post(PAY, {"fee": "20", "repayment": "30", "bitpin_id": "bp-rep-1"})
    payment = Payment.objects.get()
    assert (payment.repayment, payment.loan) == (Decimal("30"), loan)


def test_the_payment_form_can_change_the_loan_request(alice, member, now):
    alice.post(PAY, {"fee": "20", "bitpin_id": "bp-1", "loan_request": "150"})
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("150")


def test_an_empty_loan_request_in_the_payment_form_keeps_the_current_one(alice, member, now):
    member.loan_request_amount = Decimal("90")
    member.save()
    alice.post(PAY, {"fee": "20", "bitpin_id": "bp-1", "loan_request": ""})
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("90")


def test_persian_digits_are_accepted(alice, member, now):
    alice.post(PAY, {"fee": "۲۵٫۵", "bitpin_id": "bp-fa-1"})
    assert Payment.objects.get().fee == Decimal("25.5")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fee": "19.99"}, "The membership fee must be at least 20.00 USDT."),
        ({"fee": "abc"}, "“abc” is not a number."),
        ({"fee": "-5"}, "The amount cannot be negative."),
        ({"fee": "20.123456789"}, "Use at most 8 decimal places."),
        ({"fee": "NaN"}, "The amount must be a finite number."),
        ({"fee": ""}, "This field is required."),
        ({"bitpin_id": ""}, "This field is required."),
        ({"bitpin_id": "has space"}, "The Bitpin payment id cannot contain spaces."),
        ({"bitpin_id": "x" * 101}, "Ensure this value has at most 100 characters"),
        ({"loan_request": "-1"}, "The amount cannot be negative."),
    ],
)
def test_a_bad_payment_form_shows_the_error_and_writes_nothing(alice, member, now, data, message):
    response = post_payment(alice, **data)
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert 'class="errorlist' in html
    assert not Payment.objects.exists()
    member.refresh_from_db()
    assert member.loan_request_amount == 0


def test_a_repayment_without_an_active_loan_is_ignored_not_stored(alice, member, now):
    # The field is not on the form without a loan: a forged value cannot create a repayment.
    post_payment(alice, repayment="50")
    assert Payment.objects.get().repayment == 0


@pytest.mark.parametrize(
    ("repayment", "message"),
    [
        ("10", "The repayment must be between 20.00 and 100.00 USDT."),
        ("100.01", "The repayment must be between 20.00 and 100.00 USDT."),
        ("", "This field is required."),
    ],
)
def test_a_repayment_outside_the_bounds_is_refused(alice, member, history, now, repayment, message):
    loan = history.loan(member, now - 2, 120, monthly_minimum_amount=20)
    history.pay(member, now - 1, 20, 20, loan=loan)
    html = post_payment(alice, repayment=repayment).content.decode()
    assert message in html
    assert not Payment.objects.filter(month=now).exists()


def test_a_bitpin_id_already_used_is_refused(alice, member, other_member, now):
    submit(other_member, now, "bp-shared")
    html = post_payment(alice, bitpin_id="bp-shared").content.decode()
    assert "This Bitpin payment id has already been used for another payment." in html
    assert not Payment.objects.filter(member=member).exists()


def test_paying_twice_in_a_month_is_refused_above_the_form(alice, member, now):
    submit(member, now, "bp-first")
    html = post_payment(alice, bitpin_id="bp-second", follow=True).content.decode()
    assert "You have already paid for" in html
    assert 'class="error"' in html
    assert Payment.objects.count() == 1


def test_a_rejected_payment_can_be_submitted_again(alice, member, operator, now):
    payments.reject_payment(payment=submit(member, now, "bp-bad"), by=operator, note="unknown id")
    post_payment(alice, bitpin_id="bp-good")
    assert Payment.objects.filter(member=member, month=now, status="pending").get().bitpin_id == "bp-good"


def test_errors_are_shown_in_persian_layout_by_default(client, member, config, now):
    login(client, member, language="fa")
    html = client.post(PAY, {"fee": "abc", "bitpin_id": ""}).content.decode()
    assert '<html lang="fa" dir="rtl">' in html
    assert html.count('class="errorlist') >= 2
    assert not Payment.objects.exists()


def test_the_page_is_english_and_left_to_right_in_english(alice):
    assert '<html lang="en" dir="ltr">' in page(alice)


# --- the loan request -----------------------------------------------------------------------------------


def test_changing_the_loan_request_saves_it_and_says_so(alice, member):
    response = alice.post(LOAN_REQUEST, {"amount": "250.5"}, follow=True)
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("250.5")
    assert "Your loan request was saved." in response.content.decode()


def test_a_zero_loan_request_withdraws_it(alice, member):
    member.loan_request_amount = Decimal("100")
    member.save()
    alice.post(LOAN_REQUEST, {"amount": "0"})
    member.refresh_from_db()
    assert member.loan_request_amount == 0


@pytest.mark.parametrize(
    ("amount", "message"),
    [("", "This field is required."), ("lots", "“lots” is not a number."), ("-3", "The amount cannot be negative.")],
)
def test_a_bad_loan_request_shows_the_error_and_changes_nothing(alice, member, amount, message):
    member.loan_request_amount = Decimal("40")
    member.save()
    html = alice.post(LOAN_REQUEST, {"amount": amount}).content.decode()
    assert message in html
    member.refresh_from_db()
    assert member.loan_request_amount == Decimal("40")


def test_a_loan_request_post_never_touches_another_member(alice, member, other_member):
    alice.post(LOAN_REQUEST, {"amount": "70", "member": other_member.pk, "username": other_member.username})
    other_member.refresh_from_db()
    member.refresh_from_db()
    assert (member.loan_request_amount, other_member.loan_request_amount) == (Decimal("70"), 0)


# --- the draw ------------------------------------------------------------------------------------------


def test_no_draw_button_while_a_member_has_not_paid(alice, member, other_member, history, now):
    history.pay(member, now)
    html = page(alice)
    assert 'id="run-draw-form"' not in html
    assert "1 member has not paid yet" in html


def test_the_draw_button_appears_once_everyone_has_paid_and_queues_the_draw(
    alice, member, other_member, history, now, django_capture_on_commit_callbacks
):
    history.pay(member, now)
    history.pay(other_member, now)
    assert 'id="run-draw-form"' in page(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(RUN_DRAW, follow=True)
    assert "was queued" in response.content.decode()
    assert len(queued_jobs()) == 1
    assert not Draw.objects.exists()  # the worker runs it


def test_the_draw_button_refuses_when_someone_has_not_paid(alice, member, other_member, history, now):
    history.pay(member, now)
    response = alice.post(RUN_DRAW, follow=True)
    assert "cannot run yet" in response.content.decode() and "bob" in response.content.decode()
    assert not queued_jobs()


def test_no_draw_button_once_the_month_is_drawn(alice, member, other_member, history, now):
    history.pay(member, now)
    history.pay(other_member, now)
    draw.run_draw(month=now, triggered_by="test")
    html = page(alice)
    assert 'id="run-draw-form"' not in html
    assert "has run; its table is below" in html
    response = alice.post(RUN_DRAW, follow=True)
    assert "has already run" in response.content.decode()


def test_the_latest_draw_shows_winner_amount_and_every_row_with_its_reason(alice, member, other_member, history, now):
    last = now - 1
    carol = history.member("carol", request=0, first_name="Carol")
    for person in (member, other_member, carol):
        history.pay_months(person, last - 5, 6)
    User.objects.filter(pk=other_member.pk).update(loan_request_amount=Decimal("100"))
    draw.run_draw(month=last, triggered_by="test")
    html = page(alice)
    section = html.split('id="latest-draw"')[1].split('id="projection"')[0]
    assert "<strong>Bob</strong>" in section
    assert "100.00 USDT" in section
    assert "Carol" in section and "is not asking for a loan" in section
    assert "Alice" in section and "(you)" in section
    assert "unlimited" in section


def test_the_projection_is_labelled_and_shows_the_members_position(alice, member, other_member, history, now):
    for person in (member, other_member):
        history.pay_months(person, now - 4, 4)
    User.objects.filter(pk__in=[member.pk, other_member.pk]).update(loan_request_amount=Decimal("50"))
    html = page(alice)
    section = html.split('id="projection"')[1]
    assert "Projected ranking for the draw of" in section
    assert "A projection, not a result" in section
    assert "Your position: 1 of 2 eligible members." in section
    assert '<tr class="mine' in section


def test_the_projection_says_why_the_member_is_out(alice, member, history, now):
    history.pay(member, now - 1)
    html = page(alice)
    assert "You are out of this draw (reason: is not asking for a loan)." in html


def _crowd(history, count: int) -> list[User]:
    """``count`` members who sort before alice in the tables (they ask for nothing)."""
    return [history.member(f"a{i:02d}") for i in range(1, count + 1)]


def test_a_large_draw_shows_the_first_rows_and_the_members_own_and_links_to_the_whole_table(
    alice, member, history, now
):
    crowd = _crowd(history, views.TABLE_ROWS + 5)
    for person in [*crowd, member]:
        history.pay(person, now - 1)
    draw.run_draw(month=now - 1, triggered_by="test")
    section = page(alice).split('id="latest-draw"')[1].split('id="projection"')[0]
    shown = views.TABLE_ROWS + 1  # the first rows and alice's own, which sorts last
    assert f"Showing {shown} of {len(crowd) + 1} members: see the whole table" in section
    assert "a25" in section and "a26" not in section and "(you)" in section
    whole = alice.get(reverse("member-draw-table")).content.decode()
    assert all(person.username in whole for person in crowd) and "(you)" in whole


def test_a_large_projection_links_to_the_whole_ranking(alice, member, history, now):
    crowd = _crowd(history, views.TABLE_ROWS + 5)
    section = page(alice).split('id="projection"')[1]
    assert f"Showing {views.TABLE_ROWS + 1} of {len(crowd) + 1} members: see the whole ranking" in section
    whole = alice.get(reverse("member-ranking")).content.decode()
    assert "Projected ranking for the draw of" in whole
    assert all(person.username in whole for person in crowd)


def test_a_small_fund_shows_whole_tables_without_a_link(alice, member, other_member, history, now):
    for person in (member, other_member):
        history.pay(person, now - 1)
    draw.run_draw(month=now - 1, triggered_by="test")
    html = page(alice)
    assert "see the whole" not in html


@pytest.mark.parametrize("name", ["member-draw-table", "member-ranking"])
def test_the_whole_tables_are_for_members_only(client, outsider, name):
    assert client.get(reverse(name)).status_code == 302  # anonymous: to the login page
    assert "not a member of the fund" in page_at(login(client, outsider), reverse(name))


def page_at(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


# --- bounded queries ----------------------------------------------------------------------------------


def _count_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    return len(queries)


def _history_of(history, member: User, months: int, now: JalaliMonth) -> None:
    """``months`` verified payments ending last month, the last one repaying an active loan."""
    history.pay_months(member, now - months, months - 1)
    loan = history.loan(member, now - 2, 100, monthly_minimum_amount=1)
    history.pay(member, now - 1, 20, 1, loan=loan)


def test_the_page_issues_the_same_number_of_queries_for_1_and_120_months(client, config, history, now):
    short, long = history.member("short", request=10), history.member("long", request=10)
    _history_of(history, short, 1, now)
    _history_of(history, long, 120, now)
    draw.run_draw(month=now - 1, triggered_by="test")  # a draw report on the page as well
    assert (Payment.objects.filter(member=short).count(), Payment.objects.filter(member=long).count()) == (1, 120)
    _count_queries(login(client, short))  # the first visit also reads the draw's report into the process
    queries = _count_queries(login(client, short))
    assert queries == _count_queries(login(client, long))
    assert queries <= 30


# --- passwords ----------------------------------------------------------------------------------------


def _set_password_url(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("password-set", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})


def test_the_operators_set_password_link_lets_a_new_member_choose_a_password(client, history):
    newcomer = history.member("dariush")
    newcomer.set_unusable_password()
    newcomer.save()
    client.cookies["django_language"] = "en"
    response = client.get(_set_password_url(newcomer), follow=True)
    assert "Choose your password" in response.content.decode()
    form_url = response.redirect_chain[-1][0]
    response = client.post(
        form_url, {"new_password1": "a-long-fund-pass-1404", "new_password2": "a-long-fund-pass-1404"}
    )
    assert response["Location"] == reverse("password-set-complete")
    newcomer.refresh_from_db()
    assert newcomer.check_password("a-long-fund-pass-1404")


def test_a_used_or_forged_set_password_link_is_refused_kindly(client, member):
    client.cookies["django_language"] = "en"
    url = reverse("password-set", kwargs={"uidb64": "MQ", "token": "forged-token"})
    html = client.get(url).content.decode()
    assert "This link no longer works" in html


def test_logging_in_lands_on_the_member_page(client, member, config):
    client.cookies["django_language"] = "en"
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass-1404"}, follow=True)
    assert response.redirect_chain[-1][0] == HOME
    assert "Your balance" in response.content.decode()


def test_a_member_who_forgot_the_password_gets_a_set_password_link_by_email(client, member, mailoutbox):
    client.cookies["django_language"] = "en"
    response = client.post(reverse("password-reset"), {"email": "alice@example.org"})
    assert response["Location"] == reverse("password-reset-done")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["alice@example.org"]
    link = next(line for line in mailoutbox[0].body.splitlines() if "/password/set/" in line)
    assert client.get(link.split("testserver", 1)[1], follow=True).context["validlink"] is True


# --- template filters (shared with the admin) ----------------------------------------------------------


def test_filters_write_persian_numbers_in_persian_and_plain_ones_in_english():
    from django.utils import translation

    from fund.templatetags import saghat

    with translation.override("fa"):
        assert saghat.usdt(Decimal("1234.5")) == "۱٬۲۳۴٫۵۰"
        assert saghat.jmonth("1404/09") == "آذر ۱۴۰۴"
        assert saghat.jmonth_short(140409) == "۱۴۰۴/۰۹"
        assert saghat.score("12.345600000") == "۱۲٫۳۴۵۶"
    with translation.override("en"):
        assert saghat.usdt("1234.5") == "1,234.50"
        assert saghat.jmonth(JalaliMonth(1404, 9)) == "Azar 1404"
        assert saghat.score("unlimited") == "unlimited"
        assert saghat.score(None) == "—"
        assert saghat.usdt("junk") == ""
        assert saghat.jdate("2025-03-20T21:00:00+00:00") == "1404/01/01 00:30"
