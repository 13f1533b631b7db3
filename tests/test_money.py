from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fund.money import AmountError, AmountFormField, format_usdt, parse_amount, round_up_to_cent


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
        ("1e30", "too large"),
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


@given(st.text(max_size=100))
def test_any_text_is_an_amount_or_a_clear_refusal(text):
    try:
        value = parse_amount(text)
    except AmountError as error:
        assert str(error)
    else:
        assert value.is_finite() and value >= 0


@pytest.mark.parametrize("text", ["0", "20", "020", "1250.5", "0.00000001", "999999999999.99999999"])
def test_plain_amounts_take_the_short_way_to_the_same_value(text):
    # " 20 " is not plain (spaces), so it goes the long way: both must give the same amount.
    assert parse_amount(text) == parse_amount(f" {text} ")
    assert parse_amount(text).as_tuple().exponent == -8
