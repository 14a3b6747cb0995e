"""A task in a sandbox: start its workspace, call the file tools, take the agent's changes, grade.

Grading never trusts the agent's workspace: it starts a FRESH sandbox from the task, carries over
only the agent's changes (generated tasks: the files under the task's `editable` paths, read by the
toolbox inside the agent's sandbox; SWE-bench tasks: `git diff` of the repository, applied with
`git apply` as the harness applies a model patch), writes the hidden tests over it, and runs them.
Tests, conftest.py or pytest settings the agent wrote never reach the grading run.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from envs.sandbox.base import ExecResult, Sandbox, SandboxBackend, safe_relative
from envs.swe.grading import (
    PYTEST_ENV, PYTEST_RUNNER, Verdict, judge, parse_pytest_log, read_report, report_nonce, truncate_middle,
)
from envs.swe.tasks import SWETask, test_files

EXPORT_LIMIT = 1 << 20


@dataclass
class Changes:
    """What the agent changed: the files to carry over (generated tasks) and the patch."""

    patch: str
    files: dict[str, str] | None = None
    error: str | None = None


def start(backend: SandboxBackend, task: SWETask) -> Sandbox:
    if task.needs_docker:
        return backend.create(image=task.image, workdir=task.workdir)
    return backend.create(task.files)


def toolbox(backend: SandboxBackend, sandbox: Sandbox, tool: str, args: dict[str, Any],
            timeout: float | None = None) -> ExecResult:
    """Run one file tool inside the sandbox (envs/swe/toolbox/toolbox.py)."""
    request = json.dumps({"tool": tool, "args": args}).encode()
    return sandbox.run([backend.python, "-I", backend.toolbox], stdin=request, timeout=timeout)


def command(argv, backend: SandboxBackend) -> list[str]:
    """argv with "{python}" and "{pytest_run}" spelt as inside the backend's sandboxes."""
    runner = str(PurePosixPath(backend.toolbox).parent / "pytest_run.py")
    return [backend.python if part == "{python}" else runner if part == PYTEST_RUNNER else part for part in argv]


def run_tests(backend: SandboxBackend, sandbox: Sandbox, argv, timeout: float | None,
              env: dict[str, str] | None = None) -> tuple[ExecResult, dict[str, str], str]:
    """Run a test command; (its result, the status of each test, its output). Through the
    reporting runner when argv names it (a fresh nonce on its stdin; no report, no passing test),
    else the statuses parsed from the pytest -rA log."""
    if PYTEST_RUNNER not in argv:
        result = sandbox.run(command(argv, backend), timeout=timeout, env=env)
        return result, parse_pytest_log(result.output), result.output
    nonce = report_nonce()
    result = sandbox.run(command(argv, backend), stdin=(nonce + "\n").encode(), timeout=timeout, env=env)
    statuses, output = read_report(result.output, nonce)
    if statuses is None:
        output += "\n[asymptote] the test runner reported no results (cut short, timed out or its output redirected)\n"
    return result, statuses or {}, output


def collect_changes(backend: SandboxBackend, sandbox: Sandbox, task: SWETask) -> Changes:
    if task.needs_docker:
        return repository_changes(sandbox)
    result = toolbox(backend, sandbox, "export", {"prefixes": list(task.editable), "max_bytes": EXPORT_LIMIT},
                     timeout=60)
    if not result.ok or result.truncated:
        return Changes(patch="", error=f"could not read the workspace: {result.output[-500:]}")
    exported = json.loads(result.stdout)["files"]
    files = {}
    for path, text in exported.items():
        rel = str(safe_relative(path))  # the toolbox ran inside the sandbox: check what it returns
        if any(rel == p.rstrip("/") or rel.startswith(p.rstrip("/") + "/") for p in task.editable):
            files[rel] = text
    return Changes(patch=unified_diff(_editable(task.files, task), files), files=files)


def grade(backend: SandboxBackend, task: SWETask, changes: Changes, timeout: float | None = None) -> Verdict:
    """Run the hidden tests on a fresh copy of the task with the agent's changes."""
    if changes.error is not None:
        return judge({}, task.FAIL_TO_PASS, task.PASS_TO_PASS, error=changes.error)
    if task.needs_docker:
        return _grade_docker(backend, task, changes, timeout)
    files = {p: t for p, t in task.files.items() if p not in _editable(task.files, task)}
    files.update(changes.files or {})
    files.update(task.hidden_tests)
    with backend.create(files) as sandbox:
        result, statuses, output = run_tests(backend, sandbox, task.test_command, timeout, PYTEST_ENV)
    return _judge_run(task, result, statuses, output)


def _grade_docker(backend: SandboxBackend, task: SWETask, changes: Changes, timeout: float | None) -> Verdict:
    with backend.create(image=task.image, workdir=task.workdir) as sandbox:
        return grade_repository(sandbox, task, changes, timeout)


def repository_changes(sandbox: Sandbox) -> Changes:
    """The agent's changes to a git repository (SWE-bench tasks): everything, new files included,
    as one binary-safe diff against HEAD."""
    result = sandbox.run(["bash", "-c", "git add -A && git diff --cached --binary HEAD"], timeout=120)
    if not result.ok:
        return Changes(patch="", error=f"git diff failed: {result.output[-500:]}")
    return Changes(patch=result.stdout)


def grade_repository(sandbox: Sandbox, task: SWETask, changes: Changes, timeout: float | None) -> Verdict:
    """The SWE-bench harness's evaluation in a fresh sandbox holding the task's repository at
    base_commit: apply the model patch, restore the test files the test patch touches to
    base_commit (removing those it creates), apply the test patch, run the tests, judge the log."""
    if changes.patch.strip():
        applied = sandbox.run(["git", "apply", "-v", "-"], stdin=changes.patch.encode(), timeout=120)
        if not applied.ok:
            return judge({}, task.FAIL_TO_PASS, task.PASS_TO_PASS, test_output=applied.output[-2000:],
                         error="the model patch does not apply")
    reset = 'for f in "$@"; do git checkout "$0" -- "$f" 2>/dev/null || rm -f "$f"; done'
    sandbox.run(["bash", "-c", reset, task.base_commit, *test_files(task.test_patch)], timeout=120)
    applied = sandbox.run(["git", "apply", "-v", "-"], stdin=task.test_patch.encode(), timeout=120)
    if not applied.ok:
        return judge({}, task.FAIL_TO_PASS, task.PASS_TO_PASS, test_output=applied.output[-2000:],
                     error="the test patch does not apply")
    result = sandbox.run(list(task.test_command), timeout=timeout)
    return _judge_run(task, result, parse_pytest_log(result.output), result.output)


def _judge_run(task: SWETask, result: ExecResult, statuses: dict[str, str], output: str) -> Verdict:
    error = "the hidden tests timed out" if result.timed_out else None
    return judge(statuses, task.FAIL_TO_PASS, task.PASS_TO_PASS, test_output=truncate_middle(output, 20000), error=error)


def _editable(files: dict[str, str], task: SWETask) -> dict[str, str]:
    prefixes = [p.rstrip("/") for p in task.editable]
    return {p: t for p, t in files.items() if any(p == x or p.startswith(x + "/") for x in prefixes)}


def unified_diff(before: dict[str, str], after: dict[str, str]) -> str:
    """A git-style unified diff from one set of files to another (added and deleted files included)."""
    out = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path), after.get(path)
        if a == b:
            continue
        out.append(f"diff --git a/{path} b/{path}\n")
        if a is None:
            out.append("new file mode 100644\n")
        elif b is None:
            out.append("deleted file mode 100644\n")
        lines = difflib.unified_diff(
            (a or "").splitlines(keepends=True), (b or "").splitlines(keepends=True),
            fromfile=f"a/{path}" if a is not None else "/dev/null", tofile=f"b/{path}" if b is not None else "/dev/null",
        )
        for line in lines:
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
