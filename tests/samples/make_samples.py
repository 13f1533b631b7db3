"""Write the XLSX samples from the CSV ones: Persian headers and numeric cells, as a spreadsheet has.

Run from the repository root: ``uv run python tests/samples/make_samples.py``. The XLSX files hold
the same rows as the CSV files, so a test can import either and expect the same database.
"""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
PERSIAN_HEADERS = {
    "username": "نام کاربری",
    "first_name": "نام",
    "last_name": "نام خانوادگی",
    "email": "ایمیل",
    "loan_request": "درخواست وام",
    "active": "فعال",
    "member": "عضو",
    "month": "ماه",
    "amount": "مبلغ",
    "fee": "حق عضویت",
    "repayment": "قسط",
    "bitpin_id": "شناسه بیت\u200cپین",
}
NUMERIC = {"loan_request", "amount", "fee", "repayment"}
DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")


def cell(column: str, text: str) -> object:
    """Amounts become numbers (int or float, as a spreadsheet stores them); the rest stays text."""
    if column not in NUMERIC or not text.strip():
        return text or None
    try:
        number = Decimal(text.translate(DIGITS).strip())
    except InvalidOperation:
        return text
    return int(number) if number == number.to_integral_value() and "." not in text else float(number)


def convert(name: str) -> Path:
    with (HERE / f"{name}.csv").open(encoding="utf-8") as source:
        rows = list(csv.reader(source))
    header, data = rows[0], rows[1:]
    book = Workbook()
    sheet = book.active
    sheet.append([PERSIAN_HEADERS[column] for column in header])
    for row in data:
        sheet.append([cell(column, text) for column, text in zip(header, row, strict=True)])
    target = HERE / f"{name}.xlsx"
    book.save(target)
    return target


if __name__ == "__main__":
    for kind in ("members", "loans", "payments"):
        print(convert(kind))
