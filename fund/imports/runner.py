"""Running an import outside the admin's preview (the command, the background job, tests): check, write, report."""

from __future__ import annotations

from dataclasses import dataclass, field

import tablib
from django.utils.translation import gettext as _
from import_export.results import Result

from fund.imports.base import ROW, HistoryResource, HistoryResult
from fund.imports.cells import ImportFileError
from fund.imports.loans import LoanResource
from fund.imports.members import MemberResource
from fund.imports.payments import PaymentResource
from fund.models import User

# --- the shared runner (the command; tests) ---------------------------------------------------------


RESOURCES: dict[str, type[HistoryResource]] = {
    MemberResource.kind: MemberResource,
    LoanResource.kind: LoanResource,
    PaymentResource.kind: PaymentResource,
}


@dataclass(frozen=True)
class Problem:
    """A reason a file cannot be imported: a row's cell, a row, or (row None) the file itself."""

    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return self.message
        where = _("row %(row)d (line %(line)d)") % {"row": self.row, "line": self.row + 1}
        if self.column and self.column != ROW:
            return f"{where}, {self.column}: {self.message}"
        return f"{where}: {self.message}"


@dataclass
class ImportOutcome:
    kind: str
    file_name: str
    dry_run: bool
    rows: int
    written: int
    problems: list[Problem]
    summary: list[str]
    preview_headers: list[str] = field(default_factory=list)
    preview_rows: list[tuple[int, list[str]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def problems_of(result: Result) -> list[Problem]:
    """Every problem of an import result, in row order: file errors first."""
    found = [Problem(None, "", _error_text(error.error)) for error in result.base_errors]
    for row in result.invalid_rows:
        for column, messages in row.error_dict.items():
            found += [Problem(row.number, column, str(message)) for message in messages]
    for row in result.error_rows:
        found += [Problem(row.number, "", _error_text(error.error)) for error in row.errors]
    return sorted(found, key=lambda problem: (problem.row is not None, problem.row or 0))


def _error_text(error: BaseException) -> str:
    if isinstance(error, ImportFileError | ValueError) or hasattr(error, "message"):
        return str(getattr(error, "message", error))
    return _("Unexpected error: %(error)s") % {"error": error}


def run_import(
    *, kind: str, dataset: tablib.Dataset, file_name: str, dry_run: bool = False, user: User | None = None
) -> ImportOutcome:
    """Check and (unless ``dry_run``) write one file of history. Nothing is written when any row is bad."""
    if kind not in RESOURCES:
        raise ImportFileError(_("Unknown kind “%(kind)s”: use members, loans or payments.") % {"kind": kind})
    resource = RESOURCES[kind]()
    result = resource.import_data(dataset, dry_run=dry_run, file_name=file_name, user=user)
    problems = problems_of(result)
    if not problems and not any(plan.ok for plan in resource.plans):
        problems = [Problem(None, "", _("The file has no rows to import."))]
    written = 0 if problems or dry_run else result.totals["new"]
    outcome = ImportOutcome(kind, file_name, dry_run, len(dataset), written, problems, [])
    if isinstance(result, HistoryResult):
        outcome.summary, outcome.preview_headers = result.summary, result.preview_headers
        outcome.preview_rows = result.preview_rows
    return outcome
