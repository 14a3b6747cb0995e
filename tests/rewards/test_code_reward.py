"""The code reward in a real bubblewrap sandbox: pass, fail, partial credit, timeouts, containment."""

from __future__ import annotations

import os
import time

import pytest

from envs.base import Prompt
from rewards import RewardConfig, RewardFunctionConfig, compute_rewards
from rewards.code import CODE_OUTCOMES, code_tests, extract_code
from tests.conftest import loopback_server, require_bwrap

TESTS = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]
PROMPT = Prompt("t/add", ({"role": "user", "content": "add"},), "", {"tests": TESTS})


@pytest.fixture(scope="module", autouse=True)
def _bwrap():
    require_bwrap()


def test_extract_code():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\ndone") == "def f():\n    return 1"
    assert extract_code("```py\nx = 1\n```\n```python\ny = 2\n```") == "y = 2"  # the last block
    assert extract_code("<think>```python\nbad\n```</think>def g(): pass") == "def g(): pass"
    assert extract_code("def h(): return 3") == "def h(): return 3"
    assert extract_code("```python\nz = 3\n") == "z = 3"  # unclosed fence (cut by max_new_tokens)


def test_right_wrong_partial_and_syntax_error():
    right = "```python\ndef add(a, b):\n    return a + b\n```"
    assert code_tests(right, PROMPT) == 1.0
    assert code_tests("def add(a, b):\n    return a - b", PROMPT) == 0.0
    # a - b passes add(0, 0) only; returning 0 passes add(0, 0) and add(-1, 1)
    assert code_tests("def add(a, b):\n    return a - b", PROMPT, partial_credit=True) == 0.25
    assert code_tests("def add(a, b):\n    return 0", PROMPT, partial_credit=True) == 0.5
    before = CODE_OUTCOMES["syntax_error"]
    assert code_tests("def add(a b)", PROMPT, partial_credit=True) == 0.0
    assert CODE_OUTCOMES["syntax_error"] == before + 1


def test_exiting_early_does_not_pass():
    assert code_tests("import os\ndef add(a, b):\n    return 0\nos._exit(0)", PROMPT) == 0.0
    assert code_tests("import sys\nsys.exit(0)", PROMPT, partial_credit=True) == 0.0


def test_infinite_loop_times_out_and_scores_zero():
    before = CODE_OUTCOMES["timeout"]
    start = time.monotonic()
    slow = "def add(a, b):\n    if a == 2:\n        while True:\n            pass\n    return a + b"
    assert code_tests(slow, PROMPT, timeout_seconds=1.0) == 0.0
    assert code_tests(slow, PROMPT, timeout_seconds=1.0, partial_credit=True) == 0.75  # only add(2, 2) loops
    assert time.monotonic() - start < 30
    assert CODE_OUTCOMES["timeout"] == before + 2


def test_network_and_writes_outside_are_contained(tmp_path):
    target = tmp_path / "pwned"
    with loopback_server() as (port, accepted):
        evil = (
            "import socket\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\nexcept OSError:\n    pass\n"
            f"try:\n    open({str(target)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
            "def add(a, b):\n    return a + b\n"
        )
        assert code_tests(evil, PROMPT) == 1.0  # the tests still decide
        time.sleep(0.3)
        assert len(accepted) == 1  # only the host's own check: nothing arrived from the sandbox
    assert not target.exists() and not os.path.exists("/pwned")


def test_missing_tests_is_a_counted_error():
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="code_tests")], verifiable="code_tests")
    plain = Prompt("m/1", (), "4", {})
    result = compute_rewards(["def add(a, b): return a + b"] * 2, [PROMPT, plain], cfg)
    assert result.per_function["code_tests"] == [1.0, 0.0]
    assert result.errors == 1
    result = compute_rewards(["def add(a, b): return a + b", "def add(a b)", "x = 1"], [PROMPT] * 3, cfg)
    assert result.metrics["reward/code_tests/passed"] == 1.0 and result.metrics["reward/code_tests/syntax_error"] == 1.0
    assert result.metrics["reward/code_tests/failed"] == 1.0 and result.metrics["reward/code_tests/timeout"] == 0.0


def test_workers_give_the_sequential_scores():
    replies = ["def add(a, b): return a + b", "def add(a, b): return 0", "def add(a b)", "```python\ndef add(a, b):\n    return b + a\n```"]
    cfg = RewardConfig(functions=[RewardFunctionConfig(name="code_tests", workers=4, args={"partial_credit": True})],
                       verifiable="code_tests")
    assert compute_rewards(replies, [PROMPT] * 4, cfg).total == [1.0, 0.5, 0.0, 1.0]


def test_unknown_argument_fails_at_load():
    with pytest.raises(ValueError, match="reward 'code_tests' has no argument 'timeout'; allowed arguments: partial_credit"):
        RewardFunctionConfig(name="code_tests", args={"timeout": 3})
