"""Hidden-test grading, as the SWE-bench harness does it.

The test run's log is parsed into a status per pytest node id (`-rA` prints one
`PASSED tests/test_x.py::test_y` line per test); the task's FAIL_TO_PASS tests must pass (PASSED or
XFAIL) and its PASS_TO_PASS tests must keep passing (PASSED, XFAIL or SKIPPED); a test missing from
the log (a collection error, a crash, a timeout) has failed. That is SWE-bench's
`get_eval_tests_report` and its FULL resolution status (swebench/harness/grading.py).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL", "XPASS")
_STATUS_FIRST = re.compile(rf"^({'|'.join(STATUSES)}) (.+)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# The hidden test runs of generated tasks go through envs/swe/toolbox/pytest_run.py ("{pytest_run}" in a
# task's test_command), which reports statuses out of band: the code under test cannot fake them by
# printing pytest-like lines. SWE-bench tasks' logs are parsed (parse_pytest_log), as the harness does.
PYTEST_RUNNER = "{pytest_run}"

# pytest flags every test run uses: one result line per test, no colour, no cache or plugins
PYTEST_FLAGS = ("-rA", "-p", "no:cacheprovider", "--color=no", "--tb=short", "-q")
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": ""}


def parse_pytest_log(log: str) -> dict[str, str]:
    """Test node id -> status from a pytest log run with -rA (the last status of an id wins).

    Unlike SWE-bench's parser, which cuts a node id at its first space, the id runs to the end of
    the line or to pytest's " - " before a reason, so parametrized ids with spaces stay whole."""
    statuses: dict[str, str] = {}
    for line in log.splitlines():
        m = _STATUS_FIRST.match(_ANSI.sub("", line).rstrip())
        if m:
            status, rest = m.groups()
            test = rest.split(" - ", 1)[0].strip()
            if status == "SKIPPED" and test.startswith("["):  # "SKIPPED [1] file.py:3: reason"
                continue
            statuses[test] = status
    return statuses


def report_nonce() -> str:
    """A fresh secret for one run of envs/swe/toolbox/pytest_run.py (given on its stdin)."""
    return "ASYMPTOTE-REPORT-" + secrets.token_hex(16)


def read_report(output: str, nonce: str) -> tuple[dict[str, str] | None, str]:
    """The statuses pytest_run.py reported after `nonce` (None when no report came: the run was cut
    short, timed out or its output redirected: then no test passed), and the output without the
    report line."""
    statuses, kept = None, []
    for line in output.splitlines(keepends=True):
        if line.startswith(nonce + " "):
            try:
                value = json.loads(line[len(nonce) + 1 :])
                statuses = {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None
            except json.JSONDecodeError:
                statuses = None
        else:
            kept.append(line)
    return statuses, "".join(kept).rstrip("\n") + "\n" if kept else ""


def failure_messages(log: str) -> dict[str, str]:
    """Test node id -> the one-line reason pytest gives after ' - ' in the short summary."""
    out = {}
    for line in log.splitlines():
        line = _ANSI.sub("", line)
        for status in ("FAILED", "ERROR"):
            if line.startswith(status + " ") and " - " in line:
                test, _, reason = line[len(status) + 1 :].partition(" - ")
                out[test.strip()] = reason.strip()
    return out


def passed(test: str, statuses: dict[str, str]) -> bool:
    return statuses.get(test) in ("PASSED", "XFAIL")


def maintained(test: str, statuses: dict[str, str]) -> bool:
    return statuses.get(test) in ("PASSED", "XFAIL", "SKIPPED")


@dataclass
class Verdict:
    """The hidden tests' judgement of one episode (kept in samples.jsonl)."""

    resolved: bool
    f2p_passed: list[str] = field(default_factory=list)
    f2p_failed: list[str] = field(default_factory=list)
    p2p_passed: list[str] = field(default_factory=list)
    p2p_failed: list[str] = field(default_factory=list)
    test_output: str = ""
    error: str | None = None
    """Why grading could not run the tests (the patch did not apply, the sandbox failed), or None."""

    @property
    def f2p_fraction(self) -> float:
        n = len(self.f2p_passed) + len(self.f2p_failed)
        return len(self.f2p_passed) / n if n else 1.0

    @property
    def p2p_fraction(self) -> float:
        n = len(self.p2p_passed) + len(self.p2p_failed)
        return len(self.p2p_passed) / n if n else 1.0

    def score(self, partial_credit: bool = False) -> float:
        """1/0 by resolution; with partial credit, the fraction of FAIL_TO_PASS tests fixed times
        the fraction of PASS_TO_PASS tests kept (so a no-op scores 0 and breaking tests costs)."""
        if not partial_credit:
            return 1.0 if self.resolved else 0.0
        return self.f2p_fraction * self.p2p_fraction

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolved": self.resolved,
            "FAIL_TO_PASS": {"success": self.f2p_passed, "failure": self.f2p_failed},
            "PASS_TO_PASS": {"success": self.p2p_passed, "failure": self.p2p_failed},
            "f2p_fraction": self.f2p_fraction,
            "p2p_fraction": self.p2p_fraction,
            "test_output": self.test_output,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        return cls(
            resolved=bool(d["resolved"]),
            f2p_passed=list(d["FAIL_TO_PASS"]["success"]), f2p_failed=list(d["FAIL_TO_PASS"]["failure"]),
            p2p_passed=list(d["PASS_TO_PASS"]["success"]), p2p_failed=list(d["PASS_TO_PASS"]["failure"]),
            test_output=d.get("test_output", ""), error=d.get("error"),
        )


def judge(statuses: dict[str, str], fail_to_pass, pass_to_pass, test_output: str = "",
          error: str | None = None) -> Verdict:
    f2p_ok = [t for t in fail_to_pass if passed(t, statuses)]
    p2p_ok = [t for t in pass_to_pass if maintained(t, statuses)]
    v = Verdict(
        resolved=False,
        f2p_passed=f2p_ok, f2p_failed=[t for t in fail_to_pass if t not in set(f2p_ok)],
        p2p_passed=p2p_ok, p2p_failed=[t for t in pass_to_pass if t not in set(p2p_ok)],
        test_output=test_output, error=error,
    )
    v.resolved = error is None and not v.f2p_failed and not v.p2p_failed
    return v


def truncate_middle(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, keeping its head and its tail."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - head - tail} characters truncated ...]\n{text[-tail:]}"
