"""Spreadsheet import and export of the fund's history: the resources, the command, the rules.

The admin's HTTP views are tested in test_imports_admin.py; both share fund.imports.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
import tablib
from django.core.management import CommandError, call_command
from django.utils import translation
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from import_export.formats.base_formats import CSV, XLSX

from fund import ledger
from fund.imports import (
    LoanResource,
    MemberResource,
    PaymentResource,
    clean_amount,
    clean_month,
    load_dataset,
    run_import,
)
from fund.jalali import JalaliMonth
from fund.models import Loan, Payment, User

SAMPLES = Path(__file__).parent / "samples"
KINDS = ("members", "loans", "payments")
LATEST = JalaliMonth(1405, 1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def import_file(kind: str, path: Path, *, dry_run: bool = False):
    dataset = load_dataset(content=path.read_bytes(), file_name=path.name)
    return run_import(kind=kind, dataset=dataset, file_name=path.name, dry_run=dry_run)


def import_rows(kind: str, rows: list[list[object]], *, name: str = "rows.csv", dry_run: bool = False):
    """An in-memory file: the first row is the header."""
    dataset = tablib.Dataset(*rows[1:], headers=rows[0])
    return run_import(kind=kind, dataset=dataset, file_name=name, dry_run=dry_run)


@pytest.fixture
def samples(db, operator):
    """The three CSV samples imported: 3 members, 2 loans, a year of payments."""
    for kind in KINDS:
        outcome = import_file(kind, SAMPLES / f"{kind}.csv")
        assert outcome.ok, outcome.problems


def snapshot() -> dict[str, list[tuple]]:
    """What an import must reproduce, in a form that compares across databases."""
    members = User.objects.filter(is_member=True).values_list(
        "username", "first_name", "last_name", "email", "loan_request_amount", "is_active"
    )
    loans = ledger.with_repaid(Loan.objects.select_related("member"))
    payments = Payment.objects.select_related("member", "loan")
    return {
        "members": sorted(members),
        "loans": sorted(
            (
                loan.member.username,
                str(loan.month),
                loan.amount,
                loan.monthly_minimum,
                loan.state,
                str(loan.settled_month),
                loan.repaid,
            )
            for loan in loans
        ),  # fmt: skip
        "payments": sorted(
            (
                p.member.username,
                str(p.month),
                p.fee,
                p.repayment,
                p.bitpin_id,
                p.status,
                p.source,
                str(p.loan.month) if p.loan else "",
            )
            for p in payments
        ),  # fmt: skip
    }


# --- the samples --------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_command_imports_each_sample_and_the_database_holds_them(db, operator, capsys, extension):
    for kind in KINDS:
        call_command("import_history", kind, str(SAMPLES / f"{kind}.{extension}"))
    out = capsys.readouterr().out
    assert f"Imported 3 members from members.{extension}." in out
    assert f"Imported 2 loans from loans.{extension}." in out
    assert f"Imported 30 payments from payments.{extension}." in out

    maryam = User.objects.get(username="maryam")
    assert (maryam.first_name, maryam.last_name, maryam.is_member, maryam.is_active) == ("مریم", "حسینی", True, False)
    assert not maryam.has_usable_password()
    assert User.objects.get(username="sara").loan_request_amount == Decimal("150")

    reza_loan = Loan.objects.get(member__username="reza")
    assert (reza_loan.month, reza_loan.amount, reza_loan.monthly_minimum) == (JalaliMonth(1402, 3), 240, 20)
    assert reza_loan.note == f"imported from loans.{extension}"

    payments = Payment.objects.all()
    assert payments.count() == 30
    assert set(payments.values_list("status", "source")) == {("verified", "import")}
    assert set(payments.values_list("note", flat=True)) == {f"imported from payments.{extension}"}
    # "1402-2", "۱۴۰۲/۰۳" and " 1402/04 " in the file are the months they say; "۲۰" is 20.
    sara = Payment.objects.filter(member__username="sara").order_by("month")
    assert [str(p.month) for p in sara[:4]] == ["1402/01", "1402/02", "1402/03", "1402/04"]
    assert sara[1].fee == Decimal("20")
    # Every repayment is tied to the loan being repaid that month.
    assert set(Payment.objects.filter(repayment__gt=0).values_list("member__username", "loan__month")) == {
        ("reza", JalaliMonth(1402, 3)),
        ("sara", JalaliMonth(1402, 6)),
    }
    assert Payment.objects.get(member__username="reza", month=JalaliMonth(1402, 1)).bitpin_id == "bp-reza-1"


def test_imported_payments_are_stored_verified_with_their_origin_and_who_imported_them(db, operator):
    # On PostgreSQL the payments are written with COPY: every column must come out as bulk_create's.
    for kind in KINDS:
        dataset = load_dataset(content=(SAMPLES / f"{kind}.csv").read_bytes(), file_name=f"{kind}.csv")
        assert run_import(kind=kind, dataset=dataset, file_name=f"{kind}.csv", user=operator).ok
    payment = Payment.objects.get(member__username="reza", month=JalaliMonth(1402, 1))
    assert (payment.status, payment.source, payment.note) == ("verified", "import", "imported from payments.csv")
    assert (payment.submitted_by, payment.verified_by, payment.attempts, payment.last_error) == (
        operator,
        operator,
        0,
        "",
    )
    assert payment.created_at is not None and payment.verified_at is not None and payment.next_attempt_at is None
    assert Payment.objects.filter(status="verified", source="import").count() == Payment.objects.count()
    new = Payment.objects.create(member=payment.member, month=JalaliMonth(1404, 1), fee=Decimal(20), bitpin_id="x")
    assert new.pk > max(Payment.objects.exclude(pk=new.pk).values_list("pk", flat=True))  # ids still increase


def test_xlsx_samples_with_persian_headers_give_the_same_database_as_the_csv_ones(db, operator):
    for kind in KINDS:
        assert import_file(kind, SAMPLES / f"{kind}.csv").ok
    from_csv = snapshot()
    Payment.objects.all().delete()
    Loan.objects.all().delete()
    User.objects.filter(is_member=True).delete()

    for kind in KINDS:
        outcome = import_file(kind, SAMPLES / f"{kind}.xlsx")
        assert outcome.ok, outcome.problems
    assert snapshot() == from_csv


def test_a_year_of_repayments_leaves_the_loans_as_computed_by_hand(samples):
    # reza: 240 granted 1402/03; 20 a month 1402/04–1402/11 (8 × 20) and 60 in 1402/12 → 220 repaid, 20 owed.
    # sara: 100 granted 1402/06; 20 a month 1402/07–1402/11 → 100 repaid, settled in 1402/11.
    loans = {loan.member.username: loan for loan in ledger.with_repaid(Loan.objects.select_related("member"))}
    reza, sara = loans["reza"], loans["sara"]
    assert (reza.repaid, reza.remaining, reza.state, reza.settled_month) == (220, 20, "active", None)
    assert (sara.repaid, sara.remaining, sara.state, sara.settled_month) == (100, 0, "settled", JalaliMonth(1402, 11))
    # Balances are the fees: reza 12 × 25, sara 12 × 20, maryam 6 × 30.
    balances = dict(ledger.with_balance(User.objects.filter(is_member=True)).values_list("username", "balance"))
    assert balances == {"reza": 300, "sara": 240, "maryam": 180}
    assert ledger.fund_totals().cash == Decimal(300 + 240 + 180 + 320 - 340)


def test_dry_run_checks_everything_and_writes_nothing(db, operator, capsys):
    call_command("import_history", "members", str(SAMPLES / "members.csv"), "--dry-run")
    assert "nothing was written" in capsys.readouterr().out
    assert not User.objects.filter(is_member=True).exists()


# --- the error files ------------------------------------------------------------------------------------

MEMBER_PROBLEMS = {
    2: "This cell is required.",
    3: "A username may hold letters, digits and @ . + - _ only.",
    4: "Duplicate of row 1 (the same username).",
    5: "A user named “sara” already exists.",
    6: "“not-an-email” is not an email address.",
    7: "The amount cannot be negative.",
    8: "Write yes or no, not “maybe”.",
}
LOAN_PROBLEMS = {
    2: "Unknown member “zed”.",
    3: "Month must be between 1 and 12, not 13.",
    4: "1499/01 is in the future",
    5: "“reza” already has a loan granted in 1402/03.",
    7: "Duplicate of row 6 (the same member and month).",
    8: "The amount cannot be negative.",
    9: "The amount must be more than 0.",
    10: "“reza” was still repaying the loan of 1402/03 in 1402/05",
    11: "“abc” is not a number.",
}
PAYMENT_PROBLEMS = {
    2: "Unknown member “zed”.",
    3: "Month must be between 1 and 12, not 13.",
    4: "1499/01 is in the future",
    6: "Duplicate of row 5 (the same member and month).",
    7: "“sara” already has a payment for 1402/05.",
    8: "The amount cannot be negative.",
    9: "“twenty” is not a number.",
    10: "“maryam” had no loan being repaid in 1403/02",
    11: "The repayment 50.00 is more than the 20.00 USDT still owed on the loan of 1402/03.",
    12: "The Bitpin id “bp-reza-1” is already used by another payment.",
    13: "A payment needs a membership fee or a loan repayment.",
    14: "“1,5” has its separators in the wrong places",
    15: "“operator” is not a member of the fund.",
}
EXPECTED_PROBLEMS = {"members": MEMBER_PROBLEMS, "loans": LOAN_PROBLEMS, "payments": PAYMENT_PROBLEMS}


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_file_writes_nothing_and_names_every_bad_row_with_its_reason(samples, kind):
    before = snapshot()
    outcome = import_file(kind, SAMPLES / f"{kind}-errors.csv")

    assert not outcome.ok
    found = {problem.row: problem.message for problem in outcome.problems}
    expected = EXPECTED_PROBLEMS[kind]
    assert set(found) == set(expected), outcome.problems
    for row, reason in expected.items():
        assert reason in found[row]
    assert 1 not in found  # the first row of every error file is good, and still not written
    assert snapshot() == before


def test_the_command_prints_every_bad_row_and_exits_non_zero(samples, capsys):
    with pytest.raises(CommandError, match="13 problems in payments-errors.csv: nothing was imported"):
        call_command("import_history", "payments", str(SAMPLES / "payments-errors.csv"))
    err = capsys.readouterr().err
    for row in PAYMENT_PROBLEMS:
        assert f"row {row} (line {row + 1})" in err
    assert "row 11 (line 12), repayment: The repayment 50.00 is more than" in err


def test_the_command_refuses_an_unknown_file_type_or_a_missing_file(db, tmp_path):
    wrong = tmp_path / "payments.ods"
    wrong.write_bytes(b"whatever")
    with pytest.raises(CommandError, match="Use a .csv or .xlsx file"):
        call_command("import_history", "payments", str(wrong))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_history", "payments", str(tmp_path / "missing.csv"))


# --- files and headers ------------------------------------------------------------------------------------


def test_a_missing_column_is_reported_once_for_the_whole_file(samples):
    outcome = import_rows("payments", [["member", "fee"], ["sara", "20"]])
    assert [(p.row, p.message) for p in outcome.problems] == [
        (None, "The file has no “month” column. Its first line must name the columns: "
               "member, month, fee, repayment, bitpin_id.")
    ]  # fmt: skip


def test_a_column_named_twice_is_refused(samples):
    outcome = import_rows("payments", [["member", "month", "ماه", "fee"], ["sara", "1403/01", "1403/01", "20"]])
    assert [p.message for p in outcome.problems] == ["The column “month” appears twice."]


def test_headers_are_accepted_in_persian_and_with_stray_spaces_and_case(samples):
    outcome = import_rows(
        "payments",
        [[" عضو ", "ماه", "حق عضویت", "Loan Repayment", "شناسه بیت پین"], ["sara", "1403/01", "20", "", "x-1"]],
    )
    assert outcome.ok, outcome.problems
    assert Payment.objects.get(member__username="sara", month=JalaliMonth(1403, 1)).bitpin_id == "x-1"


def test_blank_lines_are_skipped_and_keep_the_row_numbers(samples):
    outcome = import_rows(
        "payments",
        [["member", "month", "fee"], ["sara", "1403/01", "20"], ["", None, " "], ["zed", "1403/01", "20"]],
    )
    assert [(p.row, p.message) for p in outcome.problems] == [(3, "Unknown member “zed”.")]


def test_a_file_of_blank_lines_imports_nothing_and_says_so(samples):
    outcome = import_rows("payments", [["member", "month", "fee"], ["", "", ""]])
    assert [p.message for p in outcome.problems] == ["The file has no rows to import."]


def test_an_unreadable_xlsx_is_a_plain_error(db):
    from fund.imports import ImportFileError

    with pytest.raises(ImportFileError, match="could not be read"):
        load_dataset(content=b"not a zip file", file_name="payments.xlsx")


# --- loans: one at a time ----------------------------------------------------------------------------------


@pytest.fixture
def people(db):
    for name in ("sara", "reza"):
        User.objects.create_user(name, is_member=True)


def test_a_members_earlier_loans_are_settled_and_the_latest_is_active_after_a_loan_import(people):
    outcome = import_rows(
        "loans", [["member", "month", "amount"], ["reza", "1402/01", "100"], ["reza", "1403/01", "200"]]
    )
    assert outcome.ok, outcome.problems
    assert dict(Loan.objects.values_list("month", "state")) == {
        JalaliMonth(1402, 1): "settled",
        JalaliMonth(1403, 1): "active",
    }


def test_a_later_loan_settles_the_recorded_active_one_until_the_payments_say_otherwise(people):
    assert import_rows("loans", [["member", "month", "amount"], ["reza", "1402/01", "100"]]).ok
    assert import_rows("loans", [["member", "month", "amount"], ["reza", "1403/01", "200"]]).ok
    assert dict(Loan.objects.values_list("month", "state")) == {
        JalaliMonth(1402, 1): "settled",
        JalaliMonth(1403, 1): "active",
    }


def test_payments_that_finish_the_first_loan_then_repay_the_second_settle_it(people):
    assert import_rows(
        "loans", [["member", "month", "amount"], ["reza", "1402/01", "40"], ["reza", "1402/04", "60"]]
    ).ok
    rows = [["member", "month", "fee", "repayment"]]
    rows += [["reza", f"1402/{m:02d}", "20", "20"] for m in (2, 3)]  # finishes the loan of 1402/01
    rows += [["reza", f"1402/{m:02d}", "20", "20"] for m in (5, 6)]  # repays the loan of 1402/04
    outcome = import_rows("payments", rows)
    assert outcome.ok, outcome.problems
    loans = {str(loan.month): loan for loan in ledger.with_repaid(Loan.objects.all())}
    assert (loans["1402/01"].state, loans["1402/01"].settled_month, loans["1402/01"].repaid) == (
        "settled",
        JalaliMonth(1402, 3),
        40,
    )
    assert (loans["1402/04"].state, loans["1402/04"].repaid) == ("active", 40)


def test_a_repayment_while_two_loans_are_owed_is_refused(people):
    assert import_rows(
        "loans", [["member", "month", "amount"], ["reza", "1402/01", "100"], ["reza", "1402/04", "60"]]
    ).ok
    outcome = import_rows("payments", [["member", "month", "fee", "repayment"], ["reza", "1402/05", "20", "20"]])
    assert [(p.row, p.column) for p in outcome.problems] == [(1, "repayment")]
    assert "owed on more than one loan in 1402/05 (granted 1402/01, 1402/04)" in outcome.problems[0].message
    assert not Payment.objects.exists()


def test_payments_that_leave_an_earlier_loan_unfinished_behind_a_later_one_are_refused(people):
    assert import_rows(
        "loans", [["member", "month", "amount"], ["reza", "1402/01", "100"], ["reza", "1403/01", "60"]]
    ).ok
    outcome = import_rows("payments", [["member", "month", "fee", "repayment"], ["reza", "1402/02", "20", "20"]])
    assert [p.row for p in outcome.problems] == [1]
    assert "would still owe on 2 loans (granted 1402/01, 1403/01)" in outcome.problems[0].message
    assert not Payment.objects.exists()


def test_a_repayment_in_the_month_the_loan_was_granted_is_refused(people):
    assert import_rows("loans", [["member", "month", "amount"], ["reza", "1402/01", "100"]]).ok
    outcome = import_rows("payments", [["member", "month", "fee", "repayment"], ["reza", "1402/01", "20", "20"]])
    assert "“reza” had no loan being repaid in 1402/01" in outcome.problems[0].message


def test_repayments_are_walked_in_month_order_whatever_the_row_order(people):
    assert import_rows("loans", [["member", "month", "amount"], ["reza", "1402/01", "40"]]).ok
    rows = [["member", "month", "fee", "repayment"], ["reza", "1402/03", "20", "20"], ["reza", "1402/02", "20", "20"]]
    assert import_rows("payments", rows).ok
    loan = Loan.objects.get()
    assert (loan.state, loan.settled_month) == ("settled", JalaliMonth(1402, 3))


# --- export → import ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", [CSV, XLSX], ids=["csv", "xlsx"])
def test_export_then_import_round_trips_equal(samples, file_format):
    before = snapshot()
    resources = {"members": MemberResource, "loans": LoanResource, "payments": PaymentResource}
    exported = {kind: file_format().export_data(resources[kind]().export()) for kind in KINDS}
    assert exported["payments"]  # something was written
    Payment.objects.all().delete()
    Loan.objects.all().delete()
    User.objects.filter(is_member=True).delete()

    for kind in KINDS:
        content = exported[kind]
        content = content.encode() if isinstance(content, str) else content
        name = f"{kind}.{file_format().get_extension()}"
        outcome = run_import(kind=kind, dataset=load_dataset(content=content, file_name=name), file_name=name)
        assert outcome.ok, outcome.problems
    assert snapshot() == before


def test_export_writes_the_import_columns_and_verified_payments_only(samples, history):
    sara = User.objects.get(username="sara")
    history.pay(sara, "1403/01", status=Payment.Status.PENDING)
    dataset = PaymentResource().export()
    assert dataset.headers == ["member", "month", "fee", "repayment", "bitpin_id"]
    assert len(dataset) == 30
    row = next(r for r in dataset.dict if r["member"] == "reza" and r["month"] == "1402/12")
    assert row == {
        "member": "reza",
        "month": "1402/12",
        "fee": "25.00",
        "repayment": "60.00",
        "bitpin_id": "bp-reza-12",
    }
    assert MemberResource().export().headers == [
        "username",
        "first_name",
        "last_name",
        "email",
        "loan_request",
        "active",
    ]
    assert LoanResource().export().headers == ["member", "month", "amount"]


# --- malformed cells never become a server error -------------------------------------------------------------

DIGIT_SETS = ["0123456789", "۰۱۲۳۴۵۶۷۸۹", "٠١٢٣٤٥٦٧٨٩"]
junk_cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes(),
    st.dates(),
    st.text(max_size=30),
    st.text(alphabet="0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩/-.,٫٬، \u200c\u200f", max_size=25),
    st.just("9" * 500),
)


def _digits(text: str, digits: str) -> str:
    return text.translate(str.maketrans("0123456789", digits))


@st.composite
def written_months(draw) -> tuple[str, JalaliMonth]:
    month = JalaliMonth(draw(st.integers(1300, 1404)), draw(st.integers(1, 12)))
    number = f"{month.month:02d}" if draw(st.booleans()) else str(month.month)
    separator = draw(st.sampled_from(["/", "-", ".", " / "]))
    text = _digits(f"{month.year}{separator}{number}", draw(st.sampled_from(DIGIT_SETS)))
    pad = draw(st.sampled_from(["", " ", "  ", "\u200f"]))
    return f"{pad}{text}{pad}", month


@st.composite
def written_amounts(draw) -> tuple[str, Decimal]:
    whole = draw(st.integers(0, 10**9))
    places = draw(st.integers(0, 8))
    fraction = draw(st.integers(0, 10**places - 1)) if places else 0
    grouped = draw(st.booleans())
    text = f"{whole:,}" if grouped else str(whole)
    if places:
        text += draw(st.sampled_from([".", "٫"])) + str(fraction).rjust(places, "0")
    value = Decimal(f"{whole}.{str(fraction).rjust(places, '0')}") if places else Decimal(whole)
    text = _digits(text, draw(st.sampled_from(DIGIT_SETS)))
    return f"{draw(st.sampled_from(['', ' ', '  ']))}{text}{draw(st.sampled_from(['', ' ']))}", value


@given(written=written_months())
def test_a_month_written_any_accepted_way_is_read_as_that_month(written):
    text, month = written
    assert clean_month(text, latest=LATEST) == month


@given(written=written_amounts())
def test_an_amount_written_any_accepted_way_is_read_as_that_amount(written):
    text, amount = written
    assert clean_amount(text) == amount


@given(cell=junk_cells)
@example(cell="1403,05")
@example(cell="1403_05")
@example(cell="1.000,50")
@example(cell="1,5")
@example(cell=float("nan"))
@example(cell=10**30)
def test_any_cell_is_a_month_an_amount_or_a_plain_error(cell):
    for parse in (lambda value: clean_month(value, latest=LATEST), clean_amount):
        try:
            parse(cell)
        except ValueError as error:
            assert str(error).strip()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(junk_cells, junk_cells, junk_cells, junk_cells, junk_cells), min_size=1, max_size=6))
def test_malformed_payment_rows_become_row_problems_never_a_server_error(people, cells):
    rows = [["member", "month", "fee", "repayment", "bitpin_id"], *[list(row) for row in cells]]
    dataset = tablib.Dataset(*rows[1:], headers=rows[0])
    result = PaymentResource().import_data(dataset, dry_run=True, file_name="junk.csv")
    assert not result.has_errors(), [error.error for row in result.error_rows for error in row.errors]
    for row in result.invalid_rows:
        assert all(str(message).strip() for messages in row.error_dict.values() for message in messages)
    assert not Payment.objects.exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(junk_cells, junk_cells, junk_cells, junk_cells), min_size=1, max_size=4))
def test_malformed_member_and_loan_rows_become_row_problems_never_a_server_error(people, cells):
    members = tablib.Dataset(*[list(row) for row in cells], headers=["username", "email", "loan_request", "active"])
    loans = tablib.Dataset(*[list(row[:3]) for row in cells], headers=["member", "month", "amount"])
    for resource, dataset in ((MemberResource(), members), (LoanResource(), loans)):
        result = resource.import_data(dataset, dry_run=True, file_name="junk.csv")
        assert not result.has_errors(), [error.error for row in result.error_rows for error in row.errors]


def test_a_csv_that_is_not_utf8_gets_a_plain_message(db):
    from fund.imports import ImportFileError

    with pytest.raises(ImportFileError, match="not UTF-8"):
        load_dataset(content="member,month\nسارا,1403/01\n".encode("utf-16"), file_name="p.csv")


def test_an_xlsx_with_numbers_and_dates_in_cells_is_read(people, tmp_path):
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["member", "month", "fee", "repayment"])
    book.active.append(["sara", 140301, 20.5, None])  # the stored month form and a float fee
    book.active.append(["sara", dt.datetime(2024, 5, 10), 20, 0])  # a Gregorian date: its Jalali month
    buffer = io.BytesIO()
    book.save(buffer)
    outcome = run_import(
        kind="payments", dataset=load_dataset(content=buffer.getvalue(), file_name="p.xlsx"), file_name="p.xlsx"
    )
    assert outcome.ok, outcome.problems
    assert sorted(Payment.objects.values_list("month", "fee")) == [
        (JalaliMonth(1403, 1), Decimal("20.5")),
        (JalaliMonth(1403, 2), Decimal("20")),
    ]
