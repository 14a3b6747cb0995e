"""Runs pytest for grading INSIDE the sandbox and reports every test's status out of band.

    <python> pytest_run.py <pytest args...>   (stdin: one line, a nonce chosen by the grader)

The grader cannot trust pytest's printed log: the code under test runs in the same process and
can print "PASSED tests/...::test_x" lines of its own (at exit, or before a collection error that
stops pytest from running anything). So this runner records each test's outcome from pytest's own
report objects (a plugin), and after pytest returns writes one line, `<nonce> <JSON statuses>`,
straight to file descriptor 1, then leaves with os._exit (no atexit handler of the code under
test runs after it). The nonce comes on stdin, read before any test code is imported, so the code
under test cannot forge the line; a run that produces no such line (output cut, fd 1 redirected,
a crash) has no passing test. Code that deliberately tampers with the runner's memory is not
guarded against. Standard library plus pytest; Python >= 3.6.
"""

import json
import os
import sys


class Recorder:
    """The status of each test as pytest's -rA summary names it: PASSED, FAILED, ERROR (setup or
    teardown failed), SKIPPED, XFAIL, XPASS."""

    def __init__(self):
        self.statuses = {}

    def pytest_runtest_logreport(self, report):
        nodeid, xfail = report.nodeid, hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                self.statuses[nodeid] = "XPASS" if xfail else "PASSED"
            elif report.failed:
                self.statuses[nodeid] = "FAILED"
            else:
                self.statuses[nodeid] = "XFAIL" if xfail else "SKIPPED"
        elif report.failed:  # setup or teardown
            self.statuses[nodeid] = "ERROR"
        elif report.skipped and report.when == "setup":
            self.statuses[nodeid] = "XFAIL" if xfail else "SKIPPED"


def main():
    nonce = sys.stdin.readline().strip()
    sys.path[0] = os.getcwd()  # as `python -m pytest` has it (the repository importable), not this file's folder
    import pytest

    recorder = Recorder()
    try:
        code = int(pytest.main(sys.argv[1:], plugins=[recorder]))
    except BaseException:  # noqa: BLE001  (whatever the code under test raised: report what ran)
        code = 3
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    if nonce:
        os.write(1, ("\n%s %s\n" % (nonce, json.dumps(recorder.statuses))).encode())
    os._exit(code)


if __name__ == "__main__":
    main()
