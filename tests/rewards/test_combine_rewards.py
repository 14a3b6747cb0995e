"""Hybrid verifiers: reward.combine rules (weighted, min, max, all, any, gate), by hand."""

import pytest
from pydantic import ValidationError

from envs.base import Prompt
from rewards import REWARDS, CombineConfig, RewardConfig, compute_rewards

# each completion is "judge|tests": the two functions read their value from it
COMPLETIONS = ["0.9|1", "0.4|1", "0.7|0"]
PROMPTS = [Prompt(id=f"c/{i}", messages=(), answer="") for i in range(3)]


def judge(completion: str, prompt: Prompt) -> float:
    return float(completion.split("|")[0])


def unit_tests(completion: str, prompt: Prompt) -> float:
    return float(completion.split("|")[1])


@pytest.fixture(autouse=True)
def _register(monkeypatch):
    monkeypatch.setitem(REWARDS, "judge", judge)
    monkeypatch.setitem(REWARDS, "tests", unit_tests)


def total(combine: dict, tests_weight: float = 0.5) -> list[float]:
    cfg = RewardConfig(functions=[{"name": "judge"}, {"name": "tests", "weight": tests_weight}], verifiable="tests",
                       combine=combine)
    return compute_rewards(COMPLETIONS, PROMPTS, cfg).total


@pytest.mark.parametrize("combine, expected", [
    ({}, [1.4, 0.9, 0.7]),                                   # 0.9 + 0.5·1, 0.4 + 0.5·1, 0.7 + 0
    ({"mode": "min"}, [0.5, 0.4, 0.0]),
    ({"mode": "max"}, [0.9, 0.5, 0.7]),
    ({"mode": "all", "threshold": 0.5}, [1.0, 0.0, 0.0]),    # judge passes 1 and 3, tests 1 and 2
    ({"mode": "any", "threshold": 0.5}, [1.0, 1.0, 1.0]),
    ({"mode": "any", "threshold": 0.8}, [1.0, 1.0, 0.0]),
])
def test_rules_by_hand(combine, expected):
    assert total(combine) == pytest.approx(expected)


def test_gate_counts_the_judge_only_where_the_tests_pass():
    assert total({"mode": "gate", "gate": "tests"}, tests_weight=0.0) == pytest.approx([0.9, 0.4, 0.0])
    assert total({"mode": "gate", "gate": "tests", "fail_value": -1.0}, tests_weight=1.0) == pytest.approx([1.9, 1.4, -1.0])


def test_weight_zero_functions_are_logged_but_left_out_of_rules():
    assert total({"mode": "min"}, tests_weight=0.0) == pytest.approx([0.9, 0.4, 0.7])


def test_invalid_combinations_fail_with_the_allowed_values():
    with pytest.raises(ValidationError, match="combine mode 'gate' needs `gate`"):
        CombineConfig(mode="gate")
    with pytest.raises(ValidationError, match="combine.gate is used by mode 'gate' only"):
        CombineConfig(mode="min", gate="tests")
    with pytest.raises(ValidationError, match="combine.gate 'math_verify' is not a listed reward function; listed: judge"):
        RewardConfig(functions=[{"name": "judge"}], verifiable="judge", combine={"mode": "gate", "gate": "math_verify"})
    with pytest.raises(ValidationError, match="'weighted', 'min', 'max', 'all', 'any' or 'gate'"):
        CombineConfig(mode="product")


def slow(completion: str, prompt: Prompt) -> float:
    import time

    time.sleep(0.4)
    if completion == "boom":
        raise RuntimeError("exploded")
    return float(len(completion))


def test_workers_score_in_parallel_in_order_and_count_failures(monkeypatch):
    import time

    monkeypatch.setitem(REWARDS, "slow", slow)
    completions = ["a", "bb", "boom", "dddd", "eeeee", "ffffff"]
    prompts = [Prompt(id=f"s/{i}", messages=(), answer="") for i in range(6)]
    cfg = RewardConfig(functions=[{"name": "slow", "workers": 6}], verifiable="slow")
    start = time.monotonic()
    result = compute_rewards(completions, prompts, cfg)
    assert time.monotonic() - start < 1.5  # sequentially 2.4 s
    assert result.total == [1.0, 2.0, 0.0, 4.0, 5.0, 6.0] and result.errors == 1
    with pytest.raises(ValidationError, match="workers"):
        RewardConfig(functions=[{"name": "slow", "workers": 0}], verifiable="slow")
