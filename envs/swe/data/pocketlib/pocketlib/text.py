"""String helpers: case conversion, slugs, wrapping and edit distance."""

import re

_WORD = re.compile(r"[A-Za-z0-9]+")


def words(s):
    """The alphanumeric words of `s`, in order."""
    return _WORD.findall(s)


def slugify(s, sep="-", max_length=None):
    """Lower-case words of `s` joined by `sep`; cut to `max_length` characters without a
    trailing separator."""
    slug = sep.join(w.lower() for w in words(s))
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length].rstrip(sep)
    return slug


def snake_case(s):
    """"parseHTTPResponse" -> "parse_http_response", "Hello World" -> "hello_world"."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return "_".join(w.lower() for w in words(s.replace("_", " ")))


def camel_case(s, upper_first=False):
    """"hello_big_world" -> "helloBigWorld" (or "HelloBigWorld" with upper_first)."""
    parts = words(s.replace("_", " "))
    if not parts:
        return ""
    head = parts[0].capitalize() if upper_first else parts[0].lower()
    return head + "".join(p.capitalize() for p in parts[1:])


def truncate(s, width, ellipsis="..."):
    """`s` cut to at most `width` characters, ending with `ellipsis` when cut."""
    if len(s) <= width:
        return s
    if width <= len(ellipsis):
        return ellipsis[:width]
    return s[: width - len(ellipsis)] + ellipsis


def wrap(s, width):
    """Greedy word wrap: a list of lines of at most `width` characters (a longer word stays
    whole on its own line)."""
    lines = []
    current = ""
    for word in s.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = current + " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def is_palindrome(s):
    """Whether `s` reads the same backwards, ignoring case and non-alphanumerics."""
    cleaned = [c.lower() for c in s if c.isalnum()]
    i, j = 0, len(cleaned) - 1
    while i < j:
        if cleaned[i] != cleaned[j]:
            return False
        i += 1
        j -= 1
    return True


def common_prefix(strings):
    """The longest prefix shared by all `strings` ("" for none)."""
    if not strings:
        return ""
    prefix = strings[0]
    for s in strings[1:]:
        n = 0
        while n < len(prefix) and n < len(s) and prefix[n] == s[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def levenshtein(a, b):
    """Edit distance between `a` and `b` (insertions, deletions, substitutions)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost))
        previous = current
    return previous[-1]


def count_words(s):
    """A dict mapping each lower-cased word of `s` to its number of occurrences."""
    counts = {}
    for w in words(s):
        key = w.lower()
        counts[key] = counts.get(key, 0) + 1
    return counts
