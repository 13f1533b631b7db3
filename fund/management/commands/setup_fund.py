from argparse import ArgumentTypeError
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.utils.translation import gettext as _

from fund.models import FundConfig
from fund.money import AmountError, parse_amount
from fund.schedules import ensure_schedules


def _amount(text: str) -> Decimal:
    try:
        value = parse_amount(text)
    except AmountError as error:
        raise ArgumentTypeError(str(error)) from None
    if value <= 0:
        raise ArgumentTypeError(_("The amount must be more than zero."))
    return value


class Command(BaseCommand):
    help = "Create or update the fund configuration (re-running updates it) and the worker's schedules."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-fee", type=_amount, help="minimum monthly membership fee in USDT (default 20)")
        parser.add_argument("--max-months", type=int, help="maximum loan repayment months (default 24)")
        parser.add_argument("--min-payment", type=_amount, help="minimum monthly loan repayment in USDT (default 20)")
        parser.add_argument("--name", help="the fund's name")

    @no_translations  # the console speaks English, whatever the fund's language
    def handle(self, *args: object, **options: object) -> None:
        config = FundConfig.load()
        if options["min_fee"] is not None:
            config.min_fee = options["min_fee"]
        if options["max_months"] is not None:
            if options["max_months"] < 1:
                raise CommandError(_("The maximum number of repayment months must be at least 1."))
            config.max_repayment_months = options["max_months"]
        if options["min_payment"] is not None:
            config.min_repayment = options["min_payment"]
        if options["name"]:
            config.name = options["name"]
        try:
            config.full_clean()
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(m)}" for field, m in error.message_dict.items())
            ) from None
        config.save()
        ensure_schedules()
        self.stdout.write(
            f"{config}: min fee {config.min_fee.normalize():f} USDT, max {config.max_repayment_months} months, "
            f"min repayment {config.min_repayment.normalize():f} USDT"
        )
