import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fund.jalali import JalaliMonth, JalaliMonthFormField, jalali_date

UTC = ZoneInfo("UTC")


@pytest.mark.parametrize("text", ["1404/09", "1404-9", "1404/9", "۱۴۰۴/۰۹", "١٤٠٤-٠٩", " 1404 / 09 ", "1404.09"])
def test_it_parses_the_ways_people_write_a_month(text):
    assert JalaliMonth.parse(text) == JalaliMonth(1404, 9)


@pytest.mark.parametrize("text", ["", "1404", "1404/13", "1404/00", "14/09", "abc", "1404/09/01", "99999/1"])
def test_it_refuses_what_is_not_a_month_with_a_message(text):
    with pytest.raises(ValueError) as error:
        JalaliMonth.parse(text)
    assert str(error.value)


def test_it_formats_with_two_digit_months_and_round_trips_through_the_stored_integer():
    month = JalaliMonth(1404, 1)
    assert str(month) == "1404/01"
    assert int(month) == 140401
    assert JalaliMonth.from_int(140401) == month


def test_next_and_previous_cross_the_year():
    assert JalaliMonth(1403, 12).next() == JalaliMonth(1404, 1)
    assert JalaliMonth(1404, 1).previous() == JalaliMonth(1403, 12)
    assert JalaliMonth(1403, 11) + 3 == JalaliMonth(1404, 2)


def test_months_between_and_ordering():
    assert JalaliMonth(1404, 5) - JalaliMonth(1403, 6) == 11
    assert sorted([JalaliMonth(1404, 2), JalaliMonth(1403, 12), JalaliMonth(1404, 1)]) == [
        JalaliMonth(1403, 12),
        JalaliMonth(1404, 1),
        JalaliMonth(1404, 2),
    ]
    assert JalaliMonth(1403, 11).range_to(JalaliMonth(1404, 1)) == [
        JalaliMonth(1403, 11),
        JalaliMonth(1403, 12),
        JalaliMonth(1404, 1),
    ]


def test_esfand_has_30_days_in_a_leap_year_and_29_otherwise():
    assert JalaliMonth(1403, 12).days == 30  # 1403 is a leap year
    assert JalaliMonth(1404, 12).days == 29
    assert JalaliMonth(1404, 1).days == 31 and JalaliMonth(1404, 7).days == 30


def test_the_current_month_follows_tehran_midnight_not_utc():
    # 2025-03-20 21:00 UTC is 00:30 on 1404/01/01 in Tehran, still 1403/12/30 in UTC.
    assert JalaliMonth.current(dt.datetime(2025, 3, 20, 21, 0, tzinfo=UTC)) == JalaliMonth(1404, 1)
    assert JalaliMonth.current(dt.datetime(2025, 3, 20, 20, 29, tzinfo=UTC)) == JalaliMonth(1403, 12)


def test_month_boundaries_are_tehran_moments():
    start = JalaliMonth(1404, 1).starts_at()
    assert start.astimezone(UTC) == dt.datetime(2025, 3, 20, 20, 30, tzinfo=UTC)
    assert JalaliMonth(1403, 12).next().starts_at() == start


def test_days_left_counts_to_the_months_end_in_tehran():
    last_day = dt.datetime(2025, 3, 19, 12, 0, tzinfo=UTC)  # 1403/12/29 in Tehran, Esfand has 30 days
    assert JalaliMonth(1403, 12).days_left(last_day) == 1


def test_jalali_date_is_written_in_tehran_time():
    assert jalali_date(dt.datetime(2025, 3, 20, 21, 0, tzinfo=UTC)) == "1404/01/01 00:30"
    assert jalali_date(dt.date(2025, 3, 21)) == "1404/01/01"


def test_labels_in_persian_and_english():
    assert JalaliMonth(1404, 9).label("fa") == "آذر ۱۴۰۴"
    assert JalaliMonth(1404, 9).label("en") == "Azar 1404"


def test_the_form_field_gives_a_clear_error():
    field = JalaliMonthFormField()
    assert field.clean("۱۴۰۴/۰۹") == JalaliMonth(1404, 9)
    with pytest.raises(Exception) as error:
        field.clean("1404/13")
    assert "12" in str(error.value)


@given(st.integers(1300 * 12, 1599 * 12 + 11), st.integers(-500, 500))
def test_offsets_are_consistent_with_differences(index, offset):
    month = JalaliMonth.from_index(index)
    try:
        moved = month + offset
    except ValueError:
        return
    assert moved - month == offset
    assert JalaliMonth.parse(str(moved)) == moved
