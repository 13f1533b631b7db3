"""What the three kinds of history import share: the checked rows, the resource base, headers, COPY."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, ClassVar

import tablib
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from import_export import resources
from import_export.fields import Field
from import_export.results import Error, Result, RowResult

from fund.imports.cells import ImportFileError, MemberWidget, MonthWidget, cell_text, is_blank
from fund.jalali import JalaliMonth, to_ascii_digits
from fund.models import User
from fund.text import safe_cell

PREVIEW_ROWS = 50
BATCH_SIZE = 5000
LOOKUP_ALL_ABOVE = 2000  # more values than this: read the column once instead of IN (…) queries
ROW = NON_FIELD_ERRORS  # the key of a problem that concerns the row, not one cell


# --- the checked file -------------------------------------------------------------------------------


@dataclass
class RowPlan:
    """One data row after the whole-file check: its values, or why it cannot be imported."""

    number: int
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    blank: bool = False

    def fail(self, column: str, message: str) -> None:
        self.errors.setdefault(column, []).append(str(message))

    @property
    def ok(self) -> bool:
        return not self.blank and not self.errors


class HistoryResult(Result):
    """An import's result plus what the preview and the command show: a summary and the first rows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary: list[str] = []
        self.preview_headers: list[str] = []
        self.preview_rows: list[tuple[int, list[str]]] = []

    def problem_rows(self) -> list[dict[str, Any]]:
        """Each bad row once, with every reason and its cells as written: what the preview lists."""
        return [
            {
                "number": row.number,
                "line": row.number + 1,
                "reasons": [
                    ("" if column == ROW else column, str(message))
                    for column, messages in row.error_dict.items()
                    for message in messages
                ],
                "cells": [cell_text(value) for value in row.values],
            }
            for row in self.invalid_rows
        ]

    @property
    def more_rows(self) -> int:
        """Good rows beyond the preview's first ones."""
        return max(self.totals["new"] - len(self.preview_rows), 0)


class HistoryResource(resources.ModelResource):
    """What the three kinds share: their columns (for import, export and the preview), and the
    import itself as a plain service on the tablib dataset.

    ``import_data`` replaces django-import-export's row-by-row loop: every row is parsed by the
    columns' widgets, the whole file is checked (rules that span rows and the database), and only
    then are the good rows written at once, all in one transaction: a file with one bad row writes
    nothing, and a dry run is rolled back after writing, so that it meets every refusal the real
    import would. It returns the library's Result, which is all its admin screens need. (Nor is
    the id sequence reset after the write, as the library's import does: that moves it back below
    ids that concurrent submissions have taken, and their next inserts collide. Our files never
    carry ids.)
    """

    kind: ClassVar[str]
    # column → other names accepted in a header (English and Persian); REQUIRED must be present.
    HEADERS: ClassVar[dict[str, tuple[str, ...]]]
    REQUIRED: ClassVar[tuple[str, ...]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plans: list[RowPlan] = []
        self.file_name = ""
        self.note = ""
        self.user: User | None = None
        self.latest = JalaliMonth.current()

    def import_data(
        self, dataset: tablib.Dataset, dry_run: bool = False, raise_errors: bool = False, **kwargs: Any
    ) -> HistoryResult:
        """Check every row, then write the file (all or nothing); ``dry_run`` rolls the write back."""
        result = HistoryResult()
        result.total_rows = len(dataset)
        try:
            with transaction.atomic():
                self.check(dataset, file_name=kwargs.get("file_name"), user=kwargs.get("user"))
                good = [plan for plan in self.plans if plan.ok]
                if not any(plan.errors for plan in self.plans):
                    self.prepare_write()
                    if good:
                        self.write([plan.values for plan in good])
                    self.after_write()
                transaction.set_rollback(dry_run or any(plan.errors for plan in self.plans))
        except Exception as error:  # reported for the file, as the library reports its errors
            if raise_errors:
                raise
            if isinstance(error, IntegrityError) or str(getattr(error, "sqlstate", "") or "").startswith("23"):
                error = ImportFileError(written_meanwhile())  # the rows were taken meanwhile
            result.append_base_error(Error(error))
        self.report(dataset, result)
        return result

    # --- the whole-file check ---
    def check(self, dataset: tablib.Dataset, *, file_name: Any, user: Any) -> None:
        self.file_name = PurePath(str(file_name or "")).name
        self.note = self.imported_note()
        self.user = user if isinstance(user, User) and user.pk else None
        self.plans = []
        normalise_headers(dataset, self.HEADERS, self.REQUIRED)
        for field_ in self.fields.values():
            if isinstance(field_.widget, MonthWidget):
                field_.widget.latest = self.latest
            if isinstance(field_.widget, MemberWidget):
                field_.widget.load()
        headers = dataset.headers or []
        self.plans = [self.parse_row(number, dict(zip(headers, values, strict=False)))
                      for number, values in enumerate(dataset, 1)]  # fmt: skip
        self.check_file([plan for plan in self.plans if not plan.blank])

    def parse_row(self, number: int, row: dict[str, Any]) -> RowPlan:
        plan = RowPlan(number)
        if all(is_blank(value) for value in row.values()):
            plan.blank = True
            return plan
        for name, field_ in self.fields.items():
            try:
                plan.values[name] = field_.widget.clean(row.get(name))
            except ValueError as error:
                plan.fail(name, str(error))
        return plan

    def check_file(self, plans: list[RowPlan]) -> None:
        """Rules that span rows and the database; subclasses add theirs."""

    def prepare_write(self) -> None:
        """Changes to existing rows that the new rows need (run only when every row is good)."""

    # --- writing: the checked rows, all at once ---
    def write(self, rows: list[dict[str, Any]]) -> None:
        instances = []
        for values in rows:
            instance = self._meta.model()
            self.fill(instance, values)
            instances.append(instance)
        self._meta.model.objects.bulk_create(instances, batch_size=BATCH_SIZE)

    def fill(self, instance: Any, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def report(self, dataset: tablib.Dataset, result: HistoryResult) -> None:
        """The result the admin and the runner read: bad rows with their reasons and cells as
        written, the count of good rows, a summary and the first rows. Blank lines are neither."""
        result.diff_headers = list(dataset.headers or [])
        good = [plan for plan in self.plans if plan.ok]
        for plan in self.plans:
            if plan.errors:
                row = dict(zip(result.diff_headers, dataset[plan.number - 1], strict=False))
                result.append_invalid_row(plan.number, row, ValidationError(plan.errors))
        result.totals[RowResult.IMPORT_TYPE_NEW] = len(good)
        result.totals[RowResult.IMPORT_TYPE_INVALID] = len(result.invalid_rows)
        result.summary = self.summary(good)
        result.preview_headers = self.preview_headers()
        result.preview_rows = [(plan.number, self.preview_row(plan.values)) for plan in good[:PREVIEW_ROWS]]

    def after_write(self) -> None:
        """Work after the rows are written, in the same transaction (dry runs too: rolled back)."""

    def summary(self, good: list[RowPlan]) -> list[str]:
        return []

    def export_field(self, field: Field, instance: Any, **kwargs: Any) -> Any:
        # Every exported cell, in every format, through the one neutraliser of spreadsheet formulas.
        return safe_cell(super().export_field(field, instance, **kwargs))

    def columns(self) -> list[tuple[str, Field]]:
        """The file's columns in their order (the same for import, export and the preview)."""
        return [(name, self.fields[name]) for name in self._meta.fields]

    def preview_headers(self) -> list[str]:
        return [field_.column_name for _name, field_ in self.columns()]

    def preview_row(self, values: dict[str, Any]) -> list[str]:
        return [field_.widget.render(values.get(name)) for name, field_ in self.columns()]

    def imported_note(self) -> str:
        return _("imported from %(file)s") % {"file": self.file_name} if self.file_name else _("imported")


def _header_key(text: Any) -> str:
    key = to_ascii_digits(cell_text(text)).lower().replace("ي", "ی").replace("ك", "ک").replace("\u200c", " ")
    return re.sub(r"[\s\-]+", "_", key).strip("_")


def normalise_headers(dataset: tablib.Dataset, headers: dict[str, tuple[str, ...]], required: Iterable[str]) -> None:
    """Rename accepted header spellings to the canonical column names; refuse missing or doubled ones."""
    names = {_header_key(alias): column for column, aliases in headers.items() for alias in (column, *aliases)}
    spelled = {header: names.get(_header_key(header), cell_text(header)) for header in set(dataset.headers or [])}
    renamed = [spelled[header] for header in dataset.headers or []]
    counts = Counter(renamed)  # one pass: a header of thousands of columns stays cheap
    doubled = sorted(name for name, count in counts.items() if name in headers and count > 1)
    if doubled:
        raise ImportFileError(_("The column “%(column)s” appears twice.") % {"column": doubled[0]})
    missing = [column for column in required if column not in renamed]
    if missing:
        raise ImportFileError(
            _("The file has no “%(missing)s” column. Its first line must name the columns: %(columns)s.")
            % {"missing": missing[0], "columns": ", ".join(headers)}
        )
    if renamed:
        dataset.headers = renamed


def written_meanwhile() -> str:
    return _(
        "Some of these rows were written by someone else while this file was imported (another import "
        "or a payment): nothing was imported. Check the file again."
    )


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def first_rows(plans: Iterable[RowPlan], key: Any, same: str) -> dict[Any, int]:
    """Flag every row whose ``key(plan)`` repeats an earlier row's; return key → first row number."""
    seen: dict[Any, int] = {}
    for plan in plans:
        value = key(plan)
        if value is None:
            continue
        if value in seen:
            plan.fail(ROW, _("Duplicate of row %(row)d (%(same)s).") % {"row": seen[value], "same": same})
        else:
            seen[value] = plan.number
    return seen
