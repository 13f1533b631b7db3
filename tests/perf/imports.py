"""Scenario 2: importing 100,000 past payments from CSV, against the default import and COPY.

The rows belong to members who joined the benchmark fund with no history yet: each has one past
loan (granted in the first month, 200 USDT, 20 a month), and the file holds their monthly payments,
ten of which repay that loan (so the import ties repayments to loans and settles them afterwards).
Every row carries its own Bitpin id. The same rows go three ways, each repetition rolled back:

- ours: ``fund.imports.run_import`` on the CSV file's bytes, every check on (the admin's path);
- django-import-export's default: a plain ModelResource, row by row, on the first rows of the
  same file (it is ~300 rows/s, so the full file would take minutes): its rate is extrapolated;
- PostgreSQL's COPY of the same rows, already resolved to ids: the floor, no checks at all.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from decimal import Decimal

import tablib
from django.db import connection, transaction
from import_export import resources, widgets
from import_export.fields import Field

from fund.imports import load_dataset, run_import
from fund.loans import monthly_minimum
from fund.models import FundConfig, Loan, Payment, User
from tests.perf.fund import Fund, Sizes
from tests.perf.harness import Figure, Row, Sample, repeat

PREFIX = "imported"
LOAN = Decimal("200")
FEE = Decimal("25")


@dataclass
class ImportFile:
    content: bytes  # the CSV as the operator uploads it
    rows: list[dict[str, object]]  # the same rows resolved to ids (for the default import and COPY)


def _members(count: int) -> list[User]:
    people = [User(username=f"{PREFIX}{i + 1}", first_name="Imported", is_member=True) for i in range(count)]
    for person in people:
        person.set_unusable_password()
    return User.objects.bulk_create(people)


def prepare(fund: Fund, sizes: Sizes) -> ImportFile:
    """Members and their loans (committed); the file of their payments (not yet imported)."""
    months = fund.first_month.range_to(fund.last_month)
    people = _members(math.ceil(sizes.import_rows / len(months)))
    config = FundConfig.load()
    loans = {
        loan.member_id: loan
        for loan in Loan.objects.bulk_create(
            Loan(member=p, amount=LOAN, month=months[0], monthly_minimum=monthly_minimum(LOAN, config), note="perf")
            for p in people
        )
    }
    text, rows = io.StringIO(), []
    writer = csv.writer(text)
    writer.writerow(["member", "month", "fee", "repayment", "bitpin_id"])
    for person in people:
        loan, owed = loans[person.pk], LOAN
        for month in months:
            if len(rows) == sizes.import_rows:
                break
            repayment = min(loan.monthly_minimum, owed) if month > loan.month and owed else Decimal(0)
            owed -= repayment
            bitpin_id = f"imp-{person.pk}-{int(month)}"
            writer.writerow([person.username, str(month), f"{FEE}", f"{repayment}", bitpin_id])
            rows.append(
                {"member": person, "month": month, "fee": FEE, "repayment": repayment, "bitpin_id": bitpin_id,
                 "loan": loan if repayment else None}
            )  # fmt: skip
    return ImportFile(content=text.getvalue().encode("utf-8"), rows=rows)


def cleanup() -> None:
    Loan.objects.filter(member__username__startswith=PREFIX).delete()
    User.objects.filter(username__startswith=PREFIX).delete()


# --- ours ------------------------------------------------------------------------------------------


def import_ours(file: ImportFile) -> None:
    with transaction.atomic():
        dataset = load_dataset(content=file.content, file_name="payments.csv")
        outcome = run_import(kind="payments", dataset=dataset, file_name="payments.csv")
        if not outcome.ok or outcome.written != len(file.rows):
            raise SystemExit(f"the benchmark's import was refused: {[str(p) for p in outcome.problems[:5]]}")
        settled = Loan.objects.filter(member__username__startswith=PREFIX, state=Loan.State.SETTLED).count()
        if not settled:
            raise SystemExit("the benchmark's import settled no loan: the repayments were not tied")
        transaction.set_rollback(True)


# --- django-import-export's default ------------------------------------------------------------------


class DefaultPaymentResource(resources.ModelResource):
    """A ModelResource as the documentation shows it: row by row, diffs, one query per lookup.

    Only what the default cannot do alone is declared: the member by username, and the month as
    text (the model field parses "1404/01" when saving). The file gains the columns a plain import
    needs and ours derives: the loan id, the status and the source.
    """

    member = Field(attribute="member", column_name="member", widget=widgets.ForeignKeyWidget(User, "username"))
    month = Field(attribute="month", column_name="month", widget=widgets.Widget())

    class Meta:
        model = Payment
        fields = ("id", "member", "month", "fee", "repayment", "loan", "bitpin_id", "status", "source")


def default_dataset(file: ImportFile, count: int) -> tablib.Dataset:
    dataset = tablib.Dataset(headers=["member", "month", "fee", "repayment", "loan", "bitpin_id", "status", "source"])
    for row in file.rows[:count]:
        loan = row["loan"]
        dataset.append(
            [row["member"].username, str(row["month"]), str(row["fee"]), str(row["repayment"]),
             loan.pk if loan else "", row["bitpin_id"], "verified", "import"]
        )  # fmt: skip
    return dataset


def import_default(dataset: tablib.Dataset) -> None:
    with transaction.atomic():
        result = DefaultPaymentResource().import_data(dataset, dry_run=False, raise_errors=True)
        if result.totals["new"] != len(dataset):
            raise SystemExit(f"the default import wrote {result.totals['new']} of {len(dataset)} rows")
        transaction.set_rollback(True)


# --- COPY ----------------------------------------------------------------------------------------------

COPY_COLUMNS = (
    "member_id", "month", "fee", "repayment", "loan_id", "bitpin_id", "status", "source",
    "created_at", "verified_at", "note", "attempts", "last_error",
)  # fmt: skip


def copy_text(file: ImportFile) -> str:
    """The rows in COPY's text format, prepared before the clock starts (the floor is COPY alone)."""
    now = "2025-01-01 00:00:00+00"
    lines = []
    for row in file.rows:
        loan = row["loan"]
        values = [row["member"].pk, int(row["month"]), row["fee"], row["repayment"], loan.pk if loan else "\\N",
                  row["bitpin_id"], "verified", "import", now, now, "imported", 0, ""]  # fmt: skip
        lines.append("\t".join(str(value) for value in values))
    return "\n".join(lines) + "\n"


def copy_rows(text: str, count: int) -> None:
    with transaction.atomic():
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY fund_payment ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                copy.write(text)
        if Payment.objects.filter(bitpin_id__startswith="imp-").count() != count:
            raise SystemExit("COPY did not write every row")
        transaction.set_rollback(True)


# --- the scenario --------------------------------------------------------------------------------------


def run(fund: Fund, sizes: Sizes) -> list[Row]:
    cleanup()
    file = prepare(fund, sizes)
    try:
        count = len(file.rows)
        ours = repeat(lambda: import_ours(file), times=sizes.reps if count < 20_000 else max(sizes.slow_reps, 3))
        sample = default_dataset(file, sizes.default_import_rows)
        default = repeat(lambda: import_default(sample), times=sizes.slow_reps)
        floor: Sample | None = None
        if connection.vendor == "postgresql":
            text = copy_text(file)
            floor = repeat(lambda: copy_rows(text, count), times=sizes.reps)
    finally:
        cleanup()
    ours_rate = count / ours.median
    default_rate = len(sample) / default.median
    rows = [
        Row(
            scenario="2. Import",
            what=f"{count:,} payment rows from CSV, every check (run_import)",
            ours=Figure.of(ours, note=f"{ours_rate:,.0f} rows/s"),
            baseline=Figure(
                count / default_rate,
                "s",
                None,
                len(default.seconds),
                f"{default_rate:,.0f} rows/s on {len(sample):,} rows, extrapolated; "
                f"{default.query_count / len(sample):,.1f} queries a row",
            ),  # fmt: skip
            baseline_what="django-import-export default, row by row",
            target="< 15 s, ≥ 25× default",
            met=ours.median < 15 and default_rate * 25 <= ours_rate,
        )
    ]
    if floor is not None:
        rows.append(
            Row(
                scenario="2. Import",
                what="the same rows: ours vs PostgreSQL COPY (the floor)",
                ours=Figure.of(ours, note=f"{ours_rate:,.0f} rows/s"),
                baseline=Figure.of(floor, note=f"{count / floor.median:,.0f} rows/s"),
                baseline_what="COPY of the resolved rows, no checks",
                target="report the ratio",
            )
        )
    return rows
