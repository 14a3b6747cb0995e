"""Scoring on N processes: each rank scores a contiguous share of the completions (a judge or a
sandbox then works on 1/N of them) and the shares are gathered in rank order. Rewards are per
completion, so the gathered values are those of scoring the whole batch on one rank, and the outcome
counts add up.

Nothing here knows about accelerate or torch.distributed: the caller passes its rank, the world size
and a gather (rl.parallel.rollouts.sharded_scorer passes accelerate's gather_object), so rewards/
stays importable without the training stack.
"""

from __future__ import annotations

from typing import Callable

from rewards import RewardResult, compute_rewards, concat_rewards

Scorer = Callable[..., RewardResult]
"""(completions, prompts, RewardConfig) -> RewardResult: compute_rewards or one that wraps it."""


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of rank's contiguous share of n items (the first n % world ranks take one more).
    The one split of every sharded step: scoring here, rollouts and loss rows in rl/parallel/."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def shard_scorer(rank: int, world: int, gather: Callable[[list], list], score: Scorer | None = None) -> Scorer:
    """`score` (default compute_rewards) on `world` ranks: this rank scores its shard_bounds share
    and `gather([mine])` returns every rank's result in rank order (a collective: every rank must
    call the scorer with the same batch). One rank: `score` itself."""
    score = score or compute_rewards
    if world == 1:
        return score

    def run(completions: list[str], prompts: list, cfg) -> RewardResult:
        lo, hi = shard_bounds(len(completions), rank, world)
        mine = score(completions[lo:hi], prompts[lo:hi], cfg)
        return concat_rewards(gather([mine]))

    return run
