import pytest

from pocketlib import roman


@pytest.mark.parametrize(
    "n, s", [(1, "I"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"), (90, "XC"), (400, "CD"), (1994, "MCMXCIV"),
             (3999, "MMMCMXCIX")]
)
def test_to_roman(n, s):
    assert roman.to_roman(n) == s


def test_to_roman_range():
    with pytest.raises(ValueError):
        roman.to_roman(0)
    with pytest.raises(ValueError):
        roman.to_roman(4000)


def test_from_roman():
    assert roman.from_roman("MCMXCIV") == 1994
    assert roman.from_roman("xiv") == 14
    assert all(roman.from_roman(roman.to_roman(n)) == n for n in range(1, 4000))


def test_from_roman_rejects_malformed():
    for bad in ("", "IIII", "VX", "ABC", "IM"):
        with pytest.raises(ValueError):
            roman.from_roman(bad)
