"""rl/filters.py by hand."""

import pytest
import torch

from envs.base import Prompt
from rl.filters import (
    NPRConfig,
    informative_groups,
    retired_prompts,
    take_active_prompts,
    update_pass_rates,
    zero_variance,
)


def test_zero_variance_drops_uniform_groups():
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    groups = torch.tensor([7, 7, 2, 2, 5, 5, 9, 9])  # arbitrary, non-contiguous ids
    keep, metrics = zero_variance(rewards, groups)
    assert keep.tolist() == [False, False, False, False, True, True, False, False]
    assert metrics["filtered_groups"] == 3.0


def test_zero_variance_keeps_everything_informative():
    keep, metrics = zero_variance(torch.tensor([0.0, 1.0, 0.2, 0.1]), torch.tensor([0, 0, 1, 1]))
    assert keep.all() and metrics["filtered_groups"] == 0.0


def test_informative_groups():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])  # groups of 2: uniform, differing, uniform
    assert informative_groups(rewards, 2).tolist() == [False, True, False]


def _prompt(i: int) -> Prompt:
    return Prompt(id=f"p{i}", messages=({"role": "user", "content": str(i)},), answer=str(i))


def test_npr_retires_prompts_at_the_threshold_and_skips_them():
    rates = update_pass_rates({}, ["p0", "p1", "p2"], torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0]]))
    assert rates == {"p0": 1.0, "p1": 0.75, "p2": 0.25}
    assert retired_prompts(rates, NPRConfig()) == {"p0"}  # 0.9 by default
    assert retired_prompts(rates, NPRConfig(threshold=0.75)) == {"p0", "p1"}  # "reached": ≥
    rates = update_pass_rates(rates, ["p2"], torch.tensor([[1, 1, 1, 1]]))  # the latest group counts
    assert retired_prompts(rates, NPRConfig()) == {"p0", "p2"}

    stream = [_prompt(i % 5) for i in range(100)]  # an epoch of 5 prompts, repeated
    fetch = lambda position, count: stream[position : position + count]  # noqa: E731
    prompts, position, skipped = take_active_prompts(fetch, 0, 4, {"p0", "p2"}, epoch_size=5)
    assert [p.id for p in prompts] == ["p1", "p3", "p4", "p1"] and position == 7 and skipped == 3
    with pytest.raises(RuntimeError, match="fewer than 4 remain"):
        take_active_prompts(fetch, 0, 4, {"p0", "p1", "p2", "p3"}, epoch_size=5)
