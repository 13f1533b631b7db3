"""The monthly draw from the admin: run it (queued, confirmed by POST), read its report, re-derive the winner."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from fund import tasks
from fund.health import queued_jobs
from fund.models import Draw, Loan
from tests.conftest import THIS_MONTH, messages_of

RUN = reverse("admin:fund_draw_run_monthly_draw")
CHANGELIST = reverse("admin:fund_draw_changelist")


pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def fund(history, member, other_member):
    """alice (never borrowed, asks 50) and bob (asks 0); alice has paid this month, bob not yet."""
    history.pay_months(member, THIS_MONTH - 3, 4)
    member.loan_request_amount = Decimal("50")
    member.save()
    history.pay_months(other_member, THIS_MONTH - 3, 3)
    return member, other_member


def test_opening_the_run_action_only_asks_and_says_who_has_not_paid(web, fund):
    page = web.get(RUN)

    assert page.status_code == 200
    text = page.content.decode()
    assert "Run the draw for Azar 1404 now?" in text
    assert "1 member has not paid: bob" in text
    assert not queued_jobs() and not Draw.objects.exists()


def test_the_run_action_is_refused_with_the_names_of_who_has_not_paid(web, fund, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(RUN, {"confirmed": "yes"}, follow=True)

    assert any("1 member has not paid: bob" in text for text in messages_of(response))
    assert not queued_jobs() and not Draw.objects.exists()


@pytest.mark.redis
def test_the_run_action_queues_the_draw_and_the_job_makes_it(web, fund, history, django_capture_on_commit_callbacks):
    alice, bob = fund
    history.pay(bob, THIS_MONTH)
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(RUN, {"confirmed": "yes"}, follow=True)

    assert "The draw for Azar 1404 was queued; its report appears in this list shortly." in messages_of(response)
    [job] = queued_jobs()
    assert job.func == tasks.RUN_DRAW and job.args == ("1404/09", "operator")

    tasks.run_draw(*job.args)
    draw = Draw.objects.get()
    assert (draw.winner, draw.amount, draw.triggered_by) == (alice, Decimal("50"), "operator")
    assert Loan.objects.get().member == alice


def test_a_second_run_of_the_same_month_is_refused(web, fund, history):
    history.pay(fund[1], THIS_MONTH)
    tasks.run_draw("1404/09", "operator")
    response = web.post(RUN, {"confirmed": "yes"}, follow=True)

    assert "The draw for 1404/09 has already run." in messages_of(response)
    assert Draw.objects.count() == 1


def test_the_draw_page_shows_the_winner_and_every_members_line(web, fund, history):
    history.pay(fund[1], THIS_MONTH)
    tasks.run_draw("1404/09", "operator")
    draw = Draw.objects.get()

    page = web.get(reverse("admin:fund_draw_change", args=(draw.pk,))).content.decode()
    assert 'id="draw-winner">Alice (alice)<' in page
    assert "is not asking for a loan" in page  # bob's reason
    assert "unlimited" in page  # alice never borrowed
    assert draw.seed in page
    assert "80.00" in page  # alice's balance: 4 × 20


def test_the_list_shows_month_outcome_and_amount(web, fund, history):
    history.pay(fund[1], THIS_MONTH)
    tasks.run_draw("1404/09", "operator")
    page = web.get(CHANGELIST).content.decode()
    assert "Azar 1404" in page and "Alice" in page and "50.00" in page


def test_re_deriving_the_winner_confirms_the_recorded_one(web, fund, history):
    history.pay(fund[1], THIS_MONTH)
    tasks.run_draw("1404/09", "operator")
    draw = Draw.objects.get()

    response = web.get(reverse("admin:fund_draw_rederive", args=(draw.pk,)), follow=True)
    assert "Re-derived from the seed and the pool: alice. This matches the recorded winner." in messages_of(response)


def test_re_deriving_notices_a_report_that_does_not_match(web, fund, history, other_member):
    history.pay(fund[1], THIS_MONTH)
    tasks.run_draw("1404/09", "operator")
    draw = Draw.objects.get()
    Draw.objects.filter(pk=draw.pk).update(report={**draw.report, "pool": [other_member.pk]})

    response = web.get(reverse("admin:fund_draw_rederive", args=(draw.pk,)), follow=True)
    assert "Re-derived from the seed and the pool: bob. This does NOT match the recorded winner." in messages_of(
        response
    )


def test_a_draw_cannot_be_added_edited_or_deleted_by_hand(web, fund, history):
    history.pay(fund[1], THIS_MONTH)
    tasks.run_draw("1404/09", "operator")
    draw = Draw.objects.get()

    assert web.get(reverse("admin:fund_draw_add")).status_code == 403
    web.post(reverse("admin:fund_draw_change", args=(draw.pk,)), {"amount": "1"})
    assert web.post(reverse("admin:fund_draw_delete", args=(draw.pk,)), {"post": "yes"}).status_code == 403
    draw.refresh_from_db()
    assert draw.amount == Decimal("50")
