"""Sequence helpers: chunking, windows, searching and grouping."""


def chunk(xs, size):
    """Consecutive lists of `size` items (the last may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [list(xs[i : i + size]) for i in range(0, len(xs), size)]


def flatten(nested):
    """Items of nested lists and tuples, depth first, in order."""
    out = []
    for item in nested:
        if isinstance(item, (list, tuple)):
            out.extend(flatten(item))
        else:
            out.append(item)
    return out


def window(xs, size, step=1):
    """Tuples of `size` consecutive items, starting every `step` items."""
    if size < 1 or step < 1:
        raise ValueError("size and step must be at least 1")
    return [tuple(xs[i : i + size]) for i in range(0, len(xs) - size + 1, step)]


def unique(xs, key=None):
    """Items of `xs` without repeats (by `key` if given), keeping first occurrences."""
    seen = set()
    out = []
    for x in xs:
        k = key(x) if key is not None else x
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def rotate(xs, k):
    """`xs` rotated left by k positions (right for negative k)."""
    if not xs:
        return list(xs)
    k = k % len(xs)
    return list(xs[k:]) + list(xs[:k])


def binary_search(xs, target):
    """Index of `target` in the sorted list `xs`, or -1 if absent."""
    lo, hi = 0, len(xs) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if xs[mid] == target:
            return mid
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def merge_sorted(a, b):
    """One sorted list from two sorted lists (stable: ties take from `a` first)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if b[j] < a[i]:
            out.append(b[j])
            j += 1
        else:
            out.append(a[i])
            i += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


def group_by(xs, key):
    """A dict from key(x) to the list of items with that key, in order."""
    groups = {}
    for x in xs:
        groups.setdefault(key(x), []).append(x)
    return groups


def partition(xs, predicate):
    """Two lists: the items for which `predicate` holds, and the others."""
    yes, no = [], []
    for x in xs:
        if predicate(x):
            yes.append(x)
        else:
            no.append(x)
    return yes, no


def run_length_encode(xs):
    """[(item, count), ...] for runs of equal consecutive items."""
    out = []
    for x in xs:
        if out and out[-1][0] == x:
            out[-1] = (x, out[-1][1] + 1)
        else:
            out.append((x, 1))
    return out


def run_length_decode(pairs):
    """The inverse of run_length_encode."""
    out = []
    for item, count in pairs:
        out.extend([item] * count)
    return out
