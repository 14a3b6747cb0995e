"""Regularisers: a KL penalty towards the reference policy, and an entropy bonus with an optional
adaptive coefficient. Pure functions over tensors and floats; the trainer keeps the coefficient's
state in TrainerState.extra so that a resumed run continues with the same coefficient."""

from __future__ import annotations

import torch

from rl.config.regularizers import EntropyConfig


# --------------------------------------------------------------------------------------------
# KL to the reference policy
# --------------------------------------------------------------------------------------------


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(π‖π_ref) from tokens sampled from π (http://joschu.net/blog/kl-approx.html).

    Unclamped, deliberately: verl 0.9.1's `low_var_kl` clamps the log-ratio to ±20 and k3 to ±10, which
    changes k3 (and removes its gradient) wherever log π − log π_ref < −2.61, exactly where the penalty
    should pull hardest; TRL 1.16 does not clamp. docs/components.md, "log-ratio and KL clamps"."""
    log_r = logp - ref_logp
    if estimator == "k1":
        return log_r
    if estimator == "k2":
        return 0.5 * log_r.square()
    if estimator == "k3":
        return torch.exp(-log_r) - 1.0 + log_r
    raise ValueError(f"unknown KL estimator {estimator!r}; allowed: 'k1', 'k2', 'k3'")


# --------------------------------------------------------------------------------------------
# Entropy bonus
# --------------------------------------------------------------------------------------------


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: H = logsumexp(z) − Σ softmax(z)·z."""
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)


def entropy_bonus_coef(c: float, last_entropy: float | None, cfg: EntropyConfig) -> float:
    """α to apply this iteration: cfg.coef when fixed; c if the last measured entropy is at or
    below the target (none measured yet: 0), else 0."""
    if cfg.target is None:
        return cfg.coef
    return c if last_entropy is not None and last_entropy <= cfg.target else 0.0


def adapt_entropy_coef(c: float, entropy: float, cfg: EntropyConfig) -> float:
    """The next c after measuring `entropy` (Skywork-OR1's update; unchanged when fixed)."""
    if cfg.target is None:
        return c
    step = cfg.delta if entropy < cfg.target else -cfg.delta if entropy > cfg.target else 0.0
    return min(max(c + step, cfg.coef_min), cfg.coef_max)
