"""Bug injection: each kind makes the minimal edit it promises, and only real changes are kept."""

import ast
import difflib

from envs.swe.inject import KINDS, candidates

SOURCE = '''"""A module."""

LIMIT = 10


def f(xs, n):
    """Docstring stays."""
    total = 0
    for i in range(1, len(xs)):
        if xs[i] < n and i != 3:
            total += xs[i - 1]
    return max(total, n)  # a comment stays


def g(a, b):
    return a // b
'''


def changed_lines(c):
    diff = difflib.unified_diff(c.original.splitlines(), c.mutated.splitlines(), n=0, lineterm="")
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def by(kind):
    return [c for c in candidates("pkg/mod.py", SOURCE) if c.kind == kind]


def test_every_kind_is_found_and_every_mutant_parses_and_differs():
    cs = candidates("pkg/mod.py", SOURCE)
    assert {c.kind for c in cs} == set(KINDS)
    original = ast.dump(ast.parse(SOURCE))
    for c in cs:
        assert ast.dump(ast.parse(c.mutated)) != original
        assert c.original == SOURCE and c.path == "pkg/mod.py"
        assert "a comment stays" in c.mutated or c.kind == "remove_statement"
    assert len({c.mutated for c in cs}) == len(cs)  # no duplicates
    assert candidates("pkg/mod.py", SOURCE) == cs  # deterministic


def test_flip_operator():
    edits = {c.description: changed_lines(c) for c in by("flip_operator")}
    assert edits["`<` -> `<=`"] == ["-        if xs[i] < n and i != 3:", "+        if xs[i] <= n and i != 3:"]
    assert edits["`and` -> `or`"][1] == "+        if xs[i] < n or i != 3:"
    assert edits["`+=` -> `-=`"][1] == "+            total -= xs[i - 1]"
    assert edits["`//` -> `/`"][1] == "+    return a / b"
    assert all(c.function in ("f", "g") for c in by("flip_operator"))


def test_off_by_one():
    lines = {tuple(changed_lines(c)) for c in by("off_by_one")}
    assert ("-    for i in range(1, len(xs)):", "+    for i in range(2, len(xs)):") in lines
    assert ("-            total += xs[i - 1]", "+            total += xs[i - 2]") in lines
    assert ("-        if xs[i] < n and i != 3:", "+        if xs[i] < n and i != 4:") in lines


def test_remove_statement_keeps_blocks_valid():
    removed = {c.description: c for c in by("remove_statement")}
    assert changed_lines(removed["removed `total = 0`"]) == ["-    total = 0"]
    # the only statement of a block becomes `pass`
    only = removed["removed `total += xs[i - 1]`"]
    assert changed_lines(only) == ["-            total += xs[i - 1]", "+            pass"]
    assert not any("Docstring" in d or "return" in d for d in removed)


def test_swap_arguments():
    assert {tuple(changed_lines(c)) for c in by("swap_arguments")} == {
        ("-    for i in range(1, len(xs)):", "+    for i in range(len(xs), 1):"),
        ("-    return max(total, n)  # a comment stays", "+    return max(n, total)  # a comment stays"),
    }


def test_wrong_constant():
    [c] = [c for c in by("wrong_constant") if c.function == "<module>"]
    assert changed_lines(c) == ["-LIMIT = 10", "+LIMIT = 11"]
