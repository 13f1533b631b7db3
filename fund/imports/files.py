"""Reading an uploaded spreadsheet: its limits, checked before any parsing, and then its rows.

A history file is at most ``MAX_BYTES`` long, ``MAX_ROWS`` lines, ``MAX_COLUMNS`` columns and
``MAX_CELLS`` cells; an XLSX file (a zip archive) may unpack to at most ``MAX_XLSX_UNPACKED``
bytes. The limits are measured on the raw bytes (CSV: lines and separators; XLSX: the zip
directory) before tablib or openpyxl read anything, so a file of two million blank lines or a zip
bomb is refused in milliseconds instead of filling the web process's memory. The XLSX reader
counts again while it streams, since a sheet's own description of its size may lie.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import tablib
from django.utils.translation import gettext as _
from import_export.formats import base_formats

from fund.imports.cells import ImportFileError

MAX_BYTES = 16 * 1024 * 1024  # 100,000 payment rows are about 4 MB of CSV
MAX_ROWS = 200_000  # data lines, besides the header
MAX_COLUMNS = 30  # a kind has at most 6 columns; extra ones are ignored
MAX_CELLS = 1_500_000
MAX_XLSX_UNPACKED = 128 * 1024 * 1024  # the sum of the archive's members once unpacked
MAX_XLSX_MEMBERS = 500
# Files with more rows than this are checked and written by a background job, not in the request.
BACKGROUND_ROWS = 5_000


@dataclass(frozen=True)
class FileSize:
    """What the limits measured: an upper bound of the data rows (the header excluded)."""

    rows: int


def _format(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _too_big(what: str, limit: int) -> ImportFileError:
    return ImportFileError(
        _("The file is too large: it has more than %(limit)s %(what)s. Split it into smaller files.")
        % {"limit": f"{limit:,}", "what": what}
    )


ZIP_SIGNATURE = b"PK\x03\x04"  # the first bytes of every XLSX workbook (a zip archive)


def real_extension(*, content: bytes, file_name: str) -> str:
    """What the file is: its name's extension, except that a workbook (a zip archive) named ".csv"
    is read as the workbook it is (a spreadsheet saved under the wrong name)."""
    suffix = PurePath(file_name).suffix.lower()
    if suffix in (".csv", "") and content.startswith(ZIP_SIGNATURE):
        return ".xlsx"
    return suffix


def check_limits(*, content: bytes, file_name: str) -> FileSize:
    """Refuse a file over the limits, from its bytes alone (nothing is parsed)."""
    if len(content) > MAX_BYTES:
        raise ImportFileError(
            _("The file is too large (%(size)s; at most %(limit)s). Split it into smaller files.")
            % {"size": _format(len(content)), "limit": _format(MAX_BYTES)}
        )
    suffix = real_extension(content=content, file_name=file_name)
    if suffix == ".xlsx":
        return _check_xlsx(content)
    if suffix == ".csv":
        return _check_csv(content)
    raise ImportFileError(_("Use a .csv or .xlsx file, not “%(name)s”.") % {"name": file_name})


def _check_csv(content: bytes) -> FileSize:
    # Lines and separators are counted on the bytes (C speed): quoted commas count too, so these
    # are upper bounds, which is what a limit needs.
    lines = content.count(b"\n") + (0 if content.endswith(b"\n") or not content else 1)
    if lines - 1 > MAX_ROWS:
        raise _too_big(_("rows"), MAX_ROWS)
    widest, cells = 0, 0
    for line in content.splitlines():
        width = line.count(b",") + 1
        widest = max(widest, width)
        cells += width if line.strip() else 0
    if widest > MAX_COLUMNS:
        raise _too_big(_("columns"), MAX_COLUMNS)
    if cells > MAX_CELLS:
        raise _too_big(_("cells"), MAX_CELLS)
    return FileSize(rows=max(lines - 1, 0))


def _check_xlsx(content: bytes) -> FileSize:
    try:
        members = zipfile.ZipFile(io.BytesIO(content)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ImportFileError(_("The file could not be read: it is not an XLSX workbook.")) from None
    unpacked = sum(member.file_size for member in members)
    if len(members) > MAX_XLSX_MEMBERS or unpacked > MAX_XLSX_UNPACKED:
        raise ImportFileError(
            _("The workbook unpacks to %(size)s (at most %(limit)s): save the sheet alone, or as CSV.")
            % {"size": _format(unpacked), "limit": _format(MAX_XLSX_UNPACKED)}
        )
    # An estimate for choosing the background job: a row of a history sheet is ~150 bytes of XML.
    sheets = sum(member.file_size for member in members if member.filename.startswith("xl/worksheets/"))
    return FileSize(rows=sheets // 150)


def load_dataset(*, content: bytes, file_name: str) -> tablib.Dataset:
    """Read CSV (UTF-8) or XLSX by the file's extension, within the limits above.

    Raises ImportFileError with a plain reason: over a limit, unreadable, or another kind of file.
    """
    check_limits(content=content, file_name=file_name)
    suffix = real_extension(content=content, file_name=file_name)
    try:
        if suffix == ".csv":
            return base_formats.CSV(encoding="utf-8-sig").create_dataset(content.decode("utf-8-sig"))
        return _read_xlsx(content)
    except ImportFileError:
        raise
    except UnicodeDecodeError:
        raise ImportFileError(_("The CSV file is not UTF-8 text; save it as “CSV UTF-8”.")) from None
    except Exception as error:  # tablib and openpyxl raise many kinds for a damaged file
        raise ImportFileError(_("The file could not be read: %(error)s") % {"error": str(error)[:200]}) from None


def _read_xlsx(content: bytes) -> tablib.Dataset:
    """The first sheet, streamed (openpyxl's read-only mode), stopping at the first limit passed."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        rows = book.active.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True)
        dataset = tablib.Dataset()
        header = next(rows, None)
        if header is None:
            return dataset
        width = _width(header)
        dataset.headers = list(header[:width])
        cells = 0
        for number, row in enumerate(rows, 1):
            if number > MAX_ROWS:
                raise _too_big(_("rows"), MAX_ROWS)
            values: list[Any] = list(row[:width]) + [None] * (width - len(row))
            if len(row) > MAX_COLUMNS and row[MAX_COLUMNS] is not None:
                raise _too_big(_("columns"), MAX_COLUMNS)
            cells += width
            if cells > MAX_CELLS:
                raise _too_big(_("cells"), MAX_CELLS)
            dataset.append(values)
        return dataset
    finally:
        book.close()


def _width(header: tuple[Any, ...]) -> int:
    if len(header) > MAX_COLUMNS and header[MAX_COLUMNS] is not None:
        raise _too_big(_("columns"), MAX_COLUMNS)
    named = [index for index, value in enumerate(header[:MAX_COLUMNS]) if value not in (None, "")]
    return named[-1] + 1 if named else 0


class HistoryCSV(base_formats.CSV):
    """The admin's CSV format: the same limits and reader as every other import path."""

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        content = in_stream.encode("utf-8") if isinstance(in_stream, str) else bytes(in_stream)
        return load_dataset(content=content, file_name="upload.csv")


class HistoryXLSX(base_formats.XLSX):
    """The admin's XLSX format: the same limits and streaming reader as every other import path."""

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        return load_dataset(content=bytes(in_stream), file_name="upload.xlsx")
