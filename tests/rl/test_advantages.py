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
    masked_whiten,
    reinforce_pp,
    reinforce_pp_returns,
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


# --------------------------------------------------------------------------------------------
# REINFORCE++ against verl 0.9.1 (reproduced from verl/trainer/ppo/core_algos.py)
# --------------------------------------------------------------------------------------------


def _verl_masked_whiten(values, mask, eps=1e-8):
    """verl.utils.torch_functional.masked_whiten (shift_mean=True): unbiased masked variance."""
    mean = (values * mask).sum() / mask.sum()
    centered = values - mean
    var = (centered**2 * mask).sum() / mask.sum() * (mask.sum() / (mask.sum() - 1))
    return centered * torch.rsqrt(var + eps)


def _verl_reinforce_pp(token_level_rewards, response_mask, gamma):
    """compute_reinforce_plus_plus_outcome_advantage."""
    returns = torch.zeros_like(token_level_rewards)
    running_return = 0
    for t in reversed(range(token_level_rewards.shape[1])):
        new_running_return = token_level_rewards[:, t] + gamma * running_return
        returns[:, t] = new_running_return * response_mask[:, t]
        running_return = new_running_return * response_mask[:, t] + running_return * (1 - response_mask[:, t])
    return _verl_masked_whiten(returns, response_mask) * response_mask


def _verl_reinforce_pp_baseline(token_level_rewards, response_mask, index):
    """compute_reinforce_plus_plus_baseline_outcome_advantage: score − group mean (0 for a group of
    one), broadcast to every token, whitened. No γ."""
    scores = token_level_rewards.sum(dim=-1)
    id2score = {}
    for i in range(len(scores)):
        id2score.setdefault(int(index[i]), []).append(scores[i])
    id2mean = {k: torch.tensor(0.0) if len(v) == 1 else torch.mean(torch.stack(v)) for k, v in id2score.items()}
    scores = torch.stack([scores[i] - id2mean[int(index[i])] for i in range(len(scores))])
    scores = scores.unsqueeze(-1).tile([1, token_level_rewards.shape[-1]]) * response_mask
    return _verl_masked_whiten(scores, response_mask) * response_mask


RAGGED = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 1, 1], [1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float32)


def test_reinforce_pp_equal_rewards_get_zero_advantage_for_any_gamma():
    # one group of three completions that all scored 1, lengths 3, 2 and 1. Before the fix, γ = .5
    # subtracted the undiscounted mean (1) from the returns .25, .5, 1 / .5, 1 / 1 and the whitened
    # advantages were nonzero along the tokens; now the centred score (0) is what gets discounted.
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.float32)
    rewards, groups = torch.ones(3), torch.zeros(3, dtype=torch.long)
    for gamma in (0.0, 0.25, 0.5, 0.9, 1.0):
        cfg = ReinforcePPConfig(gamma=gamma)
        assert reinforce_pp_returns(rewards, groups, mask, cfg).abs().max().item() == 0.0
        assert reinforce_pp(rewards, groups, mask, cfg).abs().max().item() == 0.0
    # the example: two completions scoring 1, lengths 3 and 1, γ = .5. The old code took
    # returns .25, .5, 1 | 1 minus the undiscounted mean 1 and whitened them to −1.17, −.50, +.83 | +.83
    two = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.float32)
    assert reinforce_pp(torch.ones(2), torch.zeros(2, dtype=torch.long), two, ReinforcePPConfig(gamma=0.5)).abs().max() == 0
    # beside an informative group, the equal group's returns are still 0: after the batch whitening
    # every one of its tokens has the same advantage, −mean/std of the batch, for every γ
    mask2 = torch.cat([mask, torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.float32)])
    rewards2, groups2 = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0]), torch.tensor([0, 0, 0, 1, 1])
    for gamma in (0.5, 1.0):
        cfg = ReinforcePPConfig(gamma=gamma)
        assert reinforce_pp_returns(rewards2, groups2, mask2, cfg)[:3].abs().max().item() == 0.0
        adv = reinforce_pp(rewards2, groups2, mask2, cfg)[:3]
        assert torch.allclose(adv[mask > 0], adv[0, 0].expand(6))


def test_reinforce_pp_group_mean_with_gamma_by_hand():
    # group (1, 0), lengths 2 and 1, γ = .5. Mean 0.5, so the centred scores .5 and −.5 sit on the
    # last tokens: returns .25, .5 | −.5. Whitened: mean 1/12, deviations 1/6, 5/12, −7/12, unbiased
    # var (4 + 25 + 49)/144/2 = 39/144 → advantages 2/√39, 5/√39, −7/√39.
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    cfg = ReinforcePPConfig(gamma=0.5)
    returns = reinforce_pp_returns(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), mask, cfg)
    assert returns.flatten().tolist() == pytest.approx([0.25, 0.5, -0.5, 0.0])
    adv = reinforce_pp(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), mask, cfg)
    s = math.sqrt(39)
    assert adv.flatten().tolist() == pytest.approx([2 / s, 5 / s, -7 / s, 0.0], rel=1e-6)


def test_reinforce_pp_group_of_one_uses_a_zero_baseline_as_verl():
    # the recipe schema rejects group_size 1 with baseline group_mean (tests/rl/test_config.py); the
    # function itself takes a lone completion's baseline as 0 (verl's id2mean = 0), so it is scored
    # as with baseline none instead of being its own mean (which made every advantage 0)
    rewards = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 1.0])
    lone = torch.arange(6)
    adv = reinforce_pp(rewards, lone, RAGGED, ReinforcePPConfig())
    assert adv.abs().max().item() > 0.5
    assert torch.allclose(adv, reinforce_pp(rewards, lone, RAGGED, ReinforcePPConfig(baseline="none")), atol=1e-6)
    mixed = torch.tensor([0, 0, 1, 2, 2, 3])  # two lone completions among groups
    ours = reinforce_pp(rewards, mixed, RAGGED, ReinforcePPConfig())
    verl = _verl_reinforce_pp_baseline(token_rewards(rewards, RAGGED), RAGGED, mixed)
    assert torch.allclose(ours, verl, atol=5e-7, rtol=0)


def test_reinforce_pp_matches_verl_on_identical_tensors():
    torch.manual_seed(3)
    rewards = (torch.rand(6) > 0.5).float()
    groups = torch.tensor([0, 1, 0, 1, 0, 1])
    token_r = token_rewards(rewards, RAGGED)
    kl = torch.rand(6, 4) * 0.3 * RAGGED  # a per-token KL, as the KL in the reward gives
    # outcome rewards: both variants agree with verl (the baseline one at γ = 1, the only γ verl's has)
    assert torch.allclose(reinforce_pp(rewards, groups, RAGGED, ReinforcePPConfig()),
                          _verl_reinforce_pp_baseline(token_r, RAGGED, groups), atol=5e-7, rtol=0)
    for gamma in (1.0, 0.7):
        assert torch.allclose(reinforce_pp(rewards, groups, RAGGED, ReinforcePPConfig(baseline="none", gamma=gamma)),
                              _verl_reinforce_pp(token_r, RAGGED, gamma), atol=5e-7, rtol=0)
    # the KL in the reward: verl's reinforce_plus_plus keeps each token's KL reward-to-go, as ours
    with_kl = token_r - 0.1 * kl
    for gamma in (1.0, 0.7):
        assert torch.allclose(reinforce_pp(with_kl, groups, RAGGED, ReinforcePPConfig(baseline="none", gamma=gamma)),
                              _verl_reinforce_pp(with_kl, RAGGED, gamma), atol=5e-7, rtol=0)


def test_reinforce_pp_baseline_with_kl_in_the_reward_is_the_reward_to_go():
    # the one place we differ from verl: its reinforce_plus_plus_baseline broadcasts the whole score
    # Σ_s r_s − b to every token, so token t's advantage also carries the KL of the tokens before it.
    # Ours is the paper's G_t (and OpenRLHF's reinforce_baseline): the KL from t on. Before the
    # whitening the two differ by exactly β·Σ_{s<t} KL_s.
    torch.manual_seed(4)
    rewards, groups = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0]), torch.tensor([0, 0, 0, 1, 1, 1])
    kl = torch.rand(6, 4) * RAGGED
    beta = 0.2
    token_r = token_rewards(rewards, RAGGED) - beta * kl
    ours = reinforce_pp_returns(token_r, groups, RAGGED, ReinforcePPConfig())
    scores = token_r.sum(dim=1)
    b = torch.tensor([scores[groups == g].mean() for g in groups])
    verl_returns = (scores - b).unsqueeze(1) * RAGGED
    kl_before = (torch.cumsum(kl, dim=1) - kl) * RAGGED
    assert torch.allclose(ours - verl_returns, beta * kl_before, atol=1e-6)
    # by hand, row 0 (tokens 0..3, outcome 1): G_t = 1 − b − β·Σ_{s≥t} KL_s
    b0 = scores[[0, 1, 2]].mean()
    expected = [1 - b0 - beta * kl[0, t:].sum() for t in range(4)]
    assert ours[0].tolist() == pytest.approx([e.item() for e in expected], abs=1e-6)
    # and the advantages are those returns whitened, not verl's
    assert torch.allclose(reinforce_pp(token_r, groups, RAGGED, ReinforcePPConfig()), masked_whiten(ours, RAGGED), atol=1e-6)
    assert not torch.allclose(reinforce_pp(token_r, groups, RAGGED, ReinforcePPConfig()),
                              _verl_reinforce_pp_baseline(token_r, RAGGED, groups), atol=1e-3)
