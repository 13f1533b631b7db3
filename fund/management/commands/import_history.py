"""manage.py import_history KIND FILE [--dry-run]: the admin's spreadsheet import, for large files.

Shares fund.imports with the admin. Prints every bad row with its number and reason and exits
non-zero when there is any (nothing is written then); prints a summary otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.utils.translation import gettext as _

from fund.imports import RESOURCES, ImportFileError, load_dataset, run_import


class Command(BaseCommand):
    help = "Import the fund's history (members, loans or payments) from a CSV or XLSX file; all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(RESOURCES), help="What the file holds.")
        parser.add_argument("file", type=Path, help="A .csv (UTF-8) or .xlsx file with a header line.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row and write nothing.")

    @no_translations  # the console speaks English, whatever the fund's language
    def handle(self, *args: Any, kind: str, file: Path, dry_run: bool, **options: Any) -> None:
        try:
            content = file.read_bytes()
        except OSError as error:
            raise CommandError(_("Cannot read %(file)s: %(error)s") % {"file": file, "error": error.strerror}) from None
        try:
            dataset = load_dataset(content=content, file_name=file.name)
            outcome = run_import(kind=kind, dataset=dataset, file_name=file.name, dry_run=dry_run)
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        if not outcome.ok:
            for problem in outcome.problems:
                self.stderr.write(str(problem))
            raise CommandError(
                _("%(count)d problems in %(file)s: nothing was imported.")
                % {"count": len(outcome.problems), "file": file.name}
            )
        for line in outcome.summary:
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(self.style.SUCCESS(_("Dry run: every row is good; nothing was written.")))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    _("Imported %(count)d %(kind)s from %(file)s.")
                    % {"count": outcome.written, "kind": kind, "file": file.name}
                )  # fmt: skip
            )
