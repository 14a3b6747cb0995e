"""The code reward: run the completion's code against the task's unit tests in a sandbox.

The tests come with the prompt (`prompt.meta["tests"]`, a list of Python snippets, typically
`assert f(2) == 4`, set by envs/code). Each test runs in a fresh interpreter inside the sandbox
(bubblewrap by default: no network, read-only system, private workspace, cpu/memory/process
limits) with its own wall-clock limit. Syntax errors, exceptions and timeouts fail tests (score
0), not the reward; they are counted per outcome in CODE_OUTCOMES. A sandbox that cannot run at
all raises (a logged zero, counted in reward/errors).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from pathlib import Path
from typing import Literal

from envs.base import Prompt
from rewards.outcomes import Outcomes

HARNESS = Path(__file__).resolve().parents[1] / "envs" / "code" / "harness" / "run_tests.py"
TOOLBOX_DIR = Path(__file__).resolve().parents[1] / "envs" / "swe" / "toolbox"  # what every backend mounts

CODE_OUTCOMES = Outcomes()
"""How code rewards ended since start: passed, failed, partial, syntax_error, timeout, no_code."""


_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_backends: dict[tuple, object] = {}
_lock = threading.Lock()


def extract_code(completion: str) -> str:
    """The code of a reply: the last ```python (or ```py, or bare ```) fenced block, else the whole
    reply. Reasoning before a closing </think> is dropped first."""
    text = completion.split("</think>")[-1]
    blocks = [b for b in _FENCE.findall(text) if b.strip()]
    return (blocks[-1] if blocks else text).strip("\n")


def _backend(kind: str, allow_unsafe: bool, memory_mb: int, cpu_seconds: int):
    from envs.sandbox import SandboxConfig, make_backend

    key = (kind, allow_unsafe, memory_mb, cpu_seconds)
    with _lock:
        if key not in _backends:
            cfg = SandboxConfig(backend=kind, allow_unsafe=allow_unsafe, memory_mb=memory_mb, cpu_seconds=cpu_seconds,
                                wall_seconds=600)
            _backends[key] = make_backend(cfg, TOOLBOX_DIR)
        return _backends[key]


def run_tests(code: str, tests: list[str], *, timeout_seconds: float = 5.0, sandbox: str = "auto",
              allow_unsafe: bool = False, memory_mb: int = 512, cpu_seconds: int = 10) -> dict:
    """Run `code` against `tests` in a sandbox: {"passed": [bool per test], "status": ok |
    syntax_error | timeout, "error": the first failure's last line}."""
    backend = _backend(sandbox, allow_unsafe, memory_mb, cpu_seconds)
    secret = secrets.token_hex(16)
    job = json.dumps({"secret": secret, "solution": code, "tests": list(tests), "timeout": timeout_seconds})
    box = backend.create({"run_tests.py": HARNESS.read_text()})  # type: ignore[attr-defined]
    try:
        result = box.run([backend.python, "-I", "run_tests.py"], stdin=job.encode(),  # type: ignore[attr-defined]
                         timeout=len(tests) * (timeout_seconds + 2.0) + 10.0)
    finally:
        box.close()
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(secret + " "):
            return json.loads(line[len(secret) + 1 :])
    raise RuntimeError(f"the test harness gave no result (exit {result.returncode}, timed out: {result.timed_out}): "
                       f"{result.output.strip()[-500:]}")


def code_tests(completion: str, prompt: Prompt, *, partial_credit: bool = False, timeout_seconds: float = 5.0,
               sandbox: Literal["auto", "bwrap", "docker", "unsafe_local"] = "auto", allow_unsafe: bool = False,
               memory_mb: int = 512) -> float:
    """1 if the completion's code passes every unit test of the task, else 0; with partial_credit,
    the fraction of tests passed. timeout_seconds bounds each test (an infinite loop fails it);
    memory_mb is the address-space limit of each process. sandbox: bwrap (auto) or docker;
    unsafe_local (no isolation) only with allow_unsafe."""
    tests = prompt.meta.get("tests")
    if not tests:
        raise ValueError(f"prompt {prompt.id} has no unit tests (meta['tests']); code_tests scores the code env's tasks")
    code = extract_code(completion)
    if not code.strip():
        CODE_OUTCOMES.add("no_code")
        return 0.0
    out = run_tests(code, tests, timeout_seconds=timeout_seconds, sandbox=sandbox, allow_unsafe=allow_unsafe,
                    memory_mb=memory_mb)
    passed = sum(out["passed"])
    if out["status"] != "ok":
        CODE_OUTCOMES.add(out["status"])
    else:
        CODE_OUTCOMES.add("passed" if passed == len(tests) else "failed" if passed == 0 else "partial")
    if partial_credit:
        return passed / len(tests)
    return float(passed == len(tests))


code_tests.stats = CODE_OUTCOMES  # type: ignore[attr-defined]  (compute_rewards logs the batch's counts)
