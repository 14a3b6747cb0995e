"""Length control: DAPO's overlong reward shaping, masking truncated completions, and ScaleRL's
forced interruption at a thinking budget.

The first two are pure functions over lengths and finish reasons. The interruption needs the
engine: `generate_with_thinking_budget` wraps any `Engine.generate` (a second call continues the
interrupted completions after the interruption text), so it works with every engine unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch

from rl.config.length import LengthConfig
from rl.rollout.base import Completion, Engine, SamplingParams


def overlong_penalty(lengths: torch.Tensor, max_len: int, buffer: int, factor: float = 1.0) -> torch.Tensor:
    """DAPO eq. 13: 0 for |y| ≤ L_max − L_cache; ((L_max − L_cache) − |y|) / L_cache in between;
    −1 beyond L_max; times `factor`. Added to the task reward."""
    expected = max_len - buffer
    lengths = lengths.float()
    penalty = torch.where(lengths <= expected, torch.zeros_like(lengths), (expected - lengths) / buffer)
    return torch.clamp(penalty, min=-1.0) * factor


def shape_rewards(totals: list[float], groups: list[list[Completion]], cfg: LengthConfig, max_len: int) -> list[float]:
    """The rewards with DAPO's overlong penalty added (unchanged when cfg.overlong_buffer is None);
    L_max = max_len, the engine's token budget."""
    if cfg.overlong_buffer is None:
        return list(totals)
    lengths = torch.tensor([len(c.token_ids) for g in groups for c in g])
    return (torch.tensor(totals) + overlong_penalty(lengths, max_len, cfg.overlong_buffer, cfg.overlong_penalty)).tolist()


def generate_with_thinking_budget(
    engine: Engine,
    prompt_ids: list[list[int]],
    params: SamplingParams,
    budget: int,
    interruption_ids: list[int],
    answer_budget: int,
    decode: Callable[[list[int]], str],
) -> tuple[list[list[Completion]], list[list[list[bool]]]]:
    """Generate with at most `budget` tokens; every completion that reaches it is continued, in one
    more `generate` call, from prompt + its tokens + `interruption_ids`, for at most `answer_budget`
    tokens. Returns the completions (first part, interruption and continuation joined; the
    interruption's engine log-probs are 0) and, per completion, which tokens were forced."""
    first = engine.generate(prompt_ids, replace(params, max_new_tokens=budget))
    cut = [(gi, ci) for gi, g in enumerate(first) for ci, c in enumerate(g) if c.finish_reason == "length"]
    forced = [[[False] * len(c.token_ids) for c in g] for g in first]
    if not cut:
        return first, forced
    contexts = [first[gi][ci].prompt_ids + first[gi][ci].token_ids + interruption_ids for gi, ci in cut]
    answers = engine.generate(contexts, replace(params, n=1, max_new_tokens=answer_budget))
    for (gi, ci), [answer] in zip(cut, answers):
        c = first[gi][ci]
        ids = c.token_ids + interruption_ids + answer.token_ids
        first[gi][ci] = Completion(
            prompt_ids=c.prompt_ids,
            token_ids=ids,
            logprobs=c.logprobs + [0.0] * len(interruption_ids) + answer.logprobs,
            finish_reason=answer.finish_reason,
            text=decode(ids),
            policy_versions=c.policy_versions + [c.policy_versions[-1]] * len(interruption_ids) + answer.policy_versions,
        )
        forced[gi][ci] = [False] * len(c.token_ids) + [True] * len(interruption_ids) + [False] * len(answer.token_ids)
    return first, forced
