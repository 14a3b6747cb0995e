"""Calendar arithmetic on (year, month, day) tuples of the proleptic Gregorian calendar."""

DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def is_leap_year(year):
    """Divisible by 4, except centuries not divisible by 400."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year, month):
    """Number of days in `month` (1-12) of `year`."""
    if not 1 <= month <= 12:
        raise ValueError("month must be between 1 and 12")
    if month == 2 and is_leap_year(year):
        return 29
    return DAYS_IN_MONTH[month - 1]


def is_valid(year, month, day):
    """Whether (year, month, day) is a real date."""
    return 1 <= month <= 12 and 1 <= day <= days_in_month(year, month)


def day_of_year(year, month, day):
    """1 for January 1st, up to 365 or 366."""
    if not is_valid(year, month, day):
        raise ValueError("invalid date")
    return sum(days_in_month(year, m) for m in range(1, month)) + day


def to_ordinal(year, month, day):
    """Days since 0001-01-01, which is day 1."""
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + day_of_year(year, month, day)


def from_ordinal(n):
    """The (year, month, day) of ordinal day n (the inverse of to_ordinal)."""
    if n < 1:
        raise ValueError("ordinal must be at least 1")
    year = (n - 1) // 366 + 1
    while to_ordinal(year + 1, 1, 1) <= n:
        year += 1
    remaining = n - to_ordinal(year, 1, 1) + 1
    month = 1
    while remaining > days_in_month(year, month):
        remaining -= days_in_month(year, month)
        month += 1
    return year, month, remaining


def add_days(date, days):
    """The date `days` days after `date` (before, for negative days)."""
    return from_ordinal(to_ordinal(*date) + days)


def days_between(a, b):
    """Signed number of days from date `a` to date `b`."""
    return to_ordinal(*b) - to_ordinal(*a)


def weekday(year, month, day):
    """Name of the day of the week (0001-01-01 was a Monday)."""
    return WEEKDAYS[(to_ordinal(year, month, day) - 1) % 7]
