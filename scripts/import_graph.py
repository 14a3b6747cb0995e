"""The package's import graph between modules (top-level and deferred imports, read with ast), its
circles, and the imports that cross layers upwards.

    python scripts/import_graph.py            # circles and upward imports; exit 1 if any
    python scripts/import_graph.py --edges    # every edge, module -> module

The layers, bottom to top (a package imports only from its own layer and those below):

    envs       environments, and the schema base every config builds on (envs/schema.py)
    rewards    reward functions; scores envs' prompts
    analysis   fits and readers; torch-free (the core install), so never the trainer
    rl         the trainer, its components and engines
    launch     the command line, jobs, sweeps

Inside rl, the engines (rl/rollout/) do not import the trainer or its parallel layer.
tests/test_layers.py fails on any circle or upward import.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rl", "rewards", "envs", "analysis", "launch")
LAYERS = ("envs", "rewards", "analysis", "rl", "launch")  # bottom to top
FORBIDDEN = (  # (importer prefix, imported prefix) inside a layer
    ("rl.rollout", "rl.trainer"), ("rl.rollout", "rl.update"), ("rl.rollout", "rl.parallel"),
)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies in (`rl.config.Recipe` -> `rl.config`)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(mod: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `mod` imports anywhere in its body (deferred imports included)."""
    out: set[str] = set()
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        else:
            continue
        for n in names:
            target = _resolve(n, known)
            if target and target != mod:
                out.add(target)
    return out


def graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    known = modules(root, packages)
    return {m: imports(m, p, known) for m, p in known.items()}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def upward(g: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports into a higher layer (LAYERS), and the FORBIDDEN ones inside a layer."""
    rank = {pkg: i for i, pkg in enumerate(LAYERS)}
    return sorted((m, t) for m, ts in g.items() for t in ts
                  if rank.get(t.split(".")[0], -1) > rank.get(m.split(".")[0], len(LAYERS))
                  or any(_under(m, a) and _under(t, b) for a, b in FORBIDDEN))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print every edge")
    args = parser.parse_args(argv)
    g = graph()
    if args.edges:
        for m in sorted(g):
            for t in sorted(g[m]):
                print(f"{m} -> {t}")
        return 0
    cs, up = circles(g), upward(g)
    print(f"{len(g)} modules, {sum(map(len, g.values()))} imports between them")
    for c in cs:
        print(f"circle of {len(c)}: {', '.join(c)}")
    for m, t in up:
        print(f"upward: {m} -> {t}")
    return 1 if cs or up else 0


if __name__ == "__main__":
    sys.exit(main())
