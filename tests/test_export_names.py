"""Exported files are named with the day in the fund's calendar: Payment-1404-09-10.csv."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.usefixtures("today_in_this_month")


@pytest.mark.parametrize("model", ["payment", "loan", "user"])
def test_an_export_is_named_with_the_jalali_day(web, config, model):
    response = web.post(reverse(f"admin:fund_{model}_export"), {"format": "0", "resource": "0"})
    assert response.status_code == 200
    assert "-1404-09-10." in response["Content-Disposition"]
