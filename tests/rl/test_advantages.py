"""rl/advantages.py against values derived by hand and against a plain loop."""

import math

import pytest
import torch

from rl.advantages import GRPOConfig, grpo


def test_grpo_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    mask = torch.ones(8, 3)
    mask[0, 2] = 0
    adv = grpo(rewards, groups, mask, GRPOConfig())
    # group 0: mean 0.5, unbiased std sqrt(4·0.25/3) = 1/sqrt(3) -> ±0.5·sqrt(3)
    expected = 0.5 * math.sqrt(3)
    assert adv[:4, 0].tolist() == pytest.approx([expected, -expected, -expected, expected], rel=1e-5)
    assert adv[4:].abs().max().item() == 0.0  # identical rewards: no signal
    assert adv[0, 2].item() == 0.0  # off the mask
    assert torch.all(adv[1] == adv[1, 0])  # one advantage per completion, on every token

    adv = grpo(rewards, groups, mask, GRPOConfig(scale_by_std=False))
    assert adv[:4, 0].tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5])


def test_grpo_matches_a_loop_over_groups():
    torch.manual_seed(0)
    rewards = torch.rand(24)
    groups = torch.tensor([3, 1, 2] * 8)  # interleaved, non-contiguous group ids
    adv = grpo(rewards, groups, torch.ones(24, 1), GRPOConfig(eps=1e-6))[:, 0]
    for g in (1, 2, 3):
        r = rewards[groups == g]
        expected = (r - r.mean()) / (r.std() + 1e-6)
        assert torch.allclose(adv[groups == g], expected, atol=1e-5)
