"""Verifying or rejecting a payment by hand in a real browser, in Persian and English: the payment
page's button opens unfold's dialog without leaving the page, a note is required, and the decision
takes the operator back to the payment with the outcome, with no console error under the
Content-Security-Policy. Screenshots of the dialog go to screenshots/."""

from __future__ import annotations

import pytest

from fund.jalali import JalaliMonth
from fund.models import FundConfig, Payment, User
from tests.browser.test_csp_browser import collect_errors
from tests.fixtures.history import History

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFUSAL = {"fa": "یادداشت را بنویسید؛ الزامی است.", "en": "Write a note: it is required."}
DONE = {"fa": "پرداخت رد شد.", "en": "1 payment verified."}


@pytest.fixture
def pending(db) -> Payment:
    FundConfig.load()
    User.objects.create_user("operator", password="operator-pass-1404", is_main=True, is_staff=True)
    history = History()
    alice = history.member("alice", first_name="Alice", last_name="Karimi")
    return history.pay(alice, JalaliMonth.current(), 25, status=Payment.Status.PENDING, bitpin_id="bp-by-hand")


@pytest.mark.parametrize(("language", "verify"), [("fa", False), ("en", True)])
def test_the_operator_decides_a_payment_by_hand_in_the_dialog(language, verify, pending, new_page, log_in, screenshot):
    page = new_page(language=language)
    errors = collect_errors(page)
    change = f"/admin/fund/payment/{pending.pk}/change/"
    log_in(page, "operator", "operator-pass-1404", next=change)

    page.click(f"a[href='/admin/fund/payment/{pending.pk}/{'verify' if verify else 'reject'}/']")
    dialog = page.locator("#modal-content #dialog")
    dialog.wait_for(state="visible")
    assert page.url.endswith(change)  # the dialog opened over the page
    screenshot(page, f"decision-dialog-{language}", full_page=False)

    dialog.locator("button[type=submit]").click()
    page.locator("#dialog-form").get_by_text(REFUSAL[language]).wait_for()
    screenshot(page, f"decision-dialog-refused-{language}", full_page=False)
    pending.refresh_from_db()
    assert pending.status == Payment.Status.PENDING

    page.fill("#dialog-form textarea[name=note]", "دیده شد" if language == "fa" else "Seen on the statement")
    with page.expect_navigation():
        dialog.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")

    assert page.url.endswith(change)
    assert DONE[language] in page.content()
    pending.refresh_from_db()
    assert pending.status == (Payment.Status.VERIFIED if verify else Payment.Status.REJECTED)
    screenshot(page, f"decision-done-{language}")
    assert errors == []
