import pytest

from pocketlib import dates


def test_is_leap_year():
    assert dates.is_leap_year(2024)
    assert dates.is_leap_year(2000)
    assert not dates.is_leap_year(1900)
    assert not dates.is_leap_year(2023)


def test_days_in_month():
    assert dates.days_in_month(2023, 2) == 28
    assert dates.days_in_month(2024, 2) == 29
    assert dates.days_in_month(2023, 1) == 31
    assert dates.days_in_month(2023, 4) == 30
    assert dates.days_in_month(2023, 12) == 31
    with pytest.raises(ValueError):
        dates.days_in_month(2023, 13)


def test_is_valid():
    assert dates.is_valid(2024, 2, 29)
    assert not dates.is_valid(2023, 2, 29)
    assert not dates.is_valid(2023, 0, 1)
    assert not dates.is_valid(2023, 1, 0)
    assert dates.is_valid(2023, 12, 31)


def test_day_of_year():
    assert dates.day_of_year(2023, 1, 1) == 1
    assert dates.day_of_year(2023, 3, 1) == 60
    assert dates.day_of_year(2024, 3, 1) == 61
    assert dates.day_of_year(2024, 12, 31) == 366


def test_ordinals_round_trip():
    assert dates.to_ordinal(1, 1, 1) == 1
    assert dates.to_ordinal(2021, 7, 29) == 738000
    assert dates.from_ordinal(738000) == (2021, 7, 29)
    for n in (1, 59, 60, 365, 366, 730119, 730120, 738886):
        assert dates.to_ordinal(*dates.from_ordinal(n)) == n


def test_add_days():
    assert dates.add_days((2023, 12, 31), 1) == (2024, 1, 1)
    assert dates.add_days((2024, 2, 28), 1) == (2024, 2, 29)
    assert dates.add_days((2024, 3, 1), -1) == (2024, 2, 29)
    assert dates.add_days((2023, 1, 31), 30) == (2023, 3, 2)


def test_days_between():
    assert dates.days_between((2024, 1, 1), (2024, 12, 31)) == 365
    assert dates.days_between((2024, 1, 10), (2024, 1, 1)) == -9


def test_weekday():
    assert dates.weekday(2024, 1, 1) == "Monday"
    assert dates.weekday(2000, 1, 1) == "Saturday"
    assert dates.weekday(1969, 7, 20) == "Sunday"
