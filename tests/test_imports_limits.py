"""Large spreadsheets never take the web process down: limits checked on the raw bytes before any
parsing, a background job with a progress page for large files, uploads that do not linger."""

from __future__ import annotations

import io
import time
import zipfile

import openpyxl
import pytest
import tablib
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django_q.conf import Conf

from fund.admin.imports import UploadCache
from fund.imports import ImportFileError, files, load_dataset, normalise_headers
from fund.imports.payments import PaymentResource
from fund.models import ImportJob, Payment, User

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
def worker(monkeypatch, django_capture_on_commit_callbacks):
    """Queued jobs run here, at commit, as the background worker would run them."""
    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def upload(client: Client, content: bytes, name: str, model: str = "payment"):
    file = io.BytesIO(content)
    file.name = name
    fmt = FORMATS[name.rsplit(".", 1)[1]]
    return client.post(reverse(f"admin:fund_{model}_import"), {"import_file": file, "format": fmt})


def form_errors(response) -> list[str]:
    return [str(error) for errors in response.context["form"].errors.values() for error in errors]


def blank_lines() -> bytes:
    """The attack's file: a header and two million blank lines (6 MB)."""
    return b"member,month,fee\n" + b"\r\n\n" * 1_000_000


def zip_bomb() -> bytes:
    """A real workbook plus a member that unpacks from a few hundred KB to 200 MB."""
    book = openpyxl.Workbook()
    book.active.append(["member", "month", "fee"])
    book.active.append(["alice", "1404/01", "20"])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("xl/media/padding.bin", "w", force_zip64=True) as member:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(200):
                member.write(chunk)
    return buffer.getvalue()


# --- limits, before parsing ----------------------------------------------------------------------------


def test_two_million_blank_lines_are_refused_before_parsing(db):
    content = blank_lines()
    started = time.perf_counter()
    with pytest.raises(ImportFileError, match="more than 200,000 rows"):
        load_dataset(content=content, file_name="payments.csv")
    assert time.perf_counter() - started < 2


def test_a_zip_bomb_workbook_is_refused_from_its_directory(db):
    content = zip_bomb()
    assert len(content) < 1024 * 1024
    started = time.perf_counter()
    with pytest.raises(ImportFileError, match="unpacks to 200 MB"):
        load_dataset(content=content, file_name="payments.xlsx")
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "content, message",
    [
        (b"x" * (files.MAX_BYTES + 1), "at most 16 MB"),
        (b",".join(b"c%d" % i for i in range(31)) + b"\n", "more than 30 columns"),
        (b"member,month,fee,a,b,c,d,e\n" + b"1,2,3,4,5,6,7,8\n" * 190_000, "more than 1,500,000 cells"),
    ],
    ids=["bytes", "columns", "cells"],
)
def test_each_limit_is_refused_with_a_plain_message(db, content, message):
    with pytest.raises(ImportFileError, match=message):
        load_dataset(content=content, file_name="payments.csv")


def test_an_xlsx_is_counted_again_while_it_streams(db, monkeypatch):
    book = openpyxl.Workbook()
    book.active.append(["member", "month", "fee"])
    for _ in range(10):
        book.active.append(["alice", "1404/01", "20"])
    buffer = io.BytesIO()
    book.save(buffer)
    monkeypatch.setattr(files, "MAX_ROWS", 5)
    with pytest.raises(ImportFileError, match="more than 5 rows"):
        load_dataset(content=buffer.getvalue(), file_name="payments.xlsx")


@pytest.mark.parametrize("name, content", [("blank-lines.csv", None), ("bomb.xlsx", None)])
def test_the_admin_refuses_an_oversized_file_on_the_form_and_stores_nothing(staff, name, content):
    content = blank_lines() if name.endswith(".csv") else zip_bomb()
    response = upload(staff, content, name)
    assert response.status_code == 200
    assert response.context.get("confirm_form") is None
    assert any("too large" in error or "unpacks to" in error for error in form_errors(response))
    assert response.context["form"].files["import_file"].tmp_storage_name == ""  # never stored
    assert not ImportJob.objects.exists() and not Payment.objects.exists()


def test_the_command_refuses_an_oversized_file(db, tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "payments.csv"
    path.write_bytes(blank_lines())
    with pytest.raises(CommandError, match="more than 200,000 rows"):
        call_command("import_history", "payments", str(path))


def test_the_duplicate_header_check_is_linear():
    # A quadratic check (count each name in the whole header) takes minutes on this header.
    dataset = tablib.Dataset(headers=["member", "month", "fee"] * 100_000)
    started = time.perf_counter()
    with pytest.raises(ImportFileError, match="appears twice"):
        normalise_headers(dataset, PaymentResource.HEADERS, PaymentResource.REQUIRED)
    assert time.perf_counter() - started < 2


# --- uploads do not linger ---------------------------------------------------------------------------------


def test_an_upload_waits_half_an_hour_at_most_and_goes_once_refused_or_confirmed(staff, member):
    assert UploadCache.CACHE_LIFETIME <= 30 * 60
    refused = upload(staff, b"member,month,fee\nnobody,1404/01,20\n", "payments.csv")
    assert refused.context.get("confirm_form") is None
    name = refused.context["form"].files["import_file"].tmp_storage_name
    assert name and cache.get(UploadCache.CACHE_PREFIX + name) is None

    page = upload(staff, b"member,month,fee\nalice,1404/01,20\n", "payments.csv")
    form = page.context["confirm_form"]
    name = form.initial["import_file_name"]
    assert cache.get(UploadCache.CACHE_PREFIX + name) is not None
    staff.post(reverse("admin:fund_payment_process_import"), {k: form.initial.get(k, "") for k in form.fields})
    assert Payment.objects.count() == 1
    assert cache.get(UploadCache.CACHE_PREFIX + name) is None


# --- large files: the background job ------------------------------------------------------------------------


def many_payments(history, rows: int, *, bad_row: int | None = None) -> bytes:
    people = [history.member(f"p{i:03d}") for i in range(100)]
    lines = ["member,month,fee"]
    for n in range(rows):
        name = "nobody" if n + 1 == bad_row else people[n % 100].username
        lines.append(f"{name},{1340 + n // 1200}/{n // 100 % 12 + 1:02d},20")
    return ("\n".join(lines) + "\n").encode()


def test_a_large_file_is_checked_and_written_by_the_background_job(staff, history, worker):
    content = many_payments(history, files.BACKGROUND_ROWS + 1000)
    with worker():
        response = upload(staff, content, "payments.csv")
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/fund/payment/import/job/{job.pk}/"
    assert not Payment.objects.exists()  # the request wrote nothing

    page = staff.get(response["Location"])
    text = page.content.decode()
    assert job.__class__.objects.get().state == "checked"
    assert "6000 payments from 100 members" in text and "Confirm import" in text
    assert text.count('class="preview-row') == 50

    with worker():
        confirmed = staff.post(response["Location"])
    assert confirmed.status_code == 302
    job.refresh_from_db()
    assert (job.state, job.written, bytes(job.content)) == ("done", 6000, b"")
    assert Payment.objects.count() == 6000
    assert "Imported 6000 rows." in staff.get(response["Location"]).content.decode()
    with worker():
        again = staff.post(response["Location"])  # a second confirmation does nothing
    assert again.status_code == 302 and Payment.objects.count() == 6000


def test_a_large_file_shows_its_progress_while_the_worker_is_busy(staff, history):
    content = many_payments(history, files.BACKGROUND_ROWS + 10)
    response = upload(staff, content, "payments.csv")  # no worker: the job stays queued
    page = staff.get(response["Location"]).content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert 'data-state="checking"' in page and "this page refreshes itself" in page
    # The import page links it, so the operator can come back to it.
    assert f'href="{response["Location"]}"' in staff.get(reverse("admin:fund_payment_import")).content.decode()


def test_a_large_file_with_a_bad_row_is_refused_by_the_job_and_its_bytes_deleted(staff, history, worker):
    content = many_payments(history, files.BACKGROUND_ROWS + 10, bad_row=4321)
    with worker():
        response = upload(staff, content, "payments.csv")
    job = ImportJob.objects.get()
    assert (job.state, bytes(job.content)) == ("refused", b"")
    text = staff.get(response["Location"]).content.decode()
    assert "1 problem: nothing was imported." in text
    assert "row 4321 (line 4322), member: Unknown member “nobody”." in text
    assert "Confirm import" not in text
    assert not Payment.objects.exists()


def test_only_those_who_may_import_see_an_import_job(client, history, member, operator):
    job = ImportJob.objects.create(kind="payments", file_name="p.csv", created_by=operator)
    member.is_staff = True
    member.save()
    client.force_login(member)
    page = client.get(f"/admin/fund/payment/import/job/{job.pk}/")
    assert page.status_code in (302, 403)
    client.force_login(operator)
    assert client.get(f"/admin/fund/payment/import/job/{job.pk}/").status_code == 200
    assert client.get(f"/admin/fund/loan/import/job/{job.pk}/").status_code == 404  # another kind's page
