from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import example, given
from hypothesis import strategies as st

from fund import ledger
from fund.jalali import JalaliMonth
from fund.models import FundConfig, Loan, Payment, User
from fund.money import MAX_AMOUNT, AmountError, AmountFormField, format_usdt, parse_amount, round_up_to_cent


@pytest.mark.parametrize(
    "text, expected",
    [
        ("20", Decimal("20")),
        ("۲۰٫۵", Decimal("20.5")),
        ("٢٠.٢٥", Decimal("20.25")),
        ("1,234.5", Decimal("1234.5")),
        ("  12.12345678 ", Decimal("12.12345678")),
        ("0", Decimal("0")),
        (Decimal("3.5"), Decimal("3.5")),
        (7, Decimal("7")),
        (20.1, Decimal("20.1")),
    ],
)
def test_it_reads_amounts_people_type(text, expected):
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Enter an amount"),
        ("abc", "not a number"),
        ("NaN", "finite"),
        ("nan", "finite"),
        ("Infinity", "finite"),
        ("-inf", "finite"),
        ("-5", "negative"),
        ("1.123456789", "8 decimal places"),
        ("1e30", "without an exponent"),
        ("1e3", "without an exponent"),
        ("1e1000000", "without an exponent"),
        ("1E-5", "without an exponent"),
        (Decimal("1E+1000000"), "too large"),
        (1e300, "too large"),
        ("1000000000000", "too large"),
        ("+20", "not a number"),
        ("१२", "not a number"),
        ("0x14", "not a number"),
        ("20\u200f", "invisible"),
        ("1\u200b000", "invisible"),
        ("\u200e20", "invisible"),
        ("1" * 70, "too long"),
        (None, "Enter an amount"),
        (True, "Enter an amount"),
    ],
)
def test_it_refuses_bad_amounts_with_a_clear_message(text, message):
    with pytest.raises(AmountError) as error:
        parse_amount(text)
    assert message in str(error.value)


def test_amounts_are_quantized_to_eight_places():
    assert parse_amount("1.5").as_tuple().exponent == -8


def test_instalments_round_up_to_the_cent():
    assert round_up_to_cent(Decimal("100") / 24) == Decimal("4.17")
    assert round_up_to_cent(Decimal("4.10")) == Decimal("4.10")


def test_format_groups_thousands_and_keeps_two_decimals():
    assert format_usdt(Decimal("1234.5")) == "1,234.50"
    assert format_usdt(Decimal("0.00000001")) == "0.00000001"


def test_the_form_field_turns_errors_into_form_errors():
    field = AmountFormField()
    assert field.clean("۲۰") == Decimal("20")
    with pytest.raises(Exception) as error:
        field.clean("NaN")
    assert "finite" in str(error.value)


amount_like_text = st.one_of(
    st.text(max_size=100),
    st.text(alphabet="0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩.٫,٬،_ eE+-\u00a0\u200b\u200c\u200fnaifNI", max_size=30),
    st.from_regex(r"\A[0-9]{1,20}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,8})?\Z"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


@given(amount_like_text)
@example("1e1000000")
@example("9" * 13)
@example("0." + "0" * 8 + "1")
def test_any_text_is_an_amount_or_a_clear_refusal(text):
    """Whatever a person types, the parser answers an amount or AmountError, never another error;
    an amount it accepts reads back as itself, written plainly or as the page formats it."""
    try:
        value = parse_amount(text)
    except AmountError as error:
        assert str(error)
    else:
        assert value.is_finite() and Decimal(0) <= value <= MAX_AMOUNT
        assert value.as_tuple().exponent == -8
        assert parse_amount(f"{value:f}") == value
        assert parse_amount(format_usdt(value)) == value


def test_the_form_field_refuses_an_exponent_with_a_message():
    with pytest.raises(ValidationError) as error:
        AmountFormField().clean("1e1000000")
    assert "exponent" in str(error.value)


@pytest.mark.parametrize("text", ["0", "20", "020", "1250.5", "0.00000001", "999999999999.99999999"])
def test_plain_amounts_take_the_short_way_to_the_same_value(text):
    # " 20 " is not plain (spaces), so it goes the long way: both must give the same amount.
    assert parse_amount(text) == parse_amount(f" {text} ")
    assert parse_amount(text).as_tuple().exponent == -8


# --- stored exactly, on SQLite and PostgreSQL (issue 13, fault 10) -----------------------------------------------

BIG = Decimal("123456789.12345678")


@pytest.fixture
def wide(history):
    """Three members whose amounts use every digit: 12 integer digits and 8 decimals."""
    FundConfig.load()
    people = [history.member(name) for name in ("ann", "ben", "cid")]
    return people


@pytest.mark.parametrize("amount", ["123456789.12345678", "999999999999.99999999", "0.00000001", "20"])
def test_an_amount_round_trips_exactly(wide, history, amount):
    amount = Decimal(amount)
    payment = history.pay(wide[0], "1404/01", amount)
    loan = history.loan(wide[1], "1404/01", amount, monthly_minimum_amount=amount)
    User.objects.filter(pk=wide[2].pk).update(loan_request_amount=amount)

    assert Payment.objects.get(pk=payment.pk).fee == amount
    assert Payment.objects.values_list("fee", flat=True).get(pk=payment.pk) == amount
    assert Loan.objects.get(pk=loan.pk).amount == Loan.objects.get(pk=loan.pk).monthly_minimum == amount
    assert User.objects.get(pk=wide[2].pk).loan_request_amount == amount
    assert Payment.objects.filter(fee=amount).count() == 1
    assert Payment.objects.filter(fee__gt=amount - Decimal("0.00000001")).count() == 1
    assert not Payment.objects.filter(fee__gt=amount).exists()


def test_sums_of_wide_amounts_do_not_drift(wide, history):
    ann, ben, cid = wide
    for month in range(1, 13):
        history.pay(ann, JalaliMonth(1403, month), BIG)
        history.pay(ben, JalaliMonth(1403, month), Decimal("999999999999.99999999"))
    history.pay(cid, "1403/01", Decimal("0.00000001"))
    loan = history.loan(cid, "1403/01", BIG)
    history.pay(cid, "1403/02", Decimal("0.00000001"), BIG - Decimal("0.00000001"), loan=loan)

    totals = ledger.fund_totals()
    assert totals.fees == 12 * BIG + 12 * Decimal("999999999999.99999999") + Decimal("0.00000002")
    assert totals.repayments == BIG - Decimal("0.00000001")
    assert totals.cash == totals.fees + totals.repayments - BIG
    balances = {m.username: m.balance for m in ledger.with_balance(User.objects.all())}
    assert balances == {
        "ann": Decimal("1481481469.48148136"),
        "ben": Decimal("11999999999999.99999988"),
        "cid": Decimal("0.00000002"),
    }
    [position] = ledger.with_repaid(Loan.objects.filter(pk=loan.pk))
    assert (position.repaid, position.remaining) == (BIG - Decimal("0.00000001"), Decimal("0.00000001"))


def test_amounts_one_hundred_millionth_apart_compare_and_sort_in_the_database(wide, history):
    ann, ben, cid = wide
    history.pay(ann, "1404/01", Decimal("999999999999.99999998"))
    history.pay(ben, "1404/01", Decimal("999999999999.99999999"))
    history.pay(cid, "1404/01", Decimal("999999999999.99999997"))

    members = ledger.with_balance(User.objects.all())
    assert [m.username for m in members.order_by("-balance")] == ["ben", "ann", "cid"]
    assert [m.username for m in members.filter(balance__gt=Decimal("999999999999.99999997"))] == ["ann", "ben"]
