"""A large import in a real browser: the operator uploads a file of more than BACKGROUND_ROWS rows,
lands on the job's page, which refreshes itself while the worker checks it (the queued job is run
here, as the worker would run it), reads the summary, confirms, and reads that it was written.
Screenshots in Persian and English go to screenshots/ for a person to check."""

from __future__ import annotations

from pathlib import Path

import pytest

from fund import tasks
from fund.imports.files import BACKGROUND_ROWS
from fund.models import FundConfig, ImportJob, Payment, User
from tests.fixtures.history import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SAMPLES = Path(__file__).parents[1] / "samples"


@pytest.fixture
def big_file(tmp_path) -> str:
    FundConfig.load()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    history = History()
    people = [history.member(f"p{i:03d}") for i in range(50)]
    lines = ["member,month,fee"]
    lines += [
        f"{people[n % 50].username},{1350 + n // 600}/{n // 50 % 12 + 1:02d},20" for n in range(BACKGROUND_ROWS + 500)
    ]
    path = tmp_path / "payments.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("language", ["fa", "en"])
def test_the_operator_follows_a_large_import_to_the_end(language, big_file, new_page, log_in, screenshot):
    page = new_page(language=language)
    log_in(page, "operator", "operator-pass-1404", next="/admin/fund/payment/import/")
    page.set_input_files("input[name=import_file]", big_file)
    page.select_option("select[name=format]", "0")
    with page.expect_navigation():
        page.click("form[enctype='multipart/form-data'] button[type=submit]")
    job = ImportJob.objects.get()
    assert page.url.endswith(f"/admin/fund/payment/import/job/{job.pk}/")
    assert page.locator("#import-job").get_attribute("data-state") == "checking"
    assert page.locator("meta[http-equiv=refresh]").count() == 1
    screenshot(page, f"admin-import-job-checking-{language}")

    tasks.check_import(job.pk)  # the worker's check
    page.reload()
    assert page.locator("#import-job").get_attribute("data-state") == "checked"
    assert page.locator(".preview-row").count() == 50
    screenshot(page, f"admin-import-job-checked-{language}")
    with page.expect_navigation():
        page.click("#import-job form button[type=submit]")
    assert not Payment.objects.exists()

    tasks.write_import(job.pk)  # the worker's write
    page.reload()
    assert page.locator("#import-job").get_attribute("data-state") == "done"
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    assert Payment.objects.count() == BACKGROUND_ROWS + 500
    screenshot(page, f"admin-import-job-done-{language}")


def test_a_csv_file_sent_as_xlsx_is_previewed_with_its_cells_under_their_headings(new_page, log_in, screenshot):
    """The format chosen says XLSX, the file is CSV: it is read as CSV (and the operator told), and
    in Persian each cell sits at the right of its column, under its heading."""
    FundConfig.load()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    page = new_page(language="fa")
    log_in(page, "operator", "operator-pass-1404", next="/admin/fund/user/import/")
    page.set_input_files("input[name=import_file]", str(SAMPLES / "members.csv"))
    page.select_option("select[name=format]", "1")  # XLSX
    with page.expect_navigation():
        page.click("form[enctype='multipart/form-data'] button[type=submit]")
    assert page.locator(".preview-row").count() == 3
    assert "این فایل CSV است: به‌صورت CSV خوانده شد، نه XLSX." in page.content()
    screenshot(page, "admin-import-preview-fa")
    misplaced = page.evaluate(
        """() => {
            const right = (cell) => { const r = document.createRange(); r.selectNodeContents(cell);
                                      return r.getBoundingClientRect().right; };
            const headings = [...document.querySelectorAll("#import-preview thead th")];
            const out = [];
            for (const row of document.querySelectorAll(".preview-row")) {
                [...row.children].forEach((cell, i) => {
                    if (cell.textContent.trim() && Math.abs(right(cell) - right(headings[i])) > 4) out.push(cell.textContent.trim());
                });
            }
            return out;
        }"""
    )
    assert misplaced == []
