"""Bad input everywhere a person types or uploads: a clear error, nothing written, never a 500.

Hypothesis posts what people really type into amounts (negative, NaN, infinities, Persian and
Arabic digits, 30 decimals, thousands separators, empty, huge) and into text (very long, control
characters, NUL bytes, scripts), and wrong months, to the member page's forms, the login and
password forms, the admin's forms and filters; and uploads malformed spreadsheets (wrong headers,
binary garbage, empty files, enormous cells). The test client raises any server error, so a 500
fails the test; every example runs in a savepoint that is rolled back afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fund.imports import ImportFileError, load_dataset, problems_of, run_import
from fund.jalali import to_persian_digits
from fund.models import Draw, FundConfig, Loan, Payment, User
from fund.money import MAX_AMOUNT
from fund.text import normalise_bitpin_id
from tests.conftest import THIS_MONTH, empty_inline_management

pytestmark = pytest.mark.usefixtures("today_in_this_month")

PAY = reverse("member-pay")
LOAN_REQUEST = reverse("member-loan-request")

NASTY_AMOUNTS = [
    "", " ", "-1", "-0.01", "-0", "0", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-inf", "1e400", "1E-30",
    "0." + "1" * 30, "20." + "0" * 30, "20." + "5" * 30, "9" * 25, "۲۰", "٢٠٫٥", "۲۰.۱۲۳۴۵۶۷۸۹", "۲۵٬۰۰۰",
    "1,5", "1.000,5", "20 USDT", "0x14", "20\x00", "\x00", "<script>alert(1)</script>", "'; DROP TABLE x; --",
    "१२", "𝟐𝟎", "½", "²", "1_000", "+20", " 20 ", "20\n", "1e2", "١e٢", "x" * 5000, "20" * 40,
]  # fmt: skip
NASTY_TEXT = ["", " ", "\x00", "a\x00b", "x" * 101, "x" * 5000, "bp 1", "bp\t1", "bp\u200b1", "<b>bp</b>",
              "../../admin", "%2e%2e", "bp-\U0001f600", "\ud7ff", "'", '"', "\\"]  # fmt: skip
NASTY_MONTHS = ["", "1404/13", "1404/00", "0/1", "99999/01", "1404-9-1", "۱۴۰۴/۱۳", "1404/9", "abc",
                "-1404/01", "1404/1e1", "١٤٠٤/٠٩", "140409", "9" * 50, "1399/12", "1405/01", "1404/09",
                "9999/12", "\x00"]  # fmt: skip


def _persian(number: Decimal) -> str:
    return to_persian_digits(f"{number:f}")


amounts = st.one_of(
    st.sampled_from(NASTY_AMOUNTS),
    st.text(max_size=40),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=0, max_value=10**6, places=2).map(_persian),
    st.floats().map(repr),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
)
texts = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=200))
months = st.one_of(st.sampled_from(NASTY_MONTHS), st.text(max_size=12))
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@contextmanager
def rolled_back() -> Iterator[None]:
    """One hypothesis example: whatever it writes is undone before the next one."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def snapshot() -> dict:
    return {
        "payments": list(Payment.objects.order_by("pk").values()),
        "loans": list(Loan.objects.order_by("pk").values()),
        "draws": Draw.objects.count(),
        "users": list(User.objects.order_by("pk").values()),
        "config": list(FundConfig.objects.values()),
    }


def shows_errors(response) -> bool:
    html = response.content.decode()
    return response.status_code == 200 and ("errorlist" in html or "errornote" in html)


@pytest.fixture
def alice(client, member, config):
    client.force_login(member)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def borrower(alice, member, history):
    """Alice owes on a loan of 120 (minimum 20), so the payment form asks for a repayment."""
    loan = history.loan(member, THIS_MONTH - 2, 120, monthly_minimum_amount=20)
    history.pay(member, THIS_MONTH - 1, 20, 20, loan=loan)
    return alice


# --- the member page ----------------------------------------------------------------------------------


@HYPOTHESIS
@given(fee=amounts, loan_request=st.none() | amounts, bitpin_id=texts)
@example(fee="20", loan_request="-1", bitpin_id="bp-1")
@example(fee="۲۰", loan_request="۵۰", bitpin_id=" bp-1 ")
@example(fee="1e1000000", loan_request="1e1000000", bitpin_id="bp-1")  # decimal.Overflow once
@example(fee="20", loan_request=None, bitpin_id="bp\u200b1")
@example(fee="20", loan_request=None, bitpin_id="bp\u00a01")
@example(fee="20", loan_request=None, bitpin_id="\u200fbp-1")
@example(fee="20", loan_request=None, bitpin_id="ｂｐ－１")
def test_the_payment_form_answers_any_input_with_errors_or_a_valid_payment(
    alice, member, config, fee, loan_request, bitpin_id
):
    data = {"fee": fee, "bitpin_id": bitpin_id}
    if loan_request is not None:
        data["loan_request"] = loan_request
    with rolled_back():
        before = snapshot()
        response = alice.post(PAY, data)
        if response.status_code == 200:
            assert shows_errors(response)
            assert snapshot() == before
            return
        assert response.status_code == 302
        payment = Payment.objects.get(member=member)
        assert (payment.month, payment.status, payment.repayment) == (THIS_MONTH, Payment.Status.PENDING, 0)
        assert config.min_fee <= payment.fee <= MAX_AMOUNT
        assert payment.bitpin_id == normalise_bitpin_id(bitpin_id) and payment.bitpin_id.isprintable()
        assert 0 < len(payment.bitpin_id) <= 100 and not any(ch.isspace() for ch in payment.bitpin_id)
        assert 0 <= User.objects.get(pk=member.pk).loan_request_amount <= MAX_AMOUNT


@HYPOTHESIS
@given(fee=st.sampled_from(["20", "25"]) | amounts, repayment=amounts)
@example(fee="20", repayment="1e1000000")
def test_the_repayment_field_answers_any_input_with_errors_or_a_repayment_within_bounds(
    borrower, member, fee, repayment
):
    with rolled_back():
        before = snapshot()
        response = borrower.post(PAY, {"fee": fee, "repayment": repayment, "bitpin_id": "bp-repay"})
        if response.status_code == 200:
            assert shows_errors(response)
            assert snapshot() == before
            return
        payment = Payment.objects.get(member=member, month=THIS_MONTH)
        assert Decimal(20) <= payment.repayment <= Decimal(100)  # the minimum … what is still owed
        assert payment.loan_id is not None


@HYPOTHESIS
@given(amount=amounts)
@example(amount="1e1000000")
@example(amount="۲\u200f۰")
def test_the_loan_request_form_answers_any_input_with_errors_or_a_valid_request(alice, member, amount):
    with rolled_back():
        before = snapshot()
        response = alice.post(LOAN_REQUEST, {"amount": amount})
        if response.status_code == 200:
            assert shows_errors(response)
            assert snapshot() == before
            return
        assert response.status_code == 302
        assert 0 <= User.objects.get(pk=member.pk).loan_request_amount <= MAX_AMOUNT


@HYPOTHESIS
@given(body=st.dictionaries(texts, texts, max_size=5))
def test_the_draw_button_answers_any_body_with_a_message(alice, body):
    with rolled_back():
        response = alice.post(reverse("member-run-draw"), body)
        assert response.status_code == 302
        assert Draw.objects.count() == 0


@HYPOTHESIS
@given(username=texts, password=texts)
def test_the_login_form_answers_any_input_without_logging_in(client, member, config, username, password):
    with rolled_back():
        response = client.post(reverse("login"), {"username": username, "password": password})
        assert response.status_code == 200
        assert "_auth_user_id" not in client.session


@HYPOTHESIS
@given(email=texts)
def test_the_password_reset_form_answers_any_input(client, member, config, email, mailoutbox):
    with rolled_back():
        response = client.post(reverse("password-reset"), {"email": email})
        assert response.status_code in (200, 302)
        assert all(message.to == [member.email] for message in mailoutbox)


@HYPOTHESIS
@given(uid=texts, token=texts)
def test_set_password_links_with_any_garbage_are_refused_kindly(client, member, uid, token):
    path = f"/password/set/{uid.replace('/', '')}/{token.replace('/', '')}/"
    with rolled_back():
        response = client.get(path, follow=True)
        assert response.status_code in (200, 404)
        assert User.objects.get(pk=member.pk).check_password("alice-pass-1404")


# --- spreadsheets -------------------------------------------------------------------------------------

BAD_FILES = {
    "empty.csv": b"",
    "only-bom.csv": b"\xef\xbb\xbf",
    "header-only.csv": b"member,month,fee\n",
    "wrong-headers.csv": b"name,when,how much\nalice,1404/01,20\n",
    "one-column.csv": b"alice\n",
    "binary.csv": bytes(range(256)) * 20,
    "latin1.csv": "member,month,fee\nalice,1404/01,20\u00e9\n".encode("latin-1"),
    "nul.csv": b"member,month,fee\nal\x00ice,1404/01,20\n",
    "garbage.xlsx": b"PK\x03\x04" + bytes(range(256)) * 8,
    "text-as.xlsx": b"member,month,fee\nalice,1404/01,20\n",
    "empty.xlsx": b"",
    "enormous-cells.csv": ("member,month,fee\n" + "a" * 200_000 + "," + "1" * 100_000 + "," + "9" * 100_000 + "\n").encode(),
    "huge-number.csv": b"member,month,fee\nalice,1404/01," + b"9" * 5000 + b"\n",
    "many-columns.csv": (",".join(f"c{i}" for i in range(2000)) + "\n" + ",".join("x" * 2000) + "\n").encode(),
    "wrong-delimiter.csv": b"member;month;fee\nalice;1404/01;20\n",
    "unbalanced-quotes.csv": b'member,month,fee\n"alice,1404/01,20\n',
    "formula.csv": b"member,month,fee\n=cmd|' /C calc'!A0,1404/01,20\n",
    "image.png.csv": b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    "payments.pdf": b"%PDF-1.4 member,month,fee",
}  # fmt: skip


def import_problems(kind: str, name: str, content: bytes) -> list[str]:
    """What the shared import says about a file (run_import, as the command and the admin use it)."""
    try:
        dataset = load_dataset(content=content, file_name=name)
        outcome = run_import(kind=kind, dataset=dataset, file_name=name)
    except ImportFileError as error:
        return [str(error)]
    return [str(problem) for problem in outcome.problems]


@pytest.mark.parametrize("kind", ["members", "loans", "payments"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_malformed_spreadsheet_gets_a_clear_error_and_writes_nothing(history, member, kind, name):
    before = snapshot()
    problems = import_problems(kind, name, BAD_FILES[name])
    assert problems, f"{name} was accepted as {kind}"
    assert all(problem.strip() and "Traceback" not in problem for problem in problems)
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_the_import_command_refuses_a_malformed_spreadsheet_in_words(history, member, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    before = snapshot()
    with pytest.raises(CommandError) as refused:
        call_command("import_history", "payments", str(path))
    assert str(refused.value).strip()
    assert snapshot() == before


@pytest.fixture
def operator_web(client, operator, config):
    client.force_login(operator)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def upload(client, kind: str, name: str, content: bytes):
    model = {"members": "user", "loans": "loan", "payments": "payment"}[kind]
    file = io.BytesIO(content)
    file.name = name
    fmt = "1" if name.endswith(".xlsx") else "0"
    return client.post(reverse(f"admin:fund_{model}_import"), {"import_file": file, "format": fmt})


def admin_refusal(response) -> list[str]:
    """The reasons the admin's import page gives: the upload form's errors or the file's problems."""
    form = response.context.get("form")
    reasons = [str(error) for errors in (form.errors.values() if form is not None else []) for error in errors]
    result = response.context.get("result")
    if result is not None:
        reasons += [problem.message for problem in problems_of(result)]
    return reasons


@pytest.mark.parametrize("kind", ["members", "payments"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_the_admin_import_refuses_a_malformed_spreadsheet_with_a_message(operator_web, member, kind, name):
    before = snapshot()
    response = upload(operator_web, kind, name, BAD_FILES[name])
    assert response.status_code == 200
    assert response.context.get("confirm_form") is None
    reasons = admin_refusal(response)
    assert reasons, f"{name} was not refused"
    assert escape(reasons[0])[:60] in response.content.decode()  # shown to the operator, not only in context
    assert snapshot() == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.lists(texts, min_size=1, max_size=6), min_size=1, max_size=4))
def test_any_cells_under_the_payment_headers_are_imported_or_refused_row_by_row(history, member, cells):
    import tablib

    dataset = tablib.Dataset(headers=["member", "month", "fee", "repayment", "bitpin_id"])
    for row in cells:
        dataset.append((row + [""] * 5)[:5])
    with rolled_back():
        before = snapshot()
        outcome = run_import(kind="payments", dataset=dataset, file_name="cells.csv")
        if not outcome.ok:
            assert snapshot() == before
            assert all(str(problem).strip() for problem in outcome.problems)


# --- the admin's forms and lists -------------------------------------------------------------------------


def admin_form_errors(response) -> bool:
    """The admin page came back with its form's errors shown (and so wrote nothing)."""
    if response.status_code != 200:
        return False
    adminform = response.context.get("adminform")
    form = adminform.form if adminform is not None else response.context.get("form")
    return bool(form is not None and form.errors) and "errornote" in response.content.decode()


members_typed = st.one_of(st.sampled_from(["alice", "bob", "0", "-1", "999999", "abc", "", "1.5"]), texts)


@HYPOTHESIS
@given(who=members_typed, month=months, fee=amounts, repayment=amounts, bitpin_id=texts)
@example(who="alice", month="1404/09", fee="25", repayment="", bitpin_id="bp-admin")
@example(who="alice", month="1404/09", fee="1e1000000", repayment="1E+1000000", bitpin_id="bp-admin")
@example(who="alice", month="1404/09", fee="25", repayment="", bitpin_id="bp\u200badmin")
@example(who="abc", month="", fee="", repayment="", bitpin_id="")  # the autocomplete widget once raised here
@example(who=" ", month="", fee="", repayment="", bitpin_id="")
@example(who="9" * 30, month="1404/09", fee="25", repayment="", bitpin_id="bp-admin")
def test_recording_a_payment_in_the_admin_answers_any_input_with_errors_or_a_valid_payment(
    operator_web, member, other_member, who, month, fee, repayment, bitpin_id
):
    people = {"alice": str(member.pk), "bob": str(other_member.pk)}
    data = {"member": people.get(who, who), "month": month, "fee": fee, "repayment": repayment, "bitpin_id": bitpin_id}
    with rolled_back():
        before = snapshot()
        response = operator_web.post(reverse("admin:fund_payment_add"), data)
        if response.status_code == 200:
            assert admin_form_errors(response)
            assert snapshot() == before
            return
        assert response.status_code == 302
        payment = Payment.objects.get(source=Payment.Source.ADMIN)
        assert payment.member_id in (member.pk, other_member.pk)
        assert payment.month <= THIS_MONTH and payment.status == Payment.Status.PENDING
        assert FundConfig.load().min_fee <= payment.fee <= MAX_AMOUNT and payment.repayment == 0
        assert payment.bitpin_id == normalise_bitpin_id(bitpin_id) and 0 < len(payment.bitpin_id) <= 100


small_numbers = st.one_of(st.integers(min_value=-(10**6), max_value=10**6).map(str), texts)


@HYPOTHESIS
@given(
    name=texts,
    min_fee=amounts,
    min_repayment=amounts,
    max_months=small_numbers,
    reminder=st.just("") | small_numbers,
    auto_draw=st.booleans(),
)
@example(name="Our fund", min_fee="۲۵", min_repayment="30", max_months="12", reminder="3", auto_draw=True)
@example(name="Our fund", min_fee="1e1000000", min_repayment="1e1000000", max_months="12", reminder="3", auto_draw=True)
def test_the_fund_configuration_answers_any_input_with_errors_or_a_valid_configuration(
    operator_web, config, name, min_fee, min_repayment, max_months, reminder, auto_draw
):
    data = {"name": name, "min_fee": min_fee, "min_repayment": min_repayment, "max_repayment_months": max_months,
            "reminder_days_before": reminder} | ({"auto_draw": "on"} if auto_draw else {})  # fmt: skip
    with rolled_back():
        before = snapshot()
        response = operator_web.post(reverse("admin:fund_fundconfig_change", args=[config.pk]), data)
        if response.status_code == 200:
            assert admin_form_errors(response)
            assert snapshot() == before
            return
        assert response.status_code == 302
        saved = FundConfig.load()
        assert 0 < saved.min_fee <= MAX_AMOUNT and 0 < saved.min_repayment <= MAX_AMOUNT
        assert 0 < saved.max_repayment_months  # PostgreSQL also caps it at 32767; SQLite does not
        assert saved.reminder_days_before is None or 0 <= saved.reminder_days_before
        assert saved.name.strip() and len(saved.name) <= 120


@HYPOTHESIS
@given(username=texts, first_name=texts, email=texts, loan_request=amounts)
@example(username="dara", first_name="دارا", email="dara@example.org", loan_request="۱۰۰")
@example(username="dara", first_name="دارا", email="dara@example.org", loan_request="1e1000000")
def test_adding_a_member_answers_any_input_with_errors_or_a_valid_member(
    operator_web, username, first_name, email, loan_request
):
    data = {"username": username, "first_name": first_name, "email": email, "is_member": "on",
            "loan_request_amount": loan_request}  # fmt: skip
    with rolled_back():
        before = snapshot()
        response = operator_web.post(reverse("admin:fund_user_add"), data)
        if response.status_code == 200:
            assert admin_form_errors(response)
            assert snapshot() == before
            return
        assert response.status_code == 302
        added = User.objects.get(username=username)
        assert added.is_member and not added.has_usable_password()
        assert 0 <= added.loan_request_amount <= MAX_AMOUNT


def member_change_data(client, member: User) -> dict:
    """The member's change form as the admin renders it, ready to post back (as test_admin_members does)."""
    page = client.get(reverse("admin:fund_user_change", args=[member.pk]))
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and not isinstance(value, bool)}
    data.pop("password", None)
    data.pop("groups", None)
    data.update({"is_active": "on", "is_member": "on", "date_joined_0": "", "last_login_0": ""})
    data.update(empty_inline_management(page))
    return data


@HYPOTHESIS
@given(loan_request=amounts, first_name=texts, email=texts, username=st.just("alice") | texts)
@example(loan_request="۴۰", first_name="Alice", email="alice@example.org", username="alice")
@example(loan_request="1e1000000", first_name="Alice", email="alice@example.org", username="alice")
def test_changing_a_member_answers_any_input_with_errors_or_a_valid_member(
    operator_web, member, loan_request, first_name, email, username
):
    data = member_change_data(operator_web, member) | {
        "loan_request_amount": loan_request, "first_name": first_name, "email": email, "username": username}  # fmt: skip
    with rolled_back():
        before = snapshot()
        response = operator_web.post(reverse("admin:fund_user_change", args=[member.pk]), data)
        if response.status_code == 200:
            assert admin_form_errors(response)
            assert snapshot() == before
            return
        assert response.status_code == 302, response.content.decode()[:2000]
        changed = User.objects.get(pk=member.pk)
        assert 0 <= changed.loan_request_amount <= MAX_AMOUNT
        assert changed.check_password("alice-pass-1404")  # the form never touches the password


@HYPOTHESIS
@given(note=texts, verify=st.booleans())
def test_deciding_by_hand_answers_any_note_with_an_error_or_a_decision(operator_web, history, member, note, verify):
    name = "admin:fund_payment_verify_by_hand_detail" if verify else "admin:fund_payment_reject_detail"
    with rolled_back():
        payment = history.pay(member, THIS_MONTH, status=Payment.Status.PENDING, bitpin_id="bp-decide")
        response = operator_web.post(reverse(name, args=[payment.pk]), {"confirmed": "yes", "note": note})
        decided = Payment.objects.get(pk=payment.pk)
        if response.status_code == 200:
            assert decided.status == Payment.Status.PENDING
            return
        assert response.status_code == 302
        assert decided.status == (Payment.Status.VERIFIED if verify else Payment.Status.REJECTED)
        assert decided.note == note.strip() and 0 < len(decided.note) <= 500


@pytest.fixture
def a_payment(history, member) -> Payment:
    return history.pay(member, THIS_MONTH)


LISTS = ["payment", "user", "loan", "draw"]
LIST_PARAMETERS = ["month", "q", "o", "p", "status", "status__exact", "source", "source__exact", "paid", "loan",
                   "is_active__exact", "is_member__exact", "state", "state__exact", "e", "_facets", "all",
                   "member__id__exact", "month__gte"]  # fmt: skip


@HYPOTHESIS
@given(model=st.sampled_from(LISTS), params=st.dictionaries(st.sampled_from(LIST_PARAMETERS), texts, max_size=4))
@example(model="payment", params={"month": "1404/13"})
@example(model="payment", params={"q": "\x00"})
@example(model="payment", params={"status": "\x00"})  # PostgreSQL refuses NUL: a plain 400, not a 500
def test_admin_lists_answer_any_filter_search_or_page_without_a_server_error(operator_web, a_payment, model, params):
    response = operator_web.get(reverse(f"admin:fund_{model}_changelist"), params)
    if any("\x00" in key + value for key, value in params.items()):
        assert response.status_code == 400 and b"NUL" in response.content
    else:
        assert response.status_code in (200, 302)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "import_file_name": st.sampled_from(["../../etc/passwd", "missing", "", "\x00"]) | texts,
            "original_file_name": texts,
            "format": st.sampled_from(["0", "1", "2", "-1", "x", ""]) | texts,
            "resource": st.sampled_from(["0", "1", "x", ""]) | texts,
        },
    )
)
@example(fields={"import_file_name": "missing", "original_file_name": "a.csv", "format": "0"})
@example(fields={"import_file_name": "missing", "original_file_name": "a.csv", "format": "x"})
@example(fields={"import_file_name": "missing", "original_file_name": "a.csv", "format": "7", "resource": "3"})
def test_a_forged_import_confirmation_writes_nothing_and_never_fails(operator_web, member, fields):
    with rolled_back():
        before = snapshot()
        response = operator_web.post(reverse("admin:fund_payment_process_import"), fields)
        assert response.status_code in (200, 302, 400)
        assert snapshot() == before


@HYPOTHESIS
@given(
    action=st.sampled_from(["verify_with_bitpin", "verify_by_hand", "reject", "delete_selected", "nothing", ""]),
    selected=st.lists(st.sampled_from(["{pk}", "0", "-1", "abc", "", " ", "9" * 30]) | texts, max_size=3),
    note=st.none() | texts,
    confirmed=st.booleans(),
)
@example(action="verify_by_hand", selected=["abc"], note="x", confirmed=True)
def test_bulk_actions_answer_any_selection_without_a_server_error(
    operator_web, a_payment, action, selected, note, confirmed
):
    data = {"action": action, "_selected_action": [s.replace("{pk}", str(a_payment.pk)) for s in selected]}
    if note is not None:
        data["note"] = note
    if confirmed:
        data["confirmed"] = "yes"
    with rolled_back():
        response = operator_web.post(reverse("admin:fund_payment_changelist"), data)
        assert response.status_code in (200, 302)
        assert Payment.objects.filter(pk=a_payment.pk).exists()


@pytest.mark.parametrize("object_id", ["abc", "0", "-1", "9" * 30, "1.5", "%20"])
def test_every_admin_page_answers_an_id_that_is_not_one_without_a_server_error(operator_web, a_payment, object_id):
    from tests.reliability.test_access import admin_paths

    failures = []
    for path in admin_paths(object_id):  # type: ignore[arg-type]
        for method in ("get", "post"):
            try:
                response = getattr(operator_web, method)(path)
            except Exception as error:  # noqa: BLE001  (collected: every failing page is listed at once)
                failures.append(f"{method.upper()} {path}: {type(error).__name__}: {error}")
                continue
            if response.status_code not in (200, 302, 400, 403, 404, 405):
                failures.append(f"{method.upper()} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)
