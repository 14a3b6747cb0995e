"""rewards/__init__.py: the config and compute_rewards (weighted sum, errors, metrics)."""

import logging

import pytest
from pydantic import ValidationError

from envs.base import Prompt
from rewards import REWARDS, RewardConfig, RewardFunctionConfig, compute_rewards


def prompt(answer: str, i: int = 0) -> Prompt:
    return Prompt(id=f"test/{i}", messages=({"role": "user", "content": "q"},), answer=answer)


def boom(completion: str, prompt: Prompt) -> float:
    if "boom" in completion:
        raise RuntimeError("exploded")
    return 0.5


def nan(completion: str, prompt: Prompt) -> float:
    return float("nan")


@pytest.fixture
def extra_rewards(monkeypatch):
    monkeypatch.setitem(REWARDS, "boom", boom)
    monkeypatch.setitem(REWARDS, "nan", nan)


def test_weighted_sum_by_hand():
    cfg = RewardConfig(functions=[{"name": "math_verify", "weight": 1.0}, {"name": "format", "weight": 0.2}])
    completions = ["\\boxed{4}", "it is 4", "\\boxed{5}", "nothing"]
    result = compute_rewards(completions, [prompt("4", i) for i in range(4)], cfg)
    assert result.per_function == {"math_verify": [1.0, 1.0, 0.0, 0.0], "format": [1.0, 0.0, 1.0, 0.0]}
    assert result.total == pytest.approx([1.2, 1.0, 0.2, 0.0])
    assert result.errors == 0
    assert result.metrics == pytest.approx({"reward/math_verify": 0.5, "reward/format": 0.5, "reward/errors": 0.0})


def test_raising_reward_scores_zero_and_is_counted(extra_rewards, caplog):
    cfg = RewardConfig(functions=[{"name": "math_verify"}, {"name": "boom", "weight": 2.0}])
    completions = ["\\boxed{4} boom", "\\boxed{4}", "\\boxed{3} boom"]
    with caplog.at_level(logging.WARNING, logger="rewards"):
        result = compute_rewards(completions, [prompt("4", i) for i in range(3)], cfg)
    assert result.per_function["boom"] == [0.0, 0.5, 0.0]
    assert result.per_function["math_verify"] == [1.0, 1.0, 0.0]  # still scored
    assert result.total == pytest.approx([1.0, 2.0, 0.0])
    assert result.errors == 2
    assert result.metrics["reward/errors"] == 2.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per function, with the count and the first exception
    assert "boom" in warnings[0].getMessage() and "2 of 3" in warnings[0].getMessage()
    assert "exploded" in warnings[0].getMessage()


def test_non_finite_value_is_an_error(extra_rewards):
    result = compute_rewards(["x"], [prompt("4")], RewardConfig(functions=[{"name": "nan"}], verifiable="nan"))
    assert result.per_function == {"nan": [0.0]} and result.errors == 1


def test_unparseable_gold_is_an_error_not_a_crash():
    result = compute_rewards(["\\boxed{4}", "\\boxed{4}"], [prompt("}{"), prompt("4")], RewardConfig())
    assert result.per_function["math_verify"] == [0.0, 1.0]
    assert result.errors == 1


def test_verifiable_is_computed_even_when_not_listed():
    cfg = RewardConfig(functions=[{"name": "format"}], verifiable="math_verify")
    result = compute_rewards(["\\boxed{4}", "4"], [prompt("4"), prompt("4")], cfg)
    assert result.per_function["math_verify"] == [1.0, 1.0]
    assert result.total == [1.0, 0.0]  # weight 0: logged, not trained on


def test_args_reach_the_function():
    cfg = RewardConfig(functions=[{"name": "format", "args": {"pattern": r"answer: \d+"}}], verifiable="format")
    result = compute_rewards(["answer: 4", "\\boxed{4}"], [prompt("4"), prompt("4")], cfg)
    assert result.per_function["format"] == [1.0, 0.0]


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="pair one to one"):
        compute_rewards(["a", "b"], [prompt("1")], RewardConfig())


def test_default_config_is_math_verify():
    cfg = RewardConfig()
    assert [f.name for f in cfg.functions] == ["math_verify"] and cfg.verifiable == "math_verify"


def test_unknown_reward_lists_the_allowed_ones():
    with pytest.raises(ValidationError, match="unknown reward function 'acc'; allowed: math_verify, format"):
        RewardFunctionConfig(name="acc")


def test_unknown_arg_names_the_allowed_ones():
    message = "no argument 'timeout'; allowed arguments: timeout_seconds, float_rounding"
    with pytest.raises(ValidationError, match=message):
        RewardFunctionConfig(name="math_verify", args={"timeout": 3})


def test_arg_of_wrong_type_fails_and_good_ones_are_coerced():
    with pytest.raises(ValidationError, match="timeout_seconds"):
        RewardFunctionConfig(name="math_verify", args={"timeout_seconds": "soon"})
    assert RewardFunctionConfig(name="math_verify", args={"timeout_seconds": "7"}).args == {"timeout_seconds": 7}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"functions": []}, "at least 1 item"),
        ({"functions": [{"name": "format"}, {"name": "format", "weight": 2}]}, "more than once: format"),
        ({"verifiable": "accuracy"}, "unknown verifiable reward 'accuracy'; allowed: math_verify, format"),
        ({"functions": [{"name": "format", "extra": 1}]}, "Extra inputs are not permitted"),
    ],
)
def test_reward_config_errors(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        RewardConfig(**kwargs)


def batched(completion: str, prompt: Prompt, *, scale: float = 1.0) -> float:
    raise AssertionError("compute_rewards calls batched.batch, never the per-completion function")


def _batched_batch(completions, prompts, *, workers=1, scale=1.0):
    _batched_batch.calls.append((len(completions), workers))
    out = []
    for c in completions:
        out.append(RuntimeError("no") if c == "err" else float("inf") if c == "inf" else "x" if c == "str" else scale * len(c))
    return out


batched.batch = _batched_batch


def test_a_batch_function_is_called_once_with_per_completion_errors(monkeypatch):
    monkeypatch.setitem(REWARDS, "batched", batched)
    _batched_batch.calls = []
    cfg = RewardConfig(functions=[{"name": "batched", "workers": 3, "args": {"scale": 0.5}}], verifiable="batched")
    result = compute_rewards(["ab", "err", "inf", "str", "abcd"], [prompt("4", i) for i in range(5)], cfg)
    assert _batched_batch.calls == [(5, 3)]
    assert result.per_function["batched"] == [1.0, 0.0, 0.0, 0.0, 2.0]
    assert result.errors == 3
    # a batch function that breaks its contract fails every completion, not the trainer
    monkeypatch.setattr(batched, "batch", lambda completions, prompts, **_: [1.0])
    result = compute_rewards(["a", "b"], [prompt("4", i) for i in range(2)], cfg)
    assert result.errors == 2 and result.per_function["batched"] == [0.0, 0.0]


def test_batches_scored_apart_concatenate_to_the_whole_batch(extra_rewards):
    """concat_rewards (dynamic sampling's rounds, a batch scored on several ranks): the same values,
    means and error count as scoring everything at once; outcome counts add up."""
    from collections import Counter

    from rewards import concat_rewards

    def counted(completion: str, prompt: Prompt) -> float:
        counted.stats["long" if len(completion) > 3 else "short"] += 1
        return float(len(completion))

    counted.stats = Counter()
    REWARDS["counted"] = counted
    try:
        cfg = RewardConfig(functions=[{"name": "math_verify"}, {"name": "boom", "weight": 0.5}, {"name": "counted", "weight": 0.0}])
        completions = ["\\boxed{4}", "boom", "\\boxed{5}", "x", "boom \\boxed{4}"]
        prompts = [prompt("4", i) for i in range(5)]
        whole = compute_rewards(completions, prompts, cfg)
        parts = concat_rewards([compute_rewards(completions[a:b], prompts[a:b], cfg) for a, b in ((0, 2), (2, 2), (2, 5))])
    finally:
        del REWARDS["counted"]
    assert parts.total == whole.total and parts.per_function == whole.per_function
    assert parts.errors == whole.errors == 2
    assert parts.metrics == pytest.approx(whole.metrics)
    assert whole.metrics["reward/counted/long"] == 4 and whole.metrics["reward/counted/short"] == 1
