"""The member statement: figures and CSV against a hand computation, and who may read it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from fund.jalali import JalaliMonth, jalali_date
from fund.models import Loan, Payment
from fund.statement import statement_csv, statement_rows, statement_totals

M = JalaliMonth.parse


@pytest.fixture
def story(history, member, other_member):
    """Alice's history, written so that every running figure can be checked by hand.

    1403/01 fee 20                       balance 20   owed 0
    1403/02 fee 25                       balance 45   owed 0
    1403/02 loan 300 (the month's draw)  balance 45   owed 300
    1403/03 fee 20 + repayment 50        balance 65   owed 250
    1403/04 fee 30 + repayment 250       balance 95   owed 0     (loan settled)
    1403/06 loan 100                     balance 95   owed 100
    1403/07 fee 20 + 40 pending, and a rejected one: not movements
    """
    history.pay(member, "1403/01", 20, bitpin_id="a-1")
    history.pay(member, "1403/02", 25, bitpin_id="a-2")
    first = history.loan(member, "1403/02", 300, state=Loan.State.SETTLED, monthly_minimum_amount=50)
    history.pay(member, "1403/03", 20, 50, loan=first, bitpin_id="a-3")
    history.pay(member, "1403/04", 30, 250, loan=first, bitpin_id="=cmd|a-4")
    second = history.loan(member, "1403/06", 100, monthly_minimum_amount=20)
    history.pay(member, "1403/07", 20, 40, loan=second, bitpin_id="a-7", status=Payment.Status.PENDING)
    history.pay(member, "1403/07", 20, 20, loan=second, bitpin_id="a-7-bad", status=Payment.Status.REJECTED)
    # Another member's money never appears in Alice's statement.
    history.pay(other_member, "1403/02", 99, bitpin_id="b-2")
    history.loan(other_member, "1403/05", 200)
    return member


def test_rows_follow_the_hand_computation(story):
    rows = [(str(r.month), r.kind, r.amount, r.balance, r.loan_remaining, r.reference) for r in statement_rows(story)]
    d = Decimal
    assert rows == [
        ("1403/01", "fee", d(20), d(20), d(0), "a-1"),
        ("1403/02", "fee", d(25), d(45), d(0), "a-2"),
        ("1403/02", "loan", d(300), d(45), d(300), ""),
        ("1403/03", "fee", d(20), d(65), d(300), "a-3"),
        ("1403/03", "repayment", d(50), d(65), d(250), "a-3"),
        ("1403/04", "fee", d(30), d(95), d(250), "=cmd|a-4"),
        ("1403/04", "repayment", d(250), d(95), d(0), "=cmd|a-4"),
        ("1403/06", "loan", d(100), d(95), d(100), ""),
    ]


def test_totals_follow_the_hand_computation(story):
    totals = statement_totals(statement_rows(story))
    assert (totals.fees, totals.repayments, totals.loans) == (Decimal(95), Decimal(300), Decimal(400))
    assert (totals.balance, totals.loan_remaining) == (Decimal(95), Decimal(100))


def test_the_csv_has_every_movement_in_order_and_neutralises_formulas(story):
    assert statement_csv(story).splitlines() == [
        "month,movement,amount,balance,loan_remaining,bitpin_id",
        "1403/01,fee,20.00,20.00,0.00,a-1",
        "1403/02,fee,25.00,45.00,0.00,a-2",
        "1403/02,loan,300.00,45.00,300.00,",
        "1403/03,fee,20.00,65.00,300.00,a-3",
        "1403/03,repayment,50.00,65.00,250.00,a-3",
        "1403/04,fee,30.00,95.00,250.00,'=cmd|a-4",
        "1403/04,repayment,250.00,95.00,0.00,'=cmd|a-4",
        "1403/06,loan,100.00,95.00,100.00,",
    ]


def test_amounts_keep_their_full_precision(history, member):
    history.pay(member, "1403/01", "20.12345678")
    assert statement_csv(member).splitlines()[1] == "1403/01,fee,20.12345678,20.12345678,0.00,hist-1"


def test_a_repayment_in_the_month_a_loan_was_granted_comes_after_the_loan(history, member):
    loan = history.loan(member, "1403/02", 100, monthly_minimum_amount=20)
    history.pay(member, "1403/02", 20, 20, loan=loan)
    kinds = [(r.kind, r.loan_remaining) for r in statement_rows(member)]
    assert kinds == [("fee", 0), ("loan", 100), ("repayment", 80)]


def test_an_empty_history_gives_a_header_only(member):
    assert statement_csv(member) == "month,movement,amount,balance,loan_remaining,bitpin_id\r\n"
    assert statement_totals([]).balance == 0


def test_the_statement_reads_two_queries_whatever_the_history(history, member, django_assert_num_queries):
    history.pay_months(member, "1395/01", 100)
    with django_assert_num_queries(2):
        assert len(statement_rows(member)) == 100


# --- the pages -----------------------------------------------------------------------------------------


def test_the_member_downloads_their_own_statement_as_csv(client, story):
    client.force_login(story)
    response = client.get(reverse("member-statement-csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="saghat-statement-alice.csv"' in response["Content-Disposition"]
    body = response.content.decode()
    assert body == statement_csv(story)
    assert "b-2" not in body and "200.00" not in body


def test_the_printable_statement_shows_movements_totals_and_a_print_stylesheet(client, story):
    client.force_login(story)
    client.cookies["django_language"] = "en"
    html = client.get(reverse("member-statement")).content.decode()
    assert "Statement of Alice" in html
    assert html.count("<tr>") == 1 + 8  # header + movements
    assert "loan granted" in html and "loan repayment" in html
    assert "Still owed on loans" in html and "100.00 USDT" in html
    assert "95.00 USDT" in html
    assert "b-2" not in html
    assert "fund/saghat.css" in html  # carries the @media print rules


def test_the_statement_is_in_persian_digits_in_persian(client, story):
    client.force_login(story)
    client.cookies["django_language"] = "fa"
    html = client.get(reverse("member-statement")).content.decode()
    assert 'dir="rtl"' in html
    assert "۹۵٫۰۰" in html


def test_the_statement_needs_a_login_and_a_member(client, outsider):
    assert client.get(reverse("member-statement-csv")).status_code == 302
    client.force_login(outsider)
    response = client.get(reverse("member-statement-csv"))
    assert response["Content-Type"].startswith("text/html")
    assert b'id="not-member"' in response.content


def test_the_printable_statement_says_when_it_was_printed(client, story):
    client.force_login(story)
    client.cookies["django_language"] = "en"
    html = client.get(reverse("member-statement")).content.decode()
    assert f"printed {jalali_date(timezone.now(), with_time=False)}" in html
