"""What one iteration sampled (steps 1-3 of the loop), and the metrics and samples logged about it.

Pure functions over completions and rewards; the trainer's `_sample` fills a `Rollouts` (with all
rounds of DAPO's dynamic sampling) and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from envs.base import Prompt
from rewards import RewardResult
from rl.rollout.base import Completion


@dataclass
class Rollouts:
    """Everything sampled in one iteration (all rounds of dynamic sampling), prompt by prompt."""

    prompts: list[Prompt]
    groups: list[list[Completion]]
    forced: list[list[list[bool]]]
    """Per completion, the tokens the policy did not sample (the interruption text)."""
    rewards: RewardResult
    """As the reward functions scored them."""
    shaped: list[float]
    """rewards.total plus the overlong penalty, per completion: what the advantages see."""
    train: list[int]
    """The groups to train on (dynamic sampling keeps the informative ones)."""
    rounds: int = 1
    """Generation rounds (dynamic sampling)."""
    dynamic: bool = False
    """Whether dynamic sampling chose `train`."""
    skipped: int = 0
    """Prompts skipped because No-Positive-Resampling retired them."""


def concat_rewards(results: list[RewardResult]) -> RewardResult:
    """One RewardResult for several batches scored apart (means over all completions)."""
    if len(results) == 1:
        return results[0]
    total = [t for r in results for t in r.total]
    per_function = {k: [v for r in results for v in r.per_function[k]] for k in results[0].per_function}
    errors = sum(r.errors for r in results)
    metrics = {f"reward/{k}": sum(v) / max(len(v), 1) for k, v in per_function.items()}
    return RewardResult(total=total, per_function=per_function, errors=errors, metrics=metrics | {"reward/errors": float(errors)})


def rollout_metrics(rollouts: Rollouts, step: int, verifiable: str, group_size: int) -> dict[str, float]:
    """train/ metrics of everything sampled: rewards, lengths, truncation, staleness, solve rates,
    dynamic sampling and No-Positive-Resampling counts. `train/response_length/sum` (generated
    tokens, for the compute counters) is popped by the trainer."""
    flat = [c for g in rollouts.groups for c in g]
    lengths = torch.tensor([len(c.token_ids) for c in flat], dtype=torch.float32)
    shaped = torch.tensor(rollouts.shaped)
    versions = [v for c in flat for v in c.policy_versions]
    correct = torch.tensor(rollouts.rewards.per_function[verifiable]).view(-1, group_size)
    m = {
        "train/reward": shaped.mean().item(),
        "train/reward_std": shaped.std().item() if len(flat) > 1 else 0.0,
        "train/reward_errors": float(rollouts.rewards.errors),
        "train/response_length/mean": lengths.mean().item(),
        "train/response_length/max": lengths.max().item(),
        "train/response_length/min": lengths.min().item(),
        "train/response_length/sum": lengths.sum().item(),
        "train/truncated_frac": sum(c.finish_reason == "length" for c in flat) / len(flat),
        "train/prompt_length": sum(len(c.prompt_ids) for c in flat) / len(flat),
        "train/staleness": step - sum(versions) / max(len(versions), 1),
        "train/solve_all_frac": (correct.min(dim=1).values > 0.5).float().mean().item(),
        "train/solve_none_frac": (correct.max(dim=1).values < 0.5).float().mean().item(),
    }
    m |= {f"train/{k}": v for k, v in rollouts.rewards.metrics.items() if k != "reward/errors"}
    if rollouts.shaped != rollouts.rewards.total:
        m["train/overlong_penalty"] = (shaped - torch.tensor(rollouts.rewards.total)).mean().item()
    if any(any(f) for g in rollouts.forced for f in g):
        m["train/interrupted_frac"] = sum(any(f) for g in rollouts.forced for f in g) / len(flat)
    if rollouts.dynamic:
        m["train/dynamic_sampling/rounds"] = float(rollouts.rounds)
        m["train/dynamic_sampling/sampled_prompts"] = float(len(rollouts.groups))
        m["train/dynamic_sampling/kept_prompts"] = float(len(rollouts.train))
    return m


def sample_records(rollouts: Rollouts, iteration: int, step: int, n: int) -> list[dict]:
    """The first `n` prompts of the iteration with their completions, for samples.jsonl."""
    records = []
    for i, (p, g) in enumerate(list(zip(rollouts.prompts, rollouts.groups))[:n]):
        k = len(g)
        records.append({
            "iteration": iteration, "step": step, "prompt_id": p.id,
            "prompt": p.messages[-1]["content"], "answer": p.answer,
            "completions": [c.text for c in g], "rewards": rollouts.shaped[i * k : (i + 1) * k],
            "finish_reasons": [c.finish_reason for c in g],
        })
    return records
