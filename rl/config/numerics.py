"""The truncated importance sampling config (`algorithm.tis`). The weights are computed in
rl/numerics.py."""

from __future__ import annotations

from pydantic import Field

from envs.schema import Config


class TISConfig(Config):
    """Truncated importance sampling of the engine/trainer mismatch."""

    cap: float = Field(2.0, gt=1.0)
    """C in w = min(π_trainer / π_engine, C). 2 in Yao et al. (verl's rollout_is_threshold default);
    TRL's vllm_importance_sampling_clip_max defaults to 3."""
