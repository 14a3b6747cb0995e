"""Filters: which rollouts enter the loss. Pure functions over tensors.

A filter has one signature:

    filter_fn(rewards, group_ids) -> (keep, metrics)

`rewards` [B] and `group_ids` [B] as for advantages; `keep` is a boolean mask [B] of the
completions that stay in the batch; metrics are counts.
"""

from __future__ import annotations

import torch


def zero_variance(rewards: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Drop the groups whose completions all got the same reward (DAPO §3.2, ScaleRL).

    Their group-relative advantage is zero, so they add no gradient, but under token-mean
    aggregation they still count in the denominator and dilute the informative groups."""
    _, index = torch.unique(group_ids, return_inverse=True)
    num_groups = int(index.max().item()) + 1 if index.numel() else 0
    lo = torch.full((num_groups,), float("inf")).scatter_reduce(0, index, rewards.float(), "amin")
    hi = torch.full((num_groups,), float("-inf")).scatter_reduce(0, index, rewards.float(), "amax")
    informative = hi > lo
    keep = informative[index]
    return keep, {"filtered_groups": float((~informative).sum().item())}


FILTERS = {"zero_variance": zero_variance}
