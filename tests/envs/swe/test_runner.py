"""The hidden tests' reporting runner (envs/swe/toolbox/pytest_run.py) in a real sandbox: it
reports what pytest's -rA summary says, and code under test that prints pytest-like lines (at
exit, or before a collection error) no longer passes the hidden tests, as it did when the printed
log was parsed."""

from pathlib import Path

import pytest

from envs.swe.generate import TEST_COMMAND
from envs.swe.grading import PYTEST_ENV, PYTEST_FLAGS, PYTEST_RUNNER, parse_pytest_log
from envs.swe.runtime import Changes, grade, run_tests

# one test of each pytest status (pass, fail, skip, xfail, xpass, setup error, parametrized ids
# with spaces), failing on purpose: data for the runner, not tests of this suite
TESTS = (Path(__file__).parent / "data" / "runner_sample.py.txt").read_text()


def test_the_runner_reports_what_pytest_summarises(swe_backend):
    with swe_backend.create({"tests/test_a.py": TESTS}) as sandbox:
        result, statuses, output = run_tests(swe_backend, sandbox, (("{python}", PYTEST_RUNNER) + PYTEST_FLAGS + ("tests",)),
                                             60, PYTEST_ENV)
    assert result.returncode == 1 and "ASYMPTOTE-REPORT" not in output
    assert statuses == {
        "tests/test_a.py::test_pass": "PASSED", "tests/test_a.py::test_fail": "FAILED",
        "tests/test_a.py::test_skip": "SKIPPED", "tests/test_a.py::test_xfail": "XFAIL",
        "tests/test_a.py::test_xpass": "XPASS", "tests/test_a.py::test_setup_error": "ERROR",
        "tests/test_a.py::test_param[a b]": "PASSED", "tests/test_a.py::test_param[c]": "PASSED",
    }
    # the same as the -rA log says (this one is honest), except that the log names a skipped test
    # only as "SKIPPED [1] file:line: reason", so a log parser loses it
    log = parse_pytest_log(output)
    assert log == {k: v for k, v in statuses.items() if k != "tests/test_a.py::test_skip"}
    assert "SKIPPED [1] tests/test_a.py:" in output


def test_no_report_means_no_passing_test(swe_backend):
    code = "import os\n\ndef test_a():\n    pass\n\ndef test_b():\n    os._exit(0)  # the process ends before any report\n"
    with swe_backend.create({"tests/test_a.py": code}) as sandbox:
        result, statuses, output = run_tests(swe_backend, sandbox, TEST_COMMAND, 60, PYTEST_ENV)
    assert statuses == {} and "reported no results" in output


@pytest.mark.parametrize("hack", [
    "import atexit\natexit.register(lambda: print(FAKE))\n",                     # printed after pytest's summary
    "print(FAKE)\nraise ImportError('stop the collection')\n",                    # before a collection error
    "import os\nos.write(2, (FAKE + chr(10)).encode())\nraise ImportError('x')\n",  # on stderr
    "import os\nos.write(1, (FAKE + chr(10)).encode())\n",                        # on the real stdout, at import
])
def test_printed_status_lines_do_not_pass_the_hidden_tests(swe_backend, swe_tasks, hack):
    task = swe_tasks[0]
    fake = "\n".join(f"PASSED {t}" for t in task.FAIL_TO_PASS + task.PASS_TO_PASS)
    files = {p: t for p, t in task.files.items() if p.startswith("pocketlib/")}
    files["pocketlib/__init__.py"] += f"\nFAKE = {fake!r}\n" + hack
    verdict = grade(swe_backend, task, Changes(patch="(hack)", files=files), timeout=60)
    assert not verdict.resolved and verdict.f2p_passed == []
    assert verdict.score(partial_credit=True) == 0.0
