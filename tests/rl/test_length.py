"""rl/length.py: DAPO's overlong penalty by hand, and the thinking-budget interruption on a fake engine."""

import pytest
import torch

from rl.length import LengthConfig, generate_with_thinking_budget, overlong_penalty, shape_rewards
from rl.rollout.base import Completion, SamplingParams


def test_overlong_penalty_by_hand():
    # L_max = 20, L_cache = 4: no penalty up to 16, then linear to −1 at 20
    lengths = torch.tensor([10, 16, 17, 18, 20])
    assert overlong_penalty(lengths, 20, 4).tolist() == pytest.approx([0.0, 0.0, -0.25, -0.5, -1.0])
    assert overlong_penalty(lengths, 20, 4, factor=0.5).tolist() == pytest.approx([0.0, 0.0, -0.125, -0.25, -0.5])
    assert overlong_penalty(torch.tensor([30]), 20, 4).item() == -1.0  # beyond L_max: −1


def _completion(ids, finish, version=0):
    return Completion(prompt_ids=[9], token_ids=ids, logprobs=[-0.5] * len(ids), finish_reason=finish,
                      text="".join(map(str, ids)), policy_versions=[version] * len(ids))


def test_shape_rewards_adds_the_penalty():
    groups = [[_completion([1] * 3, "stop"), _completion([1] * 8, "length")]]
    assert shape_rewards([1.0, 1.0], groups, LengthConfig(), 8) == [1.0, 1.0]
    assert shape_rewards([1.0, 1.0], groups, LengthConfig(overlong_buffer=4), 8) == pytest.approx([1.0, 0.0])


class FakeEngine:
    """First call: completions of the prompt's length budget, 'length' for prompt 0; second: answers."""

    def __init__(self):
        self.calls = []

    def generate(self, prompt_ids, params):
        self.calls.append((prompt_ids, params))
        if len(self.calls) == 1:
            return [[_completion([1] * params.max_new_tokens, "length"), _completion([2], "stop")] for _ in prompt_ids]
        return [[_completion([7, 8], "stop", version=1)] for _ in prompt_ids]


def test_thinking_budget_interrupts_and_continues():
    engine = FakeEngine()
    params = SamplingParams(n=2, max_new_tokens=100)
    groups, forced = generate_with_thinking_budget(engine, [[9]], params, budget=3, interruption_ids=[5, 5],
                                                   answer_budget=4, decode=lambda ids: "".join(map(str, ids)))
    first, second = engine.calls
    assert first[1].max_new_tokens == 3 and first[1].n == 2
    assert second[0] == [[9, 1, 1, 1, 5, 5]] and second[1].n == 1 and second[1].max_new_tokens == 4
    cut, done = groups[0]
    assert cut.token_ids == [1, 1, 1, 5, 5, 7, 8] and cut.finish_reason == "stop" and cut.text == "1115578"
    assert cut.logprobs == [-0.5, -0.5, -0.5, 0.0, 0.0, -0.5, -0.5]
    assert cut.policy_versions == [0, 0, 0, 0, 0, 1, 1]
    assert forced[0][0] == [False, False, False, True, True, False, False]
    assert done.token_ids == [2] and forced[0][1] == [False]
