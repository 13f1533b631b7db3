"""Spreadsheet import and export of the fund's history (DESIGN.md, "Spreadsheet import").

Three kinds, each a django-import-export resource with the same columns for import and export:
members, past loans and past payments. The admin (fund.admin.imports) and the command
``import_history`` both run them, the command through ``run_import``.

The package, one module per concept: ``cells`` (parsing one cell; the widgets), ``files``
(reading an upload within the limits), ``base`` (the checked rows and what the three resources
share), ``members``, ``loans``, ``payments`` (one resource each, with the rules of its kind),
``runner`` (running an import and reporting its problems outside the admin's preview) and
``jobs`` (large imports in the background).

How an import works, and why:
- Headers are accepted in English or Persian and normalised once (``normalise_headers``).
- A whole-file check runs before any row is written: every cell is parsed by the resource's
  widgets (which share the foundation's parsing: JalaliMonth.parse, parse_amount) and the rules
  that span rows (duplicates, which loan a repayment repays, one loan at a time) are checked with
  the file and the database together. Each bad row gets its row number and a plain reason.
- The rows are then written with bulk inserts (COPY on PostgreSQL) from the checked values, in
  the same transaction; a file with any bad row writes nothing. This is a plain service on the
  tablib dataset (``HistoryResource.import_data``), not the library's row-by-row loop; the
  library's resources still give the columns, the admin's screens and the exports.
- After a payment import the loans' states are recomputed (fund.loans.recompute_states).
"""

from fund.bulk import copy_rows
from fund.imports.base import HistoryResource, HistoryResult, RowPlan, normalise_headers
from fund.imports.cells import ImportFileError, cell_text, clean_amount, clean_bool, clean_month
from fund.imports.files import check_limits, load_dataset
from fund.imports.loans import LoanResource
from fund.imports.members import MemberResource
from fund.imports.payments import PaymentResource
from fund.imports.runner import RESOURCES, ImportOutcome, Problem, problems_of, run_import

__all__ = [
    "RESOURCES",
    "HistoryResource",
    "HistoryResult",
    "ImportFileError",
    "ImportOutcome",
    "LoanResource",
    "MemberResource",
    "PaymentResource",
    "Problem",
    "RowPlan",
    "cell_text",
    "check_limits",
    "clean_amount",
    "clean_bool",
    "clean_month",
    "copy_rows",
    "load_dataset",
    "normalise_headers",
    "problems_of",
    "run_import",
]
