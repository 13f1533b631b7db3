from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from fund.models import FundConfig


def test_setup_fund_creates_then_updates_the_configuration(db):
    call_command("setup_fund")
    config = FundConfig.load()
    assert (config.min_fee, config.max_repayment_months, config.min_repayment) == (Decimal(20), 24, Decimal(20))
    call_command("setup_fund", "--min-fee", "۲۵", "--max-months", "12", "--min-payment", "30")
    config.refresh_from_db()
    assert (config.min_fee, config.max_repayment_months, config.min_repayment) == (Decimal(25), 12, Decimal(30))
    assert FundConfig.objects.count() == 1


@pytest.mark.parametrize(
    "args", [["--min-fee", "-5"], ["--min-fee", "NaN"], ["--max-months", "0"], ["--max-months", "500"]]
)
def test_setup_fund_refuses_bad_values_and_changes_nothing(db, args):
    call_command("setup_fund")
    with pytest.raises((CommandError, SystemExit)):
        call_command("setup_fund", *args)
    config = FundConfig.load()
    assert (config.min_fee, config.max_repayment_months) == (Decimal(20), 24)
