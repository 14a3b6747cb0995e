"""Closed intervals [start, end] as (start, end) tuples."""


def normalize(interval):
    """(start, end) with start <= end."""
    a, b = interval
    return (a, b) if a <= b else (b, a)


def overlaps(a, b):
    """Whether two closed intervals share at least one point."""
    return a[0] <= b[1] and b[0] <= a[1]


def merge(intervals):
    """Sorted, non-overlapping intervals covering the same points (touching ones merge)."""
    out = []
    for start, end in sorted(normalize(i) for i in intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def total_length(intervals):
    """Length of the union of the intervals."""
    return sum(end - start for start, end in merge(intervals))


def intersection(a, b):
    """The common part of two intervals, or None."""
    start, end = max(a[0], b[0]), min(a[1], b[1])
    if start > end:
        return None
    return (start, end)


def contains(interval, x):
    """Whether x lies in the closed interval."""
    return interval[0] <= x <= interval[1]


def gaps(intervals, low, high):
    """The parts of [low, high] not covered by any interval."""
    out = []
    cursor = low
    for start, end in merge(intervals):
        if end < low or start > high:
            continue
        if start > cursor:
            out.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < high:
        out.append((cursor, high))
    return out
