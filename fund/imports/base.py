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
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils.translation import gettext as _
from import_export import resources
from import_export.fields import Field
from import_export.results import Result, RowResult

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


class LeanRowResult(RowResult):
    """A row result without the instance's text: str(payment) costs a translation per row, and the
    admin log entries that would show it are off (IMPORT_EXPORT_SKIP_ADMIN_LOG)."""

    def add_instance_info(self, instance: Any) -> None:
        self.object_id = getattr(instance, "pk", None)


class HistoryResource(resources.ModelResource):
    """What the three kinds share: headers, the whole-file check, bulk writing, summary and preview."""

    kind: ClassVar[str]
    # column → other names accepted in a header (English and Persian); REQUIRED must be present.
    HEADERS: ClassVar[dict[str, tuple[str, ...]]]
    REQUIRED: ClassVar[tuple[str, ...]]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plans: list[RowPlan] = []
        self.to_write: list[RowPlan] = []
        self.file_name = ""
        self.note = ""
        self.user: User | None = None
        self.latest = JalaliMonth.current()

    @classmethod
    def get_result_class(cls) -> type[Result]:
        return HistoryResult

    @classmethod
    def get_row_result_class(cls) -> type[RowResult]:
        return LeanRowResult

    def import_data(self, dataset: tablib.Dataset, **kwargs: Any) -> Result:
        # All or nothing, whoever calls: a file with one bad row writes nothing (LIBRARIES.md).
        kwargs["rollback_on_validation_errors"] = True
        kwargs["use_transactions"] = True
        return super().import_data(dataset, **kwargs)

    # --- the whole-file check ---
    def before_import(self, dataset: tablib.Dataset, **kwargs: Any) -> None:
        self.file_name = PurePath(str(kwargs.get("file_name") or "")).name
        self.note = self.imported_note()
        user = kwargs.get("user")
        self.user = user if isinstance(user, User) and user.pk else None
        self.plans = []
        normalise_headers(dataset, self.HEADERS, self.REQUIRED)
        for field_ in self.fields.values():
            if isinstance(field_.widget, MonthWidget):
                field_.widget.latest = self.latest
            if isinstance(field_.widget, MemberWidget):
                field_.widget.load()
        rows = [dict(zip(dataset.headers, values, strict=False)) for values in dataset]
        self.plans = [self.parse_row(number, row) for number, row in enumerate(rows, 1)]
        self.check_file([plan for plan in self.plans if not plan.blank])
        if all(plan.ok or plan.blank for plan in self.plans):
            self.prepare_write()

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
    def _plan(self, row_number: int | None) -> RowPlan | None:
        if row_number is None or not 0 < row_number <= len(self.plans):
            return None
        return self.plans[row_number - 1]

    def import_row(self, row: dict, instance_loader: Any, **kwargs: Any) -> RowResult:
        # A good row was checked and parsed by the whole-file check: it is only counted here and
        # written with the others in bulk_create. Bad and blank rows take the library's way, which
        # reports them (import_instance below).
        plan = self._plan(kwargs.get("row_number"))
        if plan is None or not plan.ok:
            return super().import_row(row, instance_loader, **kwargs)
        self.to_write.append(plan)
        row_result = self.get_row_result_class()()
        row_result.import_type = RowResult.IMPORT_TYPE_NEW
        return row_result

    def bulk_create(
        self, using_transactions: bool, dry_run: bool, raise_errors: bool, batch_size: int | None = None, result=None
    ) -> None:
        """Write every good row in one go once all rows are counted (a dry run is rolled back)."""
        plans, self.to_write = self.to_write, []
        if not plans or not (using_transactions or not dry_run):
            return
        if any(plan.errors for plan in self.plans):
            return  # nothing of a file with a bad row is kept, so nothing is written
        try:
            self.write([plan.values for plan in plans])
        except Exception as error:  # a database refusal: reported for the file, as the library does
            # COPY fails outside Django's cursor wrapper, so Django does not know the transaction
            # is broken: roll back to the caller's savepoint, or every later query fails too.
            transaction.set_rollback(True)
            if isinstance(error, IntegrityError) or str(getattr(error, "sqlstate", "") or "").startswith("23"):
                error = ImportFileError(written_meanwhile())
            self.handle_import_error(result, error, raise_errors)

    def write(self, rows: list[dict[str, Any]]) -> None:
        instances = []
        for values in rows:
            instance = self._meta.model()
            self.fill(instance, values)
            instances.append(instance)
        self._meta.model.objects.bulk_create(instances, batch_size=self._meta.batch_size)

    def import_instance(self, instance: Any, row: dict, **kwargs: Any) -> None:
        plan = self._plan(kwargs.get("row_number"))
        if plan is None or plan.blank:
            # No plan: the file itself was refused (its error is reported once, not per row).
            instance._saghat_skip = True
            return
        if plan.errors:
            raise ValidationError(plan.errors)
        self.fill(instance, plan.values)

    def fill(self, instance: Any, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def skip_row(self, instance: Any, original: Any, row: dict, import_validation_errors: Any = None) -> bool:
        # Blank lines (common at the end of a spreadsheet) are neither written nor reported.
        return getattr(instance, "_saghat_skip", False) and not import_validation_errors

    def after_import(self, dataset: tablib.Dataset, result: Result, **kwargs: Any) -> None:
        # No super(): import-export resets the id sequence to the largest id this transaction can
        # see, which moves it back below ids that concurrent submissions have taken, so their next
        # inserts collide on the primary key. Our files never carry ids: the sequence is always right.
        if isinstance(result, HistoryResult):
            good = [plan for plan in self.plans if plan.ok]
            result.summary = self.summary(good)
            result.preview_headers = self.preview_headers()
            result.preview_rows = [(plan.number, self.preview_row(plan.values)) for plan in good[:PREVIEW_ROWS]]
        if not result.has_validation_errors() and not result.has_errors():
            self.after_write()

    def after_write(self) -> None:
        """Work after a successful write (dry runs too: they are rolled back with the rest)."""

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
    renamed = [names.get(_header_key(header), cell_text(header)) for header in dataset.headers or []]
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


def copy_rows(model: type[Model], rows: Iterable[dict[str, Any]]) -> None:
    """Write rows with PostgreSQL's COPY. Each row gives database-ready values by attribute name
    (``member_id``, a month as its integer); a field it leaves out gets the field's default."""
    fields = [field_ for field_ in model._meta.concrete_fields if not field_.primary_key]
    defaults = {field_.attname: field_.get_db_prep_save(field_.get_default(), connection) for field_ in fields}
    names = [field_.attname for field_ in fields]
    columns = ", ".join(connection.ops.quote_name(field_.column) for field_ in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([row[name] if name in row else defaults[name] for name in names])


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
