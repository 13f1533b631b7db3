"""Spreadsheet import and export through the admin's HTTP views: upload (preview), then confirm."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from fund.imports import load_dataset, run_import
from fund.jalali import JalaliMonth
from fund.models import Loan, Payment, User
from tests.test_imports import EXPECTED_PROBLEMS

SAMPLES = Path(__file__).parent / "samples"
MODELS = {"members": "user", "loans": "loan", "payments": "payment"}
FORMATS = {"csv": "0", "xlsx": "1"}


@pytest.fixture
def staff(client: Client, operator: User) -> Client:
    client.force_login(operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def preview(client: Client, kind: str, name: str, content: bytes | None = None):
    """POST the import form: the dry run whose page shows the preview or the problems."""
    content = (SAMPLES / name).read_bytes() if content is None else content
    upload = io.BytesIO(content)
    upload.name = name
    fmt = FORMATS[name.rsplit(".", 1)[1]]
    return client.post(reverse(f"admin:fund_{MODELS[kind]}_import"), {"import_file": upload, "format": fmt})


def confirm(client: Client, kind: str, page):
    """POST the confirm form the preview page carries (the file is read again and written)."""
    form = page.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    return client.post(reverse(f"admin:fund_{MODELS[kind]}_process_import"), data)


def import_through_admin(client: Client, kind: str, name: str) -> None:
    page = preview(client, kind, name)
    assert page.status_code == 200
    assert page.context.get("confirm_form") is not None, page.content.decode()[:3000]
    done = confirm(client, kind, page)
    assert done.status_code == 302
    assert done["Location"] == reverse(f"admin:fund_{MODELS[kind]}_changelist")


@pytest.mark.redis  # the upload waits in the cache between preview and confirm
@pytest.mark.parametrize("extension", ["csv", "xlsx"])
def test_operator_imports_each_sample_by_preview_then_confirm(staff, extension):
    page = preview(staff, "members", f"members.{extension}")
    text = page.content.decode()
    assert "3 members (1 inactive)." in text
    assert "maryam" in text and "Confirm import" in text
    assert not User.objects.filter(is_member=True).exists()  # the preview wrote nothing

    confirm(staff, "members", page)
    assert sorted(User.objects.filter(is_member=True).values_list("username", "is_active")) == [
        ("maryam", False),
        ("reza", True),
        ("sara", True),
    ]
    page = preview(staff, "loans", f"loans.{extension}")
    assert page.context["result"].preview_rows == [
        (1, ["reza", "1402/03", "240.00"]),
        (2, ["sara", "1402/06", "100.00"]),
    ]
    confirm(staff, "loans", page)
    assert sorted(Loan.objects.values_list("member__username", "month", "amount")) == [
        ("reza", JalaliMonth(1402, 3), 240),
        ("sara", JalaliMonth(1402, 6), 100),
    ]

    page = preview(staff, "payments", f"payments.{extension}")
    assert "30 payments from 3 members, 1402/01–1402/12." in page.content.decode()
    result = page.context["result"]
    assert result.preview_headers[:5] == ["member", "month", "fee", "repayment", "bitpin_id"]
    assert (1, ["reza", "1402/01", "25.00", "0.00", "bp-reza-1", ""]) in result.preview_rows
    assert (10, ["reza", "1402/04", "25.00", "20.00", "bp-reza-4", "1402/03"]) in result.preview_rows
    assert not Payment.objects.exists()
    done = confirm(staff, "payments", page)
    assert done.status_code == 302
    payments = Payment.objects.all()
    assert payments.count() == 30
    assert set(payments.values_list("status", "source", "note")) == {
        ("verified", "import", f"imported from payments.{extension}")
    }
    assert set(payments.values_list("verified_by__username", flat=True)) == {"operator"}
    assert dict(Loan.objects.values_list("member__username", "state")) == {"reza": "active", "sara": "settled"}
    messages = [str(m) for m in staff.get(done["Location"]).context["messages"]]
    assert any("Imported 30 rows." in m for m in messages)


@pytest.mark.parametrize("kind", ["members", "loans", "payments"])
def test_an_error_file_preview_lists_every_bad_row_and_offers_no_confirm(staff, kind):
    for sample in ("members", "loans", "payments"):
        import_through_admin(staff, sample, f"{sample}.csv")
    counts = (User.objects.count(), Loan.objects.count(), Payment.objects.count())

    page = preview(staff, kind, f"{kind}-errors.csv")
    assert page.status_code == 200
    assert page.context.get("confirm_form") is None
    text = page.content.decode()
    expected = EXPECTED_PROBLEMS[kind]
    assert f"{len(expected)} rows cannot be imported, so nothing will be written." in text
    problems = {row["number"]: row["reasons"] for row in page.context["result"].problem_rows()}
    assert sorted(problems) == sorted(expected)
    for row, reason in expected.items():
        assert f'data-row="{row}"' in text
        assert any(reason in message for _column, message in problems[row])
        assert escape(reason) in text
    assert (User.objects.count(), Loan.objects.count(), Payment.objects.count()) == counts


def test_a_file_with_a_missing_column_is_refused_with_one_plain_message(staff):
    page = preview(staff, "loans", "loans.csv", b"member,amount\nreza,100\n")
    assert page.context.get("confirm_form") is None
    assert "The file has no “month” column." in page.content.decode()


def test_a_large_file_preview_shows_a_summary_and_only_the_first_rows(staff, history):
    for number in range(30):
        history.member(f"m{number:02d}")
    lines = ["member,month,fee"] + [f"m{n % 30:02d},{1390 + n // 360}/{n // 30 % 12 + 1:02d},20" for n in range(1200)]
    page = preview(staff, "payments", "big.csv", "\n".join(lines).encode())
    text = page.content.decode()
    assert "1200 payments from 30 members, 1390/01–1393/04." in text
    assert text.count('class="preview-row') == 50
    assert "…and 1150 more rows, checked and ready." in text
    assert not Payment.objects.exists()


@pytest.mark.redis  # the upload waits in the cache between preview and confirm
def test_confirm_writes_nothing_when_the_data_changed_since_the_preview(staff, history):
    for kind in ("members", "loans"):
        import_through_admin(staff, kind, f"{kind}.csv")
    page = preview(staff, "payments", "payments.csv")
    assert page.context.get("confirm_form") is not None
    # Someone records one of the file's payments between the preview and the confirmation.
    history.pay(User.objects.get(username="sara"), "1402/05", bitpin_id="")

    done = confirm(staff, "payments", page)
    assert done.status_code == 302
    assert Payment.objects.count() == 1
    messages = [str(m) for m in staff.get(done["Location"]).context["messages"]]
    assert any("Nothing was imported: 1 problem." in m and "already has a payment for 1402/05" in m for m in messages)


def test_export_from_the_admin_imports_again_unchanged(staff):
    for kind in ("members", "loans", "payments"):
        import_through_admin(staff, kind, f"{kind}.csv")
    exported = {}
    for kind, model in MODELS.items():
        response = staff.post(reverse(f"admin:fund_{model}_export"), {"format": FORMATS["csv"], "resource": "0"})
        assert response.status_code == 200, response.content[:500]
        exported[kind] = response.content
    assert exported["payments"].decode().splitlines()[0] == "member,month,fee,repayment,bitpin_id"
    before = sorted(Payment.objects.values_list("member__username", "month", "fee", "repayment", "bitpin_id"))
    Payment.objects.all().delete()
    Loan.objects.all().delete()

    for kind in ("loans", "payments"):
        name = f"{kind}.csv"
        dataset = load_dataset(content=exported[kind], file_name=name)
        assert run_import(kind=kind, dataset=dataset, file_name=name).ok
    after = sorted(Payment.objects.values_list("member__username", "month", "fee", "repayment", "bitpin_id"))
    assert after == before


def test_only_the_operator_may_import(client, member, operator):
    member.is_staff = True
    member.save()
    client.force_login(member)
    response = client.get(reverse("admin:fund_payment_import"))
    assert response.status_code in (302, 403)


@pytest.mark.parametrize(
    ("name", "chosen", "read_as"),
    [("members.csv", "xlsx", "CSV"), ("members.xlsx", "csv", "XLSX")],
)
def test_a_file_is_read_in_its_own_format_whatever_format_was_chosen(staff, name, chosen, read_as):
    upload = io.BytesIO((SAMPLES / name).read_bytes())
    upload.name = name
    page = staff.post(reverse("admin:fund_user_import"), {"import_file": upload, "format": FORMATS[chosen]})
    assert page.context.get("confirm_form") is not None, page.content.decode()[:3000]
    assert "3 members (1 inactive)." in page.content.decode()
    assert f"The file is in {read_as} format: it was read as {read_as}, not as {chosen.upper()}." in [
        str(m) for m in page.context["messages"]
    ]


def test_a_workbook_saved_under_a_csv_name_is_read_as_the_workbook_it_is(staff):
    upload = io.BytesIO((SAMPLES / "members.xlsx").read_bytes())
    upload.name = "members.csv"
    page = staff.post(reverse("admin:fund_user_import"), {"import_file": upload, "format": FORMATS["csv"]})
    assert page.context.get("confirm_form") is not None, page.content.decode()[:3000]
    assert "3 members (1 inactive)." in page.content.decode()


def test_a_file_that_is_neither_csv_nor_a_workbook_is_refused_in_a_sentence(staff):
    upload = io.BytesIO(b"\x00\x01binary junk")
    upload.name = "members.xlsx"
    page = staff.post(reverse("admin:fund_user_import"), {"import_file": upload, "format": FORMATS["csv"]})
    assert page.context.get("confirm_form") is None
    text = page.content.decode()
    assert "it is not an XLSX workbook" in text and "BadZipFile" not in text
    assert not User.objects.filter(is_member=True).exists()
