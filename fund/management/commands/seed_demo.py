from django.core.management.base import BaseCommand, CommandParser, no_translations

from fund.demo import generate_fund
from fund.jalali import JalaliMonth


class Command(BaseCommand):
    help = "Fill an example fund: members with verified monthly history, settled loans and an active one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=12)
        parser.add_argument("--months", type=int, default=12)
        parser.add_argument("--last-month", type=JalaliMonth.parse, help="last month of history (default: last month)")
        parser.add_argument("--password", help="password for every generated member (default: none, unusable)")
        parser.add_argument("--seed", type=int, default=1404)
        parser.add_argument("--prefix", default="member", help="username prefix")

    @no_translations  # the console speaks English, whatever the fund's language
    def handle(self, *args: object, **options: object) -> None:
        summary = generate_fund(
            members=options["members"],
            months=options["months"],
            last_month=options["last_month"],
            password=options["password"],
            seed=options["seed"],
            username_prefix=options["prefix"],
        )
        self.stdout.write(
            f"{summary.members} members, {summary.payments} payments from {summary.first_month} to "
            f"{summary.last_month}, {summary.loans} loans ({summary.active_loans} active)"
        )
