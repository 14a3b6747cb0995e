"""Regularisers: a KL penalty towards the reference policy, and an entropy bonus with an optional
adaptive coefficient. Pure functions over tensors and floats; the trainer keeps the coefficient's
state in TrainerState.extra so that a resumed run continues with the same coefficient."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


# --------------------------------------------------------------------------------------------
# KL to the reference policy
# --------------------------------------------------------------------------------------------


class KLConfig(_Config):
    """A KL penalty towards the reference (initial) policy, in the loss or in the reward."""

    coef: float = Field(0.0, ge=0.0)
    """β. 0 disables the term and no reference model is loaded (DAPO and ScaleRL use none; GRPO's
    DeepSeekMath used 0.04 in the loss; InstructGPT-style PPO puts ~0.05 in the reward)."""
    estimator: Literal["k1", "k2", "k3"] = "k3"
    """Schulman's estimators of KL(π‖π_ref) from samples of π: k1 = log r, k2 = (log r)²/2,
    k3 = exp(−log r) − 1 + log r with log r = logp − ref_logp. k3 (GRPO's choice) is unbiased and
    never negative; k1 is the usual choice in the reward (verl's kl_penalty 'kl')."""
    in_reward: bool = False
    """False: β·KL is added to each token's loss (GRPO, verl's use_kl_loss). True: −β·KL of the
    sampling policy is a per-token reward (PPO/RLHF, REINFORCE++; verl's use_kl_in_reward); group
    estimators then see r − β·Σ_t KL_t, token-level ones (GAE, REINFORCE++) the token rewards."""


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


class EntropyConfig(_Config):
    """An entropy bonus: the loss gets −α·H per token (aggregated like the policy loss).

    With `target` set, α adapts (Skywork-OR1, He et al. 2025, §4 "adaptive entropy control"): after
    each iteration c ← c + Δ if the measured entropy H < target, c ← c − Δ if H > target, clipped
    to [coef_min, coef_max]; the bonus applied in an iteration is α = c if the previous iteration's
    H ≤ target, else 0 (so it only pushes entropy up, never away from the target from below)."""

    coef: float = Field(0.0, ge=0.0)
    """α (fixed), or c's initial value when `target` is set. 0 with no target disables the bonus
    (the policy's entropy is still measured and logged). Fixed bonuses are brittle: the Entropy
    Mechanism paper (§4) finds 1e-4–1e-3 does nothing and 1e-2 makes entropy explode."""
    target: float | None = Field(None, gt=0.0)
    """The entropy level (nats per token, mean over completion tokens) to hold; None: fixed coef.
    Skywork-OR1 uses 0.2 for its 7B/32B models; pick it from the entropy your run starts with."""
    delta: float = Field(0.005, gt=0.0)
    """Δ, the step of c per iteration. 0.005 in Skywork-OR1 (and TRL's entropy_coef_delta)."""
    coef_min: float = Field(0.0, ge=0.0)
    coef_max: float = Field(1.0, gt=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> "EntropyConfig":
        if self.coef_min > self.coef_max:
            raise ValueError(f"coef_min ({self.coef_min}) must not exceed coef_max ({self.coef_max})")
        return self


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
