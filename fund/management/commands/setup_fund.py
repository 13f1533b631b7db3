from argparse import ArgumentTypeError
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from fund import configuration
from fund.money import AmountError, format_usdt, parse_amount
from fund.schedules import ensure_schedules


def _amount(text: str) -> Decimal:
    """Parsed as everywhere else; whether it is allowed is the configuration service's to say."""
    try:
        return parse_amount(text)
    except AmountError as error:
        raise ArgumentTypeError(str(error)) from None


class Command(BaseCommand):
    help = "Create or update the fund configuration (re-running updates it) and the worker's schedules."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-fee", type=_amount, help="minimum monthly membership fee in USDT (default 20)")
        parser.add_argument("--max-months", type=int, help="maximum loan repayment months (default 24)")
        parser.add_argument("--min-payment", type=_amount, help="minimum monthly loan repayment in USDT (default 20)")
        parser.add_argument("--name", help="the fund's name")

    @no_translations  # the console speaks English, whatever the fund's language
    def handle(self, *args: object, **options: object) -> None:
        names = {
            "min_fee": "min_fee",
            "max_months": "max_repayment_months",
            "min_payment": "min_repayment",
            "name": "name",
        }
        values = {field: options[option] for option, field in names.items() if options[option] not in (None, "")}
        try:
            config = configuration.update_config(**values)
        except configuration.ConfigRefused as refused:
            raise CommandError(str(refused)) from None
        ensure_schedules()
        self.stdout.write(
            f"{config}: min fee {format_usdt(config.min_fee)} USDT, max {config.max_repayment_months} months, "
            f"min repayment {format_usdt(config.min_repayment)} USDT"
        )
