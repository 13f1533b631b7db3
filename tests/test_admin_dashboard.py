"""The dashboard's figures, late payers, chart and projected ranking, checked against a small fund."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from fund import tasks
from fund.models import Payment
from tests.conftest import THIS_MONTH

INDEX = reverse("admin:index")


pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.fixture
def fund(history, member, other_member, config):
    """alice paid 20 in each of the last 3 months (this one too) and asks 40; bob paid 30 in 1404/06,
    got a loan of 50 in 1404/07, paid 30 + 20 in 1404/08 and has 30 + 20 pending this month.
    Cash = 60 + 60 + 20 − 50 = 90; outstanding = 30."""
    history.pay_months(member, THIS_MONTH - 2, 3)
    member.loan_request_amount = Decimal("40")
    member.save()
    history.pay_months(other_member, THIS_MONTH - 3, 1, fee=30)
    loan = history.loan(other_member, THIS_MONTH - 2, 50)
    history.pay(other_member, THIS_MONTH - 1, 30, 20, loan=loan)
    history.pay(other_member, THIS_MONTH, 30, 20, loan=loan, status=Payment.Status.PENDING, bitpin_id="bp-wait")
    return member, other_member


def figure(page: str, name: str) -> str:
    inner = re.search(rf'id="figure-{name}"[^>]*>(.*?)</p>', page, flags=re.S).group(1)
    return re.sub(r"<[^>]+>", "", inner).strip()


def test_the_dashboard_shows_this_months_figures(web, fund):
    page = web.get(INDEX).content.decode()

    assert "This month: Azar 1404" in page and "20 days left" in page
    assert figure(page, "paid") == "1 of 2"
    assert figure(page, "pending") == "1"
    assert figure(page, "cash") == "90.00"
    assert figure(page, "outstanding") == "30.00"
    assert figure(page, "draw") == "Waiting: not everyone has paid"


def test_the_dashboard_lists_who_has_not_paid_and_the_days_left(web, fund):
    page = web.get(INDEX).content.decode()
    late = re.search(r'id="late-payers">(.*?)</div>\s*</div>', page, flags=re.S).group(1)

    assert "1 member has not paid; 20 days left this month." in late
    assert "Bob" in late and "Alice" not in late


def test_the_dashboard_charts_the_last_24_months(web, fund):
    page = web.get(INDEX).content.decode()
    data = json.loads(html.unescape(re.search(r'data-value="([^"]+)"', page).group(1)))

    assert len(data["labels"]) == 24 and data["labels"][-1] == "Azar 1404"
    inflow, cash = data["datasets"][0]["data"], data["datasets"][1]["data"]
    assert inflow[-4:] == [30.0, 20.0, 70.0, 20.0]  # bob's pending payment does not count yet
    assert cash[-1] == 90.0


def test_the_dashboard_projects_the_ranking(web, fund):
    page = web.get(INDEX).content.decode()
    ranking = page[page.index('id="projected-ranking"') :]

    assert "If the draw for Azar 1404 ran now" in ranking
    assert "1 member can win." in ranking
    first_row = ranking.split("<tr")[2]
    assert "Alice" in first_row and "unlimited" in first_row
    assert "has an open loan" in ranking


def test_the_dashboard_shows_the_draw_once_it_has_run(web, fund):
    Payment.objects.filter(bitpin_id="bp-wait").update(status=Payment.Status.VERIFIED)
    tasks.run_draw(str(THIS_MONTH), "operator")

    page = web.get(INDEX).content.decode()
    assert figure(page, "draw") == "Done: Alice (alice) won 40.00 USDT"
    assert "If the draw for Dey 1404 ran now" in page  # next month's projection
