"""rewards/format.py: format_reward's default shape and a custom pattern."""

import pytest

from envs.base import Prompt
from rewards import RewardFunctionConfig
from rewards.format import format_reward

P = Prompt(id="test/0", messages=({"role": "user", "content": "q"},), answer="42")


@pytest.mark.parametrize(
    "completion",
    [
        "\\boxed{42}",
        "6 times 7 is 42, so\n\nthe answer is \\boxed{42}",
        "\\boxed{42}  \n",
        "\\boxed{\\frac{1}{2}}",
        "\\boxed{\\frac{\\sqrt{2}}{2}}",
        "\\boxed{}",
    ],
)
def test_one_boxed_answer_at_the_end(completion):
    assert format_reward(completion, P) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "42",
        "the answer is \\boxed{42}.",
        "\\boxed{41} or rather \\boxed{42}",
        "\\boxed{42}\\boxed{42}",
        "\\boxed{42",
        "\\boxed{\\frac{1}{2}",
        "\\boxed{42} is my answer",
    ],
)
def test_other_shapes_score_zero(completion):
    assert format_reward(completion, P) == 0.0


def test_custom_pattern_must_match_the_whole_completion():
    pattern = r"<think>.*</think>\s*answer: -?\d+"
    assert format_reward("<think>6*7\n=42</think>\nanswer: 42", P, pattern=pattern) == 1.0
    assert format_reward("<think>6*7</think> answer: 42 (I think)", P, pattern=pattern) == 0.0
    assert format_reward("answer: 42", P, pattern=pattern) == 0.0


def test_invalid_pattern_fails_when_the_config_loads():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        RewardFunctionConfig(name="format", args={"pattern": "(unclosed"})
