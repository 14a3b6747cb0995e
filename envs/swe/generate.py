"""Procedural SWE tasks: inject a bug into a library that ships with Asymptote, keep it if its tests
catch it and the inverse edit fixes it (SWE-smith's recipe, offline and in seconds).

For each candidate injection (envs/swe/inject.py), in a seeded order that draws the five kinds
equally often:
  1. the library's whole test suite runs on the buggy code in the sandbox; the tests that now
     fail are FAIL_TO_PASS, the others PASS_TO_PASS (every test passes on the pristine library,
     checked once first); no failing test, or a run that hangs, drops the candidate;
  2. the task's workspace is the buggy library with the FAIL_TO_PASS test functions taken out of
     its test files (the rest of the suite stays visible, as a repository's existing tests are);
     the hidden tests are the whole suite; the gold patch is the inverse of the injection;
  3. the gold patch is applied in a fresh sandbox (`git apply`), the changes are collected and
     graded exactly as an agent's would be: a task whose gold patch does not score 1 is dropped.
Generated task sets are cached by a hash of everything that determines them.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from envs.sandbox.base import SandboxBackend
from envs.swe.grading import PYTEST_ENV, PYTEST_FLAGS, PYTEST_RUNNER, failure_messages, passed
from envs.swe.inject import KINDS, Injection, candidates
from envs.swe.runtime import Changes, collect_changes, grade, run_tests, start, unified_diff
from envs.swe.tasks import SWETask, load_tasks, save_tasks

DATA_DIR = Path(__file__).resolve().parent / "data"
GENERATOR_VERSION = 4  # 4: hidden tests through the reporting runner
TEST_COMMAND = ("{python}", PYTEST_RUNNER, *PYTEST_FLAGS, "tests")


@dataclass(frozen=True)
class Library:
    name: str
    files: dict[str, str]

    @property
    def package(self) -> str:
        return self.name

    def is_test(self, path: str) -> bool:
        return path.startswith("tests/")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.files, sort_keys=True).encode()).hexdigest()


def load_library(name: str) -> Library:
    """A library under envs/swe/data/<name>/: a package <name>/ and a pytest suite in tests/."""
    root = DATA_DIR / name
    if not (root / name).is_dir() or not (root / "tests").is_dir():
        available = sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir())
        raise ValueError(f"unknown library '{name}'; available: {', '.join(available)}")
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".md", ".txt", ".cfg", ".toml"):
            files[str(path.relative_to(root))] = path.read_text()
    return Library(name, files)


def ordered_candidates(lib: Library, kinds: tuple[str, ...], seed: int) -> list[Injection]:
    """All candidates of the chosen kinds, in a seeded order that alternates kinds at random with
    equal probability (so the many statement removals do not crowd out the few swaps)."""
    by_kind: dict[str, list[Injection]] = {k: [] for k in kinds}
    for path, text in lib.files.items():
        if path.startswith(lib.package + "/") and path.endswith(".py") and not path.endswith("__init__.py"):
            for c in candidates(path, text):
                if c.kind in by_kind:
                    by_kind[c.kind].append(c)
    rng = random.Random(seed)
    for k in kinds:
        rng.shuffle(by_kind[k])
    out = []
    while any(by_kind.values()):
        k = rng.choice([k for k in kinds if by_kind[k]])
        out.append(by_kind[k].pop())
    return out


def strip_tests(source: str, names: set[str]) -> str:
    """`source` without the top-level test functions called `names` (decorators included)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            drop |= set(range(first - 1, node.end_lineno))
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    while "\n\n\n\n" in kept:
        kept = kept.replace("\n\n\n\n", "\n\n\n")
    return kept


def problem_statement(lib: Library, f2p: list[str], messages: dict[str, str], detail: str) -> str:
    shown = f2p[:5]
    if detail == "failures":
        listed = [f"FAILED {t} - {messages[t]}"[:200] if t in messages else f"FAILED {t}" for t in shown]
    else:
        listed = [t for t in shown]
    more = f"\n(and {len(f2p) - len(shown)} more)" if len(f2p) > len(shown) else ""
    return (
        f"{lib.package} has a bug: these tests fail.\n\n" + "\n".join(listed) + more + "\n\n"
        f"Fix the code in {lib.package}/ so that they pass and the other tests keep passing. The failing tests are "
        f"hidden; the rest of the suite is in tests/. Do not edit tests."
    )


def gold_edit(path: str, mutated: str, original: str) -> dict[str, str] | None:
    """The fix as one `replace` call: the changed lines of the buggy file, with as many lines of
    context as make them unique in it, and their original text."""
    import difflib

    a, b = mutated.splitlines(keepends=True), original.splitlines(keepends=True)
    blocks = [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if not blocks:
        return None
    i1, i2, j1, j2 = blocks[0][1], blocks[-1][2], blocks[0][3], blocks[-1][4]
    for extra in range(0, 20):
        lo, hi = max(0, i1 - extra), min(len(a), i2 + extra)
        old = "".join(a[lo:hi])
        if old and mutated.count(old) == 1:
            new = "".join(a[lo:i1]) + "".join(b[j1:j2]) + "".join(a[i2:hi])
            return {"path": path, "old": old, "new": new}
    return None


def _run_suite(backend: SandboxBackend, files: dict[str, str], timeout: float):
    """(the run's result, each test's status, its output) of the whole suite on `files`."""
    with backend.create(files) as sandbox:
        return run_tests(backend, sandbox, TEST_COMMAND, timeout, PYTEST_ENV)


def validate(backend: SandboxBackend, lib: Library, injection: Injection, baseline: list[str], visible_tests: bool,
             detail: str, timeout: float) -> tuple[SWETask | None, str]:
    """The task made from `injection`, or None and why it was dropped."""
    buggy = {**lib.files, injection.path: injection.mutated}
    result, statuses, output = _run_suite(backend, buggy, timeout)
    if result.timed_out:
        return None, "the tests hang"
    f2p = [t for t in baseline if not passed(t, statuses)]
    p2p = [t for t in baseline if passed(t, statuses)]
    if not f2p:
        return None, "no test fails"
    failing_names = {t.split("::", 1)[1].split("[")[0] for t in f2p}
    workspace = {}
    for path, text in buggy.items():
        if not lib.is_test(path):
            workspace[path] = text
        elif visible_tests:
            workspace[path] = strip_tests(text, failing_names) if path.endswith(".py") else text
    hidden = {p: t for p, t in lib.files.items() if lib.is_test(p)}
    digest = hashlib.sha256(injection.mutated.encode()).hexdigest()[:8]
    module = Path(injection.path).stem
    task = SWETask(
        instance_id=f"{lib.name}__{injection.kind}__{module}__{injection.function}__{digest}",
        repo=f"asymptote/{lib.name}",
        base_commit=hashlib.sha256(json.dumps(workspace, sort_keys=True).encode()).hexdigest()[:12],
        problem_statement=problem_statement(lib, f2p, failure_messages(output), detail),
        FAIL_TO_PASS=tuple(f2p),
        PASS_TO_PASS=tuple(p2p),
        patch=unified_diff({injection.path: injection.mutated}, {injection.path: injection.original}),
        test_patch=unified_diff({}, hidden),
        test_command=TEST_COMMAND,
        files=workspace,
        hidden_tests=hidden,
        editable=(lib.package + "/",),
        meta={"source": "generated", "kind": injection.kind, "file": injection.path, "function": injection.function,
              "line": injection.line, "bug": injection.description,
              "gold_edit": gold_edit(injection.path, injection.mutated, injection.original)},
    )
    verdict = grade(backend, task, apply_in_sandbox(backend, task, task.patch), timeout)
    if not verdict.resolved:
        return None, f"the gold patch does not pass: {verdict.error or verdict.f2p_failed[:3] + verdict.p2p_failed[:3]}"
    return task, "ok"


def apply_in_sandbox(backend: SandboxBackend, task: SWETask, patch: str) -> Changes:
    """Apply `patch` with `git apply` in a fresh sandbox of `task` and collect the changes, as an
    agent's edits would be collected."""
    with start(backend, task) as sandbox:
        applied = sandbox.run(["git", "apply", "-"], stdin=patch.encode(), timeout=60)
        if not applied.ok:
            return Changes(patch="", error=f"git apply failed: {applied.output[-500:]}")
        return collect_changes(backend, sandbox, task)


def generate_tasks(backend: SandboxBackend, library: str, count: int, seed: int, kinds: tuple[str, ...] = KINDS,
                   visible_tests: bool = True, detail: str = "failures", timeout: float = 20.0, workers: int = 2,
                   log=print) -> list[SWETask]:
    """`count` validated tasks (fewer if the library runs out of candidates)."""
    lib = load_library(library)
    result, statuses, output = _run_suite(backend, lib.files, timeout * 3)
    baseline = sorted(statuses)
    broken = [t for t in baseline if not passed(t, statuses)]
    if not baseline or broken or not result.ok:
        raise RuntimeError(f"the {library} test suite does not pass as shipped ({broken[:5]}): {output[-2000:]}")
    order = ordered_candidates(lib, tuple(kinds), seed)
    tasks: list[SWETask] = []
    dropped: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start_index in range(0, len(order), workers):
            batch = order[start_index : start_index + workers]
            results = list(pool.map(lambda c: validate(backend, lib, c, baseline, visible_tests, detail, timeout), batch))
            for task, reason in results:  # in candidate order: the same tasks whatever the timing
                if task is None:
                    dropped[reason.split(":")[0]] = dropped.get(reason.split(":")[0], 0) + 1
                elif len(tasks) < count:
                    tasks.append(task)
            if len(tasks) >= count:
                break
            if not tasks and dropped.get("the gold patch does not pass", 0) >= 5:
                raise RuntimeError(f"the gold patches of the first candidates do not pass in this sandbox (the "
                                   f"environment is broken, not the tasks): {[r for _, r in results]}")
    log(f"[asymptote] generated {len(tasks)} {library} tasks from {sum(dropped.values()) + len(tasks)} candidates "
        f"(dropped: {', '.join(f'{k}: {v}' for k, v in sorted(dropped.items())) or 'none'})")
    return tasks


def cached_tasks(backend: SandboxBackend, library: str, count: int, seed: int, kinds: tuple[str, ...],
                 visible_tests: bool, detail: str, cache_dir: str | None, log=print) -> list[SWETask]:
    """generate_tasks, cached under cache_dir (default $ASYMPTOTE_CACHE or ~/.cache/asymptote)."""
    lib = load_library(library)
    key = hashlib.sha256(json.dumps(
        [GENERATOR_VERSION, lib.fingerprint(), count, seed, sorted(kinds), visible_tests, detail]
    ).encode()).hexdigest()[:16]
    root = Path(cache_dir or os.environ.get("ASYMPTOTE_CACHE") or Path.home() / ".cache" / "asymptote")
    path = root / "swe_tasks" / f"{library}-{key}.jsonl"
    if path.is_file():
        return load_tasks(path)
    tasks = generate_tasks(backend, library, count, seed, kinds, visible_tests, detail, log=log)
    save_tasks(path, tasks)
    return tasks
