"""Advantage estimators, as pure functions over tensors.

One signature:

    estimator(rewards, group_ids, mask, cfg) -> advantages

`rewards` is either one scalar per completion [B] (the outcome) or token-level rewards [B, T] (the
outcome on the last token plus, with the KL in the reward, −β·KL_t on every token; see
`token_rewards`); `group_ids` [B] the prompt each completion answers (the completions of one prompt
form its group); `mask` [B, T] the completion tokens. The result is the per-token advantage
[B, T] (zero off the mask). Outcome estimators (GRPO, RLOO) score a completion by the sum of its
token rewards.

GAE (PPO with a learned critic) needs the critic's values too: `gae(rewards, values, mask, cfg)`
returns advantages and the critic's return targets. It is the one estimator outside ADVANTAGES.
"""

from __future__ import annotations

import torch

from rl.config.advantages import GAEConfig, GRPOConfig, RLOOConfig, ReinforcePPConfig


def token_rewards(outcome: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T] rewards with each completion's outcome on its last masked token (rows without tokens:
    none)."""
    out = torch.zeros_like(mask, dtype=torch.float32)
    on = mask > 0
    last = mask.shape[1] - 1 - on.flip(dims=[1]).int().argmax(dim=1)
    rows = torch.nonzero(on.any(dim=1)).squeeze(1)
    out[rows, last[rows]] = outcome[rows].float()
    return out


def _scores(rewards: torch.Tensor) -> torch.Tensor:
    """One score per completion: the outcome, or the sum of its token rewards."""
    return rewards.double() if rewards.dim() == 1 else rewards.double().sum(dim=1)


def group_stats(values: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-element mean, unbiased std and size of the group each element belongs to."""
    _, index = torch.unique(group_ids, return_inverse=True)
    num_groups = int(index.max().item()) + 1 if index.numel() else 0
    values = values.double()
    count = torch.zeros(num_groups, dtype=values.dtype).index_add_(0, index, torch.ones_like(values))
    total = torch.zeros(num_groups, dtype=values.dtype).index_add_(0, index, values)
    mean = total / count
    sq_dev = torch.zeros(num_groups, dtype=values.dtype).index_add_(0, index, (values - mean[index]) ** 2)
    std = torch.sqrt(sq_dev / (count - 1).clamp(min=1))
    return mean[index], std[index], count[index]


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / sqrt(var + ε) over the masked tokens, var unbiased (verl's and OpenRLHF's
    masked_whiten); zero off the mask."""
    values, mask = values.double(), mask.double()
    n = mask.sum()
    mean = (values * mask).sum() / n.clamp(min=1)
    var = (((values - mean) ** 2) * mask).sum() / (n - 1).clamp(min=1)
    return ((values - mean) * torch.rsqrt(var + eps) * mask).float()


# --------------------------------------------------------------------------------------------
# GRPO (group or batch std), RLOO, REINFORCE++
# --------------------------------------------------------------------------------------------


def grpo(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor, cfg: GRPOConfig) -> torch.Tensor:
    """Â_i = (r_i − mean(r_group)) / (std + ε), the same for every token of completion i.

    A group whose rewards are all equal gets Â = 0 (0 / (0 + ε))."""
    r = _scores(rewards)
    mean, std, _ = group_stats(r, group_ids)
    adv = r - mean
    if cfg.scale_by_std:
        if cfg.std == "batch":
            std = adv.std() if adv.numel() > 1 else torch.zeros_like(adv)
        adv = adv / (std + cfg.eps)
    return adv.to(mask.dtype).unsqueeze(1) * mask


def rloo(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor, cfg: RLOOConfig) -> torch.Tensor:
    """Â_i = r_i − (Σ_{j≠i} r_j) / (G − 1) = G/(G − 1) · (r_i − mean_g). A group of one has no
    baseline and gets 0 (verl keeps its raw reward instead)."""
    r = _scores(rewards)
    mean, _, count = group_stats(r, group_ids)
    adv = torch.where(count > 1, (r - mean) * count / (count - 1).clamp(min=1), torch.zeros_like(r))
    return adv.to(mask.dtype).unsqueeze(1) * mask


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = Σ_{s≥t, s on the mask} γ^{(number of masked-in steps from t to s)} r_s, zero off the
    mask: masked tokens (padding, forced interruption text) are skipped and carry the running
    return through, as verl 0.9.1's compute_reinforce_plus_plus_outcome_advantage does."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        running = m * (rewards[:, t] + gamma * running) + (1 - m) * running
        returns[:, t] = running * m
    return returns


def reinforce_pp_returns(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor, cfg: ReinforcePPConfig):
    """REINFORCE++'s returns before the batch whitening, [B, T].

    baseline none: G_t = Σ_{s≥t} γ^{s−t} r_s.
    baseline group_mean: the completion's score minus its group's mean score, b_g = mean_g(Σ_t r_t),
    is the reward that gets discounted: b_g is subtracted from the LAST token's reward and then the
    returns are taken, G_t = Σ_{s≥t} γ^{s−t} r_s − γ^{T−t}·b_g. A group whose scores are all equal
    (and no KL in the reward) gets G = 0 for every γ; at γ = 1, G_t = Σ_{s≥t} r_s − b_g. With the KL
    in the reward each token keeps its KL reward-to-go (the paper's G_t; OpenRLHF's
    reinforce_baseline), where verl 0.9.1's reinforce_plus_plus_baseline broadcasts the whole
    score Σ_t r_t − b_g to every token (same expectation: the KL of tokens before t does not depend
    on token t; more variance). For γ < 1 the discounted baseline γ^{T−t}·b_g depends on the
    completion's length T, as the discounted outcome itself does; the authors keep γ = 1 with a group
    baseline. A group of one has b = 0, as in verl (the recipe schema rejects group_size 1 with this
    baseline; a lone completion can still reach this function)."""
    r = rewards.float() if rewards.dim() == 2 else token_rewards(rewards, mask)
    if cfg.baseline == "group_mean":
        mean, _, count = group_stats(_scores(r), group_ids)
        baseline = torch.where(count > 1, mean, torch.zeros_like(mean))
        r = r - token_rewards(baseline, mask)  # centre the score on the token that carries it
    return discounted_returns(r, mask, cfg.gamma)


def reinforce_pp(rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor, cfg: ReinforcePPConfig):
    """Â_t = whiten_batch(G_t) over all completion tokens of the batch (token-weighted, unbiased
    variance, as verl's and OpenRLHF's masked_whiten), G_t from `reinforce_pp_returns`."""
    return masked_whiten(reinforce_pp_returns(rewards, group_ids, mask, cfg), mask)


# --------------------------------------------------------------------------------------------
# GAE, for PPO with a learned critic (rl/critic.py)
# --------------------------------------------------------------------------------------------


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, cfg: GAEConfig):
    """δ_t = r_t + γ·V_{t+1} − V_t (V after the last token = 0), Â_t = δ_t + γλ·Â_{t+1}, returns
    R_t = Â_t + V_t (the critic's targets, before whitening). `rewards` [B, T] token-level (or [B]
    outcomes, placed on the last token), `values` [B, T] the critic's V(s_t) for the state before
    token t. Returns (advantages, returns), both [B, T] and zero off the mask."""
    r = rewards.float() if rewards.dim() == 2 else token_rewards(rewards, mask)
    values = values.float() * mask
    adv = torch.zeros_like(r)
    next_value = torch.zeros(r.shape[0])
    last = torch.zeros(r.shape[0])
    for t in reversed(range(r.shape[1])):
        m = mask[:, t]
        delta = r[:, t] + cfg.gamma * next_value - values[:, t]
        # masked tokens (padding past the end, forced interruption text) are skipped: the recursion
        # carries V and Â across them, as verl does for observation tokens
        last = m * (delta + cfg.gamma * cfg.lam * last) + (1 - m) * last
        next_value = m * values[:, t] + (1 - m) * next_value
        adv[:, t] = last * m
    returns = (adv + values) * mask
    if cfg.whiten:
        adv = masked_whiten(adv, mask)
    return adv * mask, returns


ADVANTAGES = {"grpo": grpo, "rloo": rloo, "reinforce_pp": reinforce_pp}


