"""The configs of the KL penalty (`algorithm.kl`) and the entropy bonus (`algorithm.entropy`).
The regularisers themselves are in rl/regularizers.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from envs.schema import Config


class KLConfig(Config):
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


class EntropyConfig(Config):
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
