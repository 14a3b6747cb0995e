"""Roman numerals from 1 to 3999."""

_NUMERALS = (
    (1000, "M"), (900, "CM"), (500, "D"), (400, "CD"),
    (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
)
_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def to_roman(n):
    """The Roman numeral of 1 <= n <= 3999."""
    if not 0 < n < 4000:
        raise ValueError("Roman numerals cover 1 to 3999")
    out = []
    for value, symbol in _NUMERALS:
        count, n = divmod(n, value)
        out.append(symbol * count)
    return "".join(out)


def from_roman(s):
    """The integer value of a Roman numeral (case-insensitive); raises on malformed input."""
    s = s.upper()
    if not s or any(c not in _VALUES for c in s):
        raise ValueError("not a Roman numeral: %r" % s)
    total = 0
    for i, c in enumerate(s):
        value = _VALUES[c]
        if i + 1 < len(s) and _VALUES[s[i + 1]] > value:
            total -= value
        else:
            total += value
    if to_roman(total) != s:
        raise ValueError("not a canonical Roman numeral: %r" % s)
    return total
