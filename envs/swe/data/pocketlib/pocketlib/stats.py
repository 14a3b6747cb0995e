"""Descriptive statistics over sequences of numbers."""

import math


def mean(xs):
    """Arithmetic mean; raises ValueError on an empty sequence."""
    if not xs:
        raise ValueError("mean of an empty sequence")
    return sum(xs) / len(xs)


def median(xs):
    """Middle value (the mean of the two middle values for an even count)."""
    if not xs:
        raise ValueError("median of an empty sequence")
    s = sorted(xs)
    mid = len(s) // 2
    if len(s) % 2 == 1:
        return s[mid]
    return (s[mid - 1] + s[mid]) / 2


def mode(xs):
    """Most frequent value; ties go to the value seen first."""
    if not xs:
        raise ValueError("mode of an empty sequence")
    counts = {}
    for x in xs:
        counts[x] = counts.get(x, 0) + 1
    best = xs[0]
    for x in xs:
        if counts[x] > counts[best]:
            best = x
    return best


def variance(xs, sample=False):
    """Population variance, or the sample variance (n - 1 denominator) with sample=True."""
    n = len(xs)
    if n == 0 or (sample and n < 2):
        raise ValueError("not enough data for a variance")
    m = mean(xs)
    ss = sum((x - m) ** 2 for x in xs)
    return ss / (n - 1) if sample else ss / n


def stdev(xs, sample=False):
    """Square root of the variance."""
    return math.sqrt(variance(xs, sample=sample))


def percentile(xs, q):
    """The q-th percentile (0 <= q <= 100) with linear interpolation between ranks."""
    if not xs:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    frac = pos - lo
    return s[lo] + (s[hi] - s[lo]) * frac


def moving_average(xs, window):
    """Means of each run of `window` consecutive values."""
    if window < 1:
        raise ValueError("window must be at least 1")
    out = []
    total = 0
    for i, x in enumerate(xs):
        total += x
        if i >= window:
            total -= xs[i - window]
        if i >= window - 1:
            out.append(total / window)
    return out


def zscores(xs):
    """(x - mean) / population stdev for each value; all 0.0 when the stdev is 0."""
    m = mean(xs)
    sd = stdev(xs)
    if sd == 0:
        return [0.0 for _ in xs]
    return [(x - m) / sd for x in xs]


def histogram(xs, bins, low, high):
    """Counts of values in `bins` equal-width bins over [low, high]; the last bin includes
    `high`, values outside the range are ignored."""
    if bins < 1 or high <= low:
        raise ValueError("need bins >= 1 and high > low")
    counts = [0] * bins
    width = (high - low) / bins
    for x in xs:
        if x < low or x > high:
            continue
        index = int((x - low) / width)
        if index == bins:
            index = bins - 1
        counts[index] += 1
    return counts
