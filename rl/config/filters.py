"""The configs of DAPO's dynamic sampling (`algorithm.dynamic_sampling`) and ScaleRL's
No-Positive-Resampling curriculum (`algorithm.no_positive_resampling`). The filters are in
rl/filters.py."""

from __future__ import annotations

from pydantic import Field

from envs.schema import Config


class DynamicSamplingConfig(Config):
    """DAPO's dynamic sampling (Yu et al. 2025, §3.2): keep sampling batches of prompts, keeping only
    the groups whose rewards differ, until prompts_per_iteration such groups are collected (the
    surplus of the last round is dropped)."""

    max_rounds: int = Field(10, ge=1)
    """Cap on generation rounds per iteration (verl's max_num_gen_batches; the Entropy Mechanism
    scripts use 10). When it is reached the iteration trains on the informative groups it has
    (verl raises an error instead), and train/dynamic_sampling/capped is 1."""


class NPRConfig(Config):
    """No-Positive-Resampling (ScaleRL, Khatri et al. 2025, §3.2; after Polaris): a prompt whose
    pass rate reaches the threshold is never sampled again in later epochs. The pass rate is the
    mean verifiable reward of its latest group."""

    threshold: float = Field(0.9, gt=0.0, le=1.0)
    """Pass rate at which a prompt retires. 0.9 in ScaleRL."""
