"""The advantage estimators' configs (`algorithm.advantage`, selected by `name`). The estimators
themselves, over tensors, are in rl/advantages.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from envs.schema import Config


class GRPOConfig(Config):
    """Group-relative advantages (DeepSeekMath, Shao et al. 2024, §4.1.2)."""

    name: Literal["grpo"] = "grpo"
    scale_by_std: bool = True
    """Divide by a std: Â_i = (r_i − mean_g) / (std + ε). Dr. GRPO (Liu et al. 2025) argues for
    False, which removes the bias towards too-easy and too-hard prompts."""
    std: Literal["group", "batch"] = "group"
    """Which std divides. group: the unbiased std of the prompt's group (GRPO; TRL and verl).
    batch: the unbiased std of the group-centred advantages r_i − mean_g over the whole batch
    (ScaleRL's batch-level normalisation, as Magistral writes it). TRL's scale_rewards='batch'
    divides by the std of the raw rewards instead, which also counts the spread between prompts."""
    eps: float = Field(1e-6, gt=0.0)
    """ε in the denominator. 1e-6 as verl (TRL uses 1e-4)."""


class RLOOConfig(Config):
    """REINFORCE Leave-One-Out (Kool et al. 2019; Ahmadian et al. 2024, "Back to Basics"): each
    completion's baseline is the mean reward of the OTHER completions of its prompt."""

    name: Literal["rloo"] = "rloo"


class ReinforcePPConfig(Config):
    """REINFORCE++ (Hu et al. 2025, arXiv:2501.03262): discounted returns of the token rewards,
    normalised over the whole batch (no critic, no per-prompt std)."""

    name: Literal["reinforce_pp"] = "reinforce_pp"
    baseline: Literal["none", "group_mean"] = "group_mean"
    """none: REINFORCE++ as first published (any batch, one sample per prompt is fine).
    group_mean: subtract the group's mean score first (REINFORCE++-baseline, the paper's choice for
    reasoning with several samples per prompt; verl's reinforce_plus_plus_baseline). Needs
    algorithm.group_size >= 2 (a group of one would be its own mean; the recipe is rejected)."""
    gamma: float = Field(1.0, ge=0.0, le=1.0)
    """γ of the returns G_t = Σ_{s≥t} γ^{s−t} r_s. 1 for outcome rewards (the authors' OpenRLHF
    forces 1 with a group baseline; verl's baseline variant ignores γ)."""


class GAEConfig(Config):
    """Generalised Advantage Estimation (Schulman et al. 2016) from a learned critic: PPO as in
    Ouyang et al. 2022 and "The N Implementation Details of RLHF with PPO". Needs `algorithm.critic`."""

    name: Literal["gae"] = "gae"
    gamma: float = Field(1.0, ge=0.0, le=1.0)
    """γ. 1.0 for outcome rewards on language (verl's and TRL's PPO default)."""
    lam: float = Field(0.95, ge=0.0, le=1.0)
    """λ. 0.95 as TRL's PPO and verl's default; VAPO (Yue et al. 2025) uses 1.0 for the critic's
    targets and a length-adaptive λ for the policy."""
    whiten: bool = True
    """Normalise the advantages over the batch's tokens (mean 0, std 1), as TRL and verl do."""


AdvantageConfig = GRPOConfig | RLOOConfig | ReinforcePPConfig | GAEConfig


# Estimators that compare completions within a group, and so need group_size >= 2.
GROUP_ESTIMATORS = {"grpo", "rloo"}


def needs_groups(cfg: AdvantageConfig) -> bool:
    """Whether the estimator compares the completions of a prompt with each other (and so needs
    group_size >= 2): GRPO, RLOO, and REINFORCE++ with baseline group_mean."""
    return cfg.name in GROUP_ESTIMATORS or getattr(cfg, "baseline", None) == "group_mean"
