"""Create the Inspectors group (idempotent) and optionally make users inspectors.

Inspectors read everything in the back office and change nothing (fund.admin.roles). The group
carries no permission rows: the admin decides by role, so the group's name is all that matters.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from fund.admin.roles import INSPECTORS, inspectors_group
from fund.models import User


class Command(BaseCommand):
    help = "Create the Inspectors group; with --add USERNAME also make those users inspectors (staff, read-only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--add", action="append", default=[], metavar="USERNAME", help="make this user an inspector"
        )

    @no_translations  # the console speaks English, whatever the fund's language
    def handle(self, *args: object, **options: object) -> None:
        group = inspectors_group()
        for username in options["add"]:
            try:
                user = User.objects.get(username=username)
            except User.DoesNotExist:
                raise CommandError(f"No user named {username!r}.") from None
            # Staff status is what lets a user log in to the admin at all; the group makes it read-only.
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            user.groups.add(group)
            self.stdout.write(f"{username} is now an inspector.")
        self.stdout.write(f"Group {INSPECTORS!r} ready ({group.user_set.count()} members).")
