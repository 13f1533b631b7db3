"""The fund's configuration changes through one service, whoever asks: the admin page or setup_fund."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from fund import configuration
from fund.models import FundConfig

CHANGE = reverse("admin:fund_fundconfig_change", args=[FundConfig.SINGLETON_ID])


def form(**changes: str) -> dict[str, str]:
    return {"name": "Our fund", "min_fee": "20", "min_repayment": "20", "max_repayment_months": "24",
            "reminder_days_before": "3", "reconciliation_tolerance": "1", **changes}  # fmt: skip


def test_the_admin_saves_the_configuration_through_the_service(web, config):
    response = web.post(CHANGE, form(min_fee="۲۵", reminder_days_before="5", auto_draw="on"))
    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.name, config.min_fee, config.reminder_days_before, config.auto_draw) == (
        "Our fund",
        Decimal("25"),
        5,
        True,
    )


@pytest.mark.parametrize("days", ["55", "30", "0"])
def test_more_reminder_days_than_a_month_has_are_refused_on_the_field(web, config, days):
    response = web.post(CHANGE, form(reminder_days_before=days))
    assert response.status_code == 200
    assert "Between 1 and 29 days" in response.content.decode()
    config.refresh_from_db()
    assert config.reminder_days_before is None


def test_setup_fund_and_the_admin_refuse_the_same_values(web, config):
    with pytest.raises(CommandError, match="more than zero"):
        call_command("setup_fund", "--min-fee", "0")
    response = web.post(CHANGE, form(min_fee="0"))
    assert response.status_code == 200 and "more than zero" in response.content.decode()
    assert FundConfig.load().min_fee == Decimal("20")


def test_the_service_refuses_and_changes_nothing(config):
    with pytest.raises(configuration.ConfigRefused) as refused:
        configuration.update_config(max_repayment_months=0, reminder_days_before=31)
    assert set(refused.value.problems) == {"max_repayment_months", "reminder_days_before"}
    config.refresh_from_db()
    assert (config.max_repayment_months, config.reminder_days_before) == (24, None)
