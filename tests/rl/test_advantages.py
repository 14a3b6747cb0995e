"""rl/advantages.py against values derived by hand and against a plain loop."""

import math

import pytest
import torch

from rl.advantages import (
    GAEConfig,
    GRPOConfig,
    ReinforcePPConfig,
    RLOOConfig,
    gae,
    grpo,
    reinforce_pp,
    rloo,
    token_rewards,
)


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


REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_grpo_batch_std_by_hand():
    # group-centred: g0 (mean .5) → .5, −.5, −.5, .5; g1 (mean .75) → .25, .25, .25, −.75.
    # Over the batch: mean 0, Σx² = 4·.25 + 3·.0625 + .5625 = 1.75, unbiased var 1.75/7 = .25, std .5
    adv = grpo(REWARDS, GROUPS, torch.ones(8, 2), GRPOConfig(std="batch", eps=1e-8))
    assert adv[:, 0].tolist() == pytest.approx([1, -1, -1, 1, 0.5, 0.5, 0.5, -1.5], rel=1e-6)
    assert torch.equal(adv[:, 0], adv[:, 1])


def test_rloo_by_hand():
    # A_i = r_i − mean of the OTHER completions of the prompt
    adv = rloo(REWARDS, GROUPS, torch.ones(8, 1), RLOOConfig())[:, 0]
    assert adv.tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3, -1.0])
    # a prompt with a single completion has no baseline: 0
    assert rloo(torch.tensor([5.0]), torch.tensor([0]), torch.ones(1, 1), RLOOConfig()).item() == 0.0


def test_rloo_matches_a_loop():
    torch.manual_seed(1)
    r, g = torch.rand(12), torch.tensor([0, 1, 2] * 4)
    adv = rloo(r, g, torch.ones(12, 1), RLOOConfig())[:, 0]
    for i in range(12):
        others = [r[j] for j in range(12) if g[j] == g[i] and j != i]
        assert adv[i].item() == pytest.approx((r[i] - sum(others) / len(others)).item(), abs=1e-6)


def test_reinforce_pp_by_hand():
    # rewards 1, 0 (one group of two); lengths 2 and 1; γ = 1: every token's return is its outcome.
    rewards, groups = torch.tensor([1.0, 0.0]), torch.tensor([0, 0])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # baseline none: tokens 1, 1, 0 → mean 2/3, unbiased var ((1/3)²·2 + (2/3)²)/2 = 1/3
    adv = reinforce_pp(rewards, groups, mask, ReinforcePPConfig(baseline="none"))
    s = math.sqrt(1 / 3)
    assert adv.flatten().tolist() == pytest.approx([(1 / 3) / s, (1 / 3) / s, (-2 / 3) / s, 0.0], rel=1e-5)
    # group mean baseline (0.5): tokens .5, .5, −.5: the same after whitening
    adv = reinforce_pp(rewards, groups, mask, ReinforcePPConfig())
    assert adv.flatten().tolist() == pytest.approx([(1 / 3) / s, (1 / 3) / s, (-2 / 3) / s, 0.0], rel=1e-5)
    # γ = 0.5 with token rewards (0, 1): returns 0.5, 1 and 0 → mean .5, var (0 + .25 + .25)/2 = .25
    adv = reinforce_pp(rewards, groups, mask, ReinforcePPConfig(baseline="none", gamma=0.5))
    assert adv.flatten().tolist() == pytest.approx([0.0, 1.0, -1.0, 0.0], abs=1e-5)


def test_token_rewards_put_the_outcome_on_the_last_sampled_token():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])  # row 1: a forced token in the middle
    r = token_rewards(torch.tensor([2.0, 3.0, 4.0]), mask)
    assert r.tolist() == [[0.0, 2.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0]]


def test_group_estimators_sum_token_rewards():
    # with the KL in the reward, a completion's score is its outcome minus β·Σ KL_t
    token_r = torch.tensor([[-0.1, 0.9], [-0.2, -0.2]])
    adv = grpo(token_r, torch.tensor([0, 0]), torch.ones(2, 2), GRPOConfig(scale_by_std=False))
    assert adv[:, 0].tolist() == pytest.approx([0.6, -0.6])


def test_gae_by_hand():
    # one completion of 3 tokens, outcome 1 on the last; V = .5, .6, .7; γ = 1, λ = .95
    # δ2 = 1 − .7 = .3            Â2 = .3
    # δ1 = 0 + .7 − .6 = .1       Â1 = .1 + .95·.3 = .385
    # δ0 = 0 + .6 − .5 = .1       Â0 = .1 + .95·.385 = .46575
    values = torch.tensor([[0.5, 0.6, 0.7]])
    adv, returns = gae(torch.tensor([1.0]), values, torch.ones(1, 3), GAEConfig(whiten=False))
    assert adv[0].tolist() == pytest.approx([0.46575, 0.385, 0.3], rel=1e-5)
    assert returns[0].tolist() == pytest.approx([0.96575, 0.985, 1.0], rel=1e-5)


def _gae_loop(rewards, values, mask, gamma, lam):
    """The recursion written one scalar at a time, over each row's sampled tokens only."""
    B, T = mask.shape
    adv = [[0.0] * T for _ in range(B)]
    for b in range(B):
        steps = [t for t in range(T) if mask[b, t] > 0]
        next_v, last = 0.0, 0.0
        for t in reversed(steps):
            delta = rewards[b, t].item() + gamma * next_v - values[b, t].item()
            last = delta + gamma * lam * last
            adv[b][t] = last
            next_v = values[b, t].item()
    return torch.tensor(adv)


def test_gae_matches_a_hand_rolled_recursion_with_ragged_and_holed_masks():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 1, 1, 0], [0, 0, 0, 0, 0]], dtype=torch.float32)
    rewards = torch.randn(4, 5) * mask
    values = torch.randn(4, 5)
    for gamma, lam in ((1.0, 0.95), (0.9, 0.5), (1.0, 1.0)):
        adv, returns = gae(rewards, values, mask, GAEConfig(gamma=gamma, lam=lam, whiten=False))
        expected = _gae_loop(rewards, values, mask, gamma, lam)
        assert torch.allclose(adv, expected * mask, atol=1e-5)
        assert torch.allclose(returns, (expected + values) * mask, atol=1e-5)
    adv, _ = gae(rewards, values, mask, GAEConfig())  # whitened over the batch's tokens
    on = mask > 0
    assert adv[on].mean().item() == pytest.approx(0.0, abs=1e-6) and adv[on].std().item() == pytest.approx(1.0, rel=1e-4)
