"""Grading as the SWE-bench harness does it: pytest -rA logs to statuses, FAIL_TO_PASS / PASS_TO_PASS."""

import pytest

from envs.swe.grading import Verdict, failure_messages, judge, parse_pytest_log, truncate_middle

LOG = """\
....F.s
=================================== FAILURES ===================================
_______________________________ test_slugify _______________________________
E   assert 'a-b' == 'a--b'
==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED tests/test_text.py::test_words
PASSED tests/test_text.py::test_snake_case[Hello World-hello_world]
FAILED tests/test_text.py::test_slugify - AssertionError: assert 'a-b' == 'a--b'
SKIPPED [1] tests/test_text.py:40: no locale
SKIPPED tests/test_text.py::test_locale
XFAIL tests/test_text.py::test_known_bug - reason
ERROR tests/test_cache.py::test_hit_rate - NameError: name 'x' is not defined
1 failed, 3 passed, 1 skipped, 1 xfailed, 1 error in 0.12s
"""


def test_parse_pytest_log():
    assert parse_pytest_log(LOG) == {
        "tests/test_text.py::test_words": "PASSED",
        "tests/test_text.py::test_snake_case[Hello World-hello_world]": "PASSED",  # spaces stay in the id
        "tests/test_text.py::test_slugify": "FAILED",
        "tests/test_text.py::test_locale": "SKIPPED",
        "tests/test_text.py::test_known_bug": "XFAIL",
        "tests/test_cache.py::test_hit_rate": "ERROR",
    }
    assert failure_messages(LOG)["tests/test_text.py::test_slugify"] == "AssertionError: assert 'a-b' == 'a--b'"


def test_judge_follows_swebench():
    statuses = parse_pytest_log(LOG)
    f2p = ["tests/test_text.py::test_slugify", "tests/test_text.py::test_known_bug"]
    p2p = ["tests/test_text.py::test_words", "tests/test_text.py::test_locale", "tests/test_cache.py::test_hit_rate",
           "tests/test_missing.py::test_gone"]
    v = judge(statuses, f2p, p2p)
    assert v.f2p_passed == ["tests/test_text.py::test_known_bug"]  # XFAIL counts as passing
    assert v.f2p_failed == ["tests/test_text.py::test_slugify"]
    assert v.p2p_passed == ["tests/test_text.py::test_words", "tests/test_text.py::test_locale"]  # SKIPPED keeps
    assert v.p2p_failed == ["tests/test_cache.py::test_hit_rate", "tests/test_missing.py::test_gone"]  # missing = failed
    assert not v.resolved and v.score() == 0.0
    assert v.score(partial_credit=True) == pytest.approx(0.5 * 0.5)


def test_resolved_and_partial_credit():
    statuses = {"a": "PASSED", "b": "PASSED", "c": "PASSED"}
    v = judge(statuses, ["a"], ["b", "c"])
    assert v.resolved and v.score() == 1.0 and v.score(partial_credit=True) == 1.0
    noop = judge({"b": "PASSED", "c": "PASSED"}, ["a"], ["b", "c"])
    assert noop.score() == 0.0 and noop.score(partial_credit=True) == 0.0
    assert not judge(statuses, ["a"], ["b"], error="the hidden tests timed out").resolved


def test_verdict_round_trips_through_json():
    v = judge({"a": "PASSED"}, ["a"], ["b"], test_output="out")
    assert Verdict.from_dict(v.to_dict()) == v


def test_truncate_middle_keeps_head_and_tail():
    text = "HEAD" + "x" * 1000 + "TAIL"
    out = truncate_middle(text, 100)
    assert out.startswith("HEAD") and out.endswith("TAIL") and "characters truncated" in out and len(out) < 160
    assert truncate_middle("short", 100) == "short"
