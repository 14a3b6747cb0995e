"""Filters and curricula: which rollouts enter the loss, and which prompts are sampled at all.

A filter has one signature:

    filter_fn(rewards, group_ids) -> (keep, metrics)

`rewards` [B] and `group_ids` [B] as for advantages; `keep` is a boolean mask [B] of the
completions that stay in the batch; metrics are counts.

Two components build on it with a little state, which the trainer keeps:
- DAPO's dynamic sampling (`DynamicSamplingConfig`) samples more prompts until the batch is full of
  informative groups (zero_variance decides which are);
- No-Positive-Resampling (`NPRConfig`) retires prompts whose pass rate reached a threshold from
  later epochs; its per-prompt pass rates live in TrainerState.extra and survive a resume.
"""

from __future__ import annotations

from typing import Callable

import torch

from envs.base import Prompt
from rl.config.filters import NPRConfig


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


# --------------------------------------------------------------------------------------------
# DAPO dynamic sampling
# --------------------------------------------------------------------------------------------


def informative_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """[P] bool: which of P consecutive groups of `group_size` completions have differing rewards."""
    keep, _ = zero_variance(rewards, torch.arange(len(rewards)) // group_size)
    return keep.view(-1, group_size)[:, 0]


# --------------------------------------------------------------------------------------------
# No-Positive-Resampling (ScaleRL)
# --------------------------------------------------------------------------------------------


def update_pass_rates(pass_rates: dict[str, float], prompt_ids: list[str], correct: torch.Tensor) -> dict[str, float]:
    """A copy of `pass_rates` with each prompt's latest pass rate: `correct` [P, G] holds the
    verifiable reward of each of its G completions."""
    out = dict(pass_rates)
    for pid, row in zip(prompt_ids, correct.float().mean(dim=1).tolist()):
        out[pid] = row
    return out


def retired_prompts(pass_rates: dict[str, float], cfg: NPRConfig) -> set[str]:
    return {pid for pid, rate in pass_rates.items() if rate >= cfg.threshold}


def take_active_prompts(
    fetch: Callable[[int, int], list[Prompt]], position: int, count: int, retired: set[str], epoch_size: int
) -> tuple[list[Prompt], int, int]:
    """The next `count` prompts of the stream `fetch(position, count)` that are not retired.

    Returns (prompts, the position after the last prompt read, how many retired prompts were
    skipped). Raises when a whole epoch holds fewer than `count` active prompts."""
    prompts: list[Prompt] = []
    skipped = 0
    while len(prompts) < count:
        if skipped > epoch_size:
            raise RuntimeError(
                f"No-Positive-Resampling retired {len(retired)} of {epoch_size} training prompts: fewer than "
                f"{count} remain; lower prompts_per_iteration or raise algorithm.no_positive_resampling.threshold"
            )
        for p in fetch(position, count - len(prompts)):
            position += 1
            if p.id in retired:
                skipped += 1
            else:
                prompts.append(p)
    return prompts, position, skipped
