"""Bug injection with Python's `ast`, in the spirit of SWE-smith's procedural modifications.

`candidates(path, source)` lists every single-site bug of five kinds that can be injected into a
module, each as the minimal text edit (the rest of the file, comments and formatting included, is
untouched, so the gold patch, the inverse edit, is a one-line diff):

    flip_operator     a < b -> a <= b, == -> !=, in -> not in, + -> -, // -> /, and -> or, += -> -=
    off_by_one        an integer in an index, slice, range() argument, comparison or +/- operand, plus or minus 1
    remove_statement  an assignment, call, if, for or while statement of a function body deleted
                      (replaced by `pass` when it is the only statement of its block)
    swap_arguments    the first two positional arguments of a call exchanged
    wrong_constant    any other number changed (n -> n + 1, x -> 2x), True <-> False

Whether a candidate makes a task is decided by running the tests (envs/swe/generate.py): a bug
the tests do not notice, or one that makes them hang, is dropped.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

KINDS = ("flip_operator", "off_by_one", "remove_statement", "swap_arguments", "wrong_constant")

_CMP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"), ast.Eq: ("==", "!="),
        ast.NotEq: ("!=", "=="), ast.In: ("in", "not in"), ast.NotIn: ("not in", "in"), ast.Is: ("is", "is not"),
        ast.IsNot: ("is not", "is")}
_BIN = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "+"), ast.Div: ("/", "//"), ast.FloorDiv: ("//", "/"),
        ast.Mod: ("%", "//"), ast.Pow: ("**", "*")}
_BOOL = {ast.And: ("and", "or"), ast.Or: ("or", "and")}
_REMOVABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.If, ast.For, ast.While)


@dataclass(frozen=True)
class Injection:
    kind: str
    path: str
    function: str
    """Qualified name of the enclosing function ("LRUCache.put"), or "<module>"."""
    line: int
    description: str
    original: str
    mutated: str


class _Source:
    """Edits by (line, col) positions as the ast reports them (columns are UTF-8 byte offsets)."""

    def __init__(self, text: str):
        self.text = text
        self.data = text.encode()
        self.line_starts = [0]
        for i, b in enumerate(self.data):
            if b == 0x0A:
                self.line_starts.append(i + 1)

    def offset(self, line: int, col: int) -> int:
        return self.line_starts[line - 1] + col

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, a: int, b: int) -> str:
        return self.data[a:b].decode()

    def replace(self, edits: list[tuple[int, int, str]]) -> str:
        data = self.data
        for a, b, new in sorted(edits, reverse=True):
            data = data[:a] + new.encode() + data[b:]
        return data.decode()


def _operator_edit(src: _Source, a: int, b: int, token: str, new: str) -> tuple[int, int, str] | None:
    """Replace the operator `token` found (as a whole token) in the text between two operands."""
    between = src.segment(a, b)
    words = token[0].isalpha()
    pattern = r"(?<![\w])" + r"\s+".join(map(re.escape, token.split())) + r"(?![\w])" if words else (
        r"(?<![<>=!*/%+\-])" + re.escape(token) + r"(?![<>=*/])")
    found = list(re.finditer(pattern, between))
    if len(found) != 1:
        return None
    m = found[0]
    return a + len(between[: m.start()].encode()), a + len(between[: m.end()].encode()), new


def _functions(tree: ast.Module):
    """(qualified name, function node) for every function and method, outermost first."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree, "")
    return out


def _is_int(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _off_by_one_sites(func: ast.AST) -> set[int]:
    """ids of int constants in index, slice, range(), comparison and +/- positions."""
    sites: set[int] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Subscript):
            sl = node.slice
            parts = [sl.lower, sl.upper, sl.step] if isinstance(sl, ast.Slice) else [sl]
            sites |= {id(p) for p in parts if p is not None and _is_int(p)}
            for p in parts:
                if isinstance(p, ast.BinOp):
                    sites |= {id(x) for x in (p.left, p.right) if _is_int(x)}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            for arg in node.args:
                sites |= {id(x) for x in ast.walk(arg) if _is_int(x)}
        elif isinstance(node, ast.Compare):
            sites |= {id(x) for x in [node.left, *node.comparators] if _is_int(x)}
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            sites |= {id(x) for x in (node.left, node.right) if _is_int(x)}
    return sites


def candidates(path: str, source: str) -> list[Injection]:
    """Every injection of every kind into `source` (the file at repo-relative `path`), in a
    deterministic order; only those that parse and change the program are kept."""
    tree = ast.parse(source)
    src = _Source(source)
    functions = _functions(tree)
    owner: dict[int, str] = {}
    for name, func in functions:  # innermost function wins (visited last)
        for node in ast.walk(func):
            owner[id(node)] = name
    raw = _operator_edits(tree, src, owner) + _function_edits(functions, src, owner) + _constant_edits(
        tree, src, owner, functions)

    out, seen = [], set()
    original_dump = ast.dump(tree)
    for kind, fname, line, desc, edits in raw:
        mutated = src.replace(edits)
        if mutated in seen:
            continue
        seen.add(mutated)
        try:
            if ast.dump(ast.parse(mutated)) == original_dump:
                continue
        except SyntaxError:
            continue
        out.append(Injection(kind, path, fname, line, desc, source, mutated))
    return out


_Edit = tuple[str, str, int, str, list[tuple[int, int, str]]]  # kind, function, line, description, edits


def _operator_edits(tree: ast.AST, src: _Source, owner: dict[int, str]) -> list[_Edit]:
    """flip_operator (comparisons, + - * /, and/or, += -=) and swap_arguments (a call's first two)."""
    raw: list[_Edit] = []
    for node in ast.walk(tree):
        fname = owner.get(id(node), "<module>")
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:]):
                token, new = _CMP[type(op)]
                edit = _operator_edit(src, src.end(left), src.start(right), token, new)
                if edit:
                    raw.append(("flip_operator", fname, node.lineno, f"`{token}` -> `{new}`", [edit]))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            token, new = _BIN[type(node.op)]
            edit = _operator_edit(src, src.end(node.left), src.start(node.right), token, new)
            if edit:
                raw.append(("flip_operator", fname, node.lineno, f"`{token}` -> `{new}`", [edit]))
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            token, new = _BOOL[type(node.op)]
            edit = _operator_edit(src, src.end(node.values[0]), src.start(node.values[1]), token, new)
            if edit:
                raw.append(("flip_operator", fname, node.lineno, f"`{token}` -> `{new}`", [edit]))
        elif isinstance(node, ast.AugAssign) and type(node.op) in (ast.Add, ast.Sub):
            token, new = ("+=", "-=") if isinstance(node.op, ast.Add) else ("-=", "+=")
            edit = _operator_edit(src, src.end(node.target), src.start(node.value), token, new)
            if edit:
                raw.append(("flip_operator", fname, node.lineno, f"`{token}` -> `{new}`", [edit]))
        elif isinstance(node, ast.Call) and len(node.args) >= 2 and not any(
            isinstance(a, ast.Starred) for a in node.args[:2]
        ):
            a, b = node.args[0], node.args[1]
            ta, tb = src.segment(src.start(a), src.end(a)), src.segment(src.start(b), src.end(b))
            if ta != tb:
                edits = [(src.start(a), src.end(a), tb), (src.start(b), src.end(b), ta)]
                raw.append(("swap_arguments", fname, node.lineno, f"arguments `{ta}` and `{tb}` swapped", edits))
    return raw


def _function_edits(functions: list, src: _Source, owner: dict[int, str]) -> list[_Edit]:
    """off_by_one (an int at an index or bound, ±1) and the statement removals, function by function."""
    raw: list[_Edit] = []
    for name, func in functions:
        sites = _off_by_one_sites(func)
        for node in ast.walk(func):
            if owner.get(id(node)) != name:
                continue
            if _is_int(node) and id(node) in sites:
                for delta in (1, -1):
                    new = str(node.value + delta)
                    raw.append(("off_by_one", name, node.lineno, f"`{node.value}` -> `{new}`",
                                [(src.start(node), src.end(node), new)]))
            for block in _blocks(node):
                raw.extend(_removals(src, name, block))
    return raw


def _constant_edits(tree: ast.AST, src: _Source, owner: dict[int, str], functions: list) -> list[_Edit]:
    """wrong_constant: a bool negated, an int + 1, a float doubled (not the off-by-one sites)."""
    raw: list[_Edit] = []
    off_sites = set().union(*(_off_by_one_sites(f) for _, f in functions)) if functions else set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in off_sites:
            continue
        value = node.value
        if type(value) is bool:
            new = str(not value)
        elif type(value) is int:
            new = str(value + 1)
        elif type(value) is float:
            new = repr(value * 2 if value else 1.0)
        else:
            continue
        raw.append(("wrong_constant", owner.get(id(node), "<module>"), node.lineno,
                    f"`{src.segment(src.start(node), src.end(node))}` -> `{new}`",
                    [(src.start(node), src.end(node), new)]))
    return raw


def _blocks(node: ast.AST) -> list[list[ast.stmt]]:
    """The statement lists directly inside `node` (a function body, if/else, loop bodies)."""
    out = []
    for field in ("body", "orelse", "finalbody"):
        block = getattr(node, field, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            out.append(block)
    return out


def _removals(src: _Source, fname: str, block: list[ast.stmt]):
    for i, stmt in enumerate(block):
        if not isinstance(stmt, _REMOVABLE):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or a bare constant
        start = src.start(stmt)
        line_start = src.line_starts[stmt.lineno - 1]
        if src.segment(line_start, start).strip():
            continue  # shares its line with other code (a; b)
        end = src.end(stmt)
        nl = src.data.find(b"\n", end)
        line_end = len(src.data) if nl == -1 else nl + 1
        if src.segment(end, line_end).strip():
            continue  # a trailing `; other` on the same line
        only = len(block) == 1 or (i == 0 and len(block) == 2 and isinstance(block[0], ast.Expr)
                                   and isinstance(block[0].value, ast.Constant))
        indent = src.segment(line_start, start)
        new = f"{indent}pass\n" if only else ""
        first_line = src.segment(start, end).splitlines()[0].strip()
        yield ("remove_statement", fname, stmt.lineno, f"removed `{first_line[:60]}`", [(line_start, line_end, new)])
