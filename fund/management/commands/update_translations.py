"""Refresh the Persian catalogue: our strings plus the third-party ones that ship without Persian.

unfold, django-q2 and django-simple-history have no Persian translation; their strings live in
``locale/thirdparty-fa.po`` and are merged into ``locale/fa/LC_MESSAGES/django.po`` here, so that
``makemessages`` (which only sees our sources) never drops them.
"""

import subprocess

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "makemessages for fa, merge the third-party Persian strings, compilemessages."

    def handle(self, *args: object, **options: object) -> None:
        ignore = [".venv/*", "tests/*", "staticfiles/*", "node_modules/*"]
        call_command("makemessages", locale=["fa"], ignore_patterns=ignore, no_obsolete=True, verbosity=1)
        ours = settings.BASE_DIR / "locale" / "fa" / "LC_MESSAGES" / "django.po"
        vendor = settings.BASE_DIR / "locale" / "thirdparty-fa.po"
        merged = subprocess.run(
            ["msgcat", "--use-first", str(ours), str(vendor)], check=True, capture_output=True, text=True
        ).stdout
        ours.write_text(merged, encoding="utf-8")
        call_command("compilemessages", locale=["fa"], ignore_patterns=ignore, verbosity=1)
