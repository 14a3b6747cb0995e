"""Advantage estimators, as pure functions over tensors.

One signature:

    estimator(rewards, group_ids, mask, cfg) -> advantages

`rewards` [B] is one scalar per completion, `group_ids` [B] the prompt each completion answers (the
completions of one prompt form its group), `mask` [B, T] the completion tokens; the result is the
per-token advantage [B, T] (zero off the mask).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


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


class GRPOConfig(_Config):
    """Group-relative advantages (DeepSeekMath, Shao et al. 2024, §4.1.2)."""

    name: Literal["grpo"] = "grpo"
    scale_by_std: bool = True
    """Divide by the group's std: Â_i = (r_i − mean_g) / (std_g + ε). Dr. GRPO (Liu et al. 2025)
    argues for False, which removes the bias towards too-easy and too-hard prompts."""
    eps: float = Field(1e-6, gt=0.0)
    """ε in the denominator."""


def grpo(
    rewards: torch.Tensor, group_ids: torch.Tensor, mask: torch.Tensor, cfg: GRPOConfig
) -> torch.Tensor:
    """Â_i = (r_i − mean(r_group)) / (std(r_group) + ε), the same for every token of completion i.

    std is the unbiased sample std of the group, as in TRL and verl."""
    mean, std, _ = group_stats(rewards, group_ids)
    adv = rewards.double() - mean
    if cfg.scale_by_std:
        adv = adv / (std + cfg.eps)
    return adv.to(mask.dtype).unsqueeze(1) * mask


AdvantageConfig = GRPOConfig
ADVANTAGES = {"grpo": grpo}
# Estimators that compare completions within a group, and so need group_size >= 2.
GROUP_ESTIMATORS = {"grpo"}
