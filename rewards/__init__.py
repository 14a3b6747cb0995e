"""Reward functions and the scorer that combines them.

A reward function has one signature:

    reward_fn(completion: str, prompt: Prompt, **args) -> float

`completion` is the decoded assistant reply, `prompt` the env's Prompt (with the gold `answer` and
`meta`), `args` the function's keyword-only parameters, set per recipe in `reward.functions[].args`
and validated against the signature when the recipe loads. A function raises when it cannot score
(a gold answer it cannot read, say): compute_rewards turns that into a logged 0, never a crash.

The total reward of a completion is the weighted sum of the listed functions, or a rule over them
(`reward.combine`: min, max, all, any, or gate, where a generative score counts only if an execution
reward passes; see combine_values). One of them, named by `reward.verifiable`, is the correctness
that val/accuracy (ScaleRL's y-axis) averages.

Rewards that wait on a sandbox or an endpoint (code_tests, llm_judge) keep this signature and are
called from `workers` threads at once (reward.functions[].workers); a function that sets
`fn.stats = Outcomes()` (rewards/outcomes.py) gets its per-batch outcome counts logged
(reward/code_tests/timeout, reward/llm_judge/unparseable). A function that also sets
`fn.batch(completions, prompts, workers=..., **args) -> list[float | Exception]` is called once
per batch instead (llm_judge: one engine.generate call for a colocated judge, concurrent requests
to an endpoint); its per-completion errors are logged zeros like any other. A batch function that
takes `local_judge=` gets compute_rewards' own: what builds a local judge model, which only the
layer above (rl/) can load.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from math import isfinite  # `import math` would be shadowed by the submodule rewards.math

from envs.base import Prompt
from rewards.config import CombineConfig, RewardConfig, RewardFunctionConfig
from rewards.judge import LocalJudgeFactory, LocalJudgeMissing
from rewards.registry import REWARDS, reward_args

log = logging.getLogger(__name__)


def combine_values(values: dict[str, list[float]], weights: dict[str, float], cfg: CombineConfig) -> list[float]:
    """The total reward per completion from each listed function's values (see CombineConfig)."""
    names = list(weights)
    n = len(values[names[0]]) if names else 0
    weighted = [sum(weights[k] * values[k][i] for k in names) for i in range(n)]
    if cfg.mode == "weighted":
        return weighted
    if cfg.mode == "gate":
        assert cfg.gate is not None
        return [w if values[cfg.gate][i] >= cfg.threshold else cfg.fail_value for i, w in enumerate(weighted)]
    active = [k for k in names if weights[k] != 0] or names
    if cfg.mode in ("min", "max"):
        pick = min if cfg.mode == "min" else max
        return [pick(weights[k] * values[k][i] for k in active) for i in range(n)]
    test = all if cfg.mode == "all" else any
    return [float(test(values[k][i] >= cfg.threshold for k in active)) for i in range(n)]


@dataclass
class RewardResult:
    """The scores of a batch of completions."""

    total: list[float]
    """The functions combined (cfg.combine; default their weighted sum), one per completion: what the
    advantage estimator sees."""
    per_function: dict[str, list[float]]
    """Each computed function's value per completion (0.0 where it raised); holds cfg.verifiable."""
    errors: int
    """Function calls that raised or returned a non-finite value."""
    metrics: dict[str, float]
    """reward/<function>: the function's mean over the batch; reward/errors: `errors`; for functions
    that count outcomes (a `stats` Counter: code_tests, llm_judge), reward/<function>/<outcome>: how
    many of the batch's calls ended so (timeout, syntax_error, unparseable, ...)."""


def compute_rewards(completions: list[str], prompts: list[Prompt], cfg: RewardConfig, *,
                    local_judge: LocalJudgeFactory | None = None) -> RewardResult:
    """Score completions[i] (the reply to prompts[i]) with every function of `cfg`, in order.

    A function that raises, or returns NaN/inf or a non-number, scores 0.0 for that completion and
    counts in `errors`; one warning per function and batch gives the count and the first error.
    local_judge: what builds a local judge model's backend (rewards/judge.py's LocalJudgeFactory;
    rl passes rl/rollout/judge.py's EngineJudge), given to batch functions that take it (llm_judge);
    an llm_judge with backend hf or vllm and none raises LocalJudgeMissing."""
    if len(completions) != len(prompts):
        raise ValueError(f"{len(completions)} completions but {len(prompts)} prompts; they pair one to one")
    n = len(completions)
    per_function: dict[str, list[float]] = {}
    errors = 0
    outcomes: dict[str, float] = {}
    for term in cfg.terms():
        fn = REWARDS[term.name]
        stats = getattr(fn, "stats", None)  # a Counter of outcomes the function keeps (code_tests, llm_judge)
        stats_before = dict(stats) if stats is not None else {}
        values = []
        failed: list[tuple[str, str]] = []
        results = _score_term(fn, term, completions, prompts, local_judge)
        for prompt, result in zip(prompts, results):
            if isinstance(result, Exception):
                failed.append((prompt.id, f"{type(result).__name__}: {result}"))
                result = 0.0
            values.append(result)
        if failed:
            log.warning(
                "reward '%s' failed on %d of %d completions (scored 0); first, on prompt %s: %s",
                term.name,
                len(failed),
                n,
                *failed[0],
            )
        errors += len(failed)
        per_function[term.name] = values
        for key, count in (stats or {}).items():
            outcomes[f"reward/{term.name}/{key}"] = float(count - stats_before.get(key, 0))

    total = combine_values({f.name: per_function[f.name] for f in cfg.functions},
                           {f.name: f.weight for f in cfg.functions}, cfg.combine) if n else []

    metrics = {f"reward/{name}": (sum(v) / n if n else 0.0) for name, v in per_function.items()}
    metrics["reward/errors"] = float(errors)
    metrics.update(outcomes)
    return RewardResult(total=total, per_function=per_function, errors=errors, metrics=metrics)


def _score_term(fn, term, completions: list[str], prompts: list[Prompt],
                local_judge: LocalJudgeFactory | None) -> list[float | Exception]:
    """One function's value per completion, or the exception it raised there: one call per batch
    (a function with `.batch`), from `term.workers` threads, or one completion at a time."""
    n = len(completions)

    def score(pair: tuple[str, Prompt]) -> float | Exception:
        try:
            return _finite(fn(pair[0], pair[1], **term.args))
        except Exception as e:  # noqa: BLE001  (any failure of a reward is a logged zero)
            return e

    pairs = list(zip(completions, prompts))
    batch = getattr(fn, "batch", None)
    if batch is None:
        if term.workers > 1 and n > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(term.workers, n), thread_name_prefix=f"reward-{term.name}") as pool:
                return list(pool.map(score, pairs))
        return [score(p) for p in pairs]
    given = {"local_judge": local_judge} if "local_judge" in inspect.signature(batch).parameters else {}
    try:
        raw = batch(completions, prompts, workers=term.workers, **given, **term.args)
    except LocalJudgeMissing:  # the scorer is set up wrong, not the batch: no zeros to train on
        raise
    except Exception as e:  # noqa: BLE001  (a batch that fails as a whole: every completion fails)
        raw = [e] * n
    if not isinstance(raw, list) or len(raw) != n:
        raw = [ValueError(f"batch returned {type(raw).__name__} of {len(raw) if isinstance(raw, list) else '?'} "
                          f"values for {n} completions")] * n
    results = []
    for r in raw:
        if not isinstance(r, Exception):
            try:
                r = _finite(r)
            except (TypeError, ValueError) as e:
                r = e
        results.append(r)
    return results


def _finite(value) -> float:
    """A reward's value as a float; a non-number or NaN/inf raises (TypeError, ValueError)."""
    value = float(value)
    if not isfinite(value):
        raise ValueError(f"returned {value}")
    return value


def concat_rewards(results: list[RewardResult]) -> RewardResult:
    """One RewardResult for several batches scored apart, in order: per-completion values
    concatenated, reward/<function> means over all completions, errors and outcome counts
    (reward/<function>/<outcome>) added up."""
    if len(results) == 1:
        return results[0]
    total = [t for r in results for t in r.total]
    per_function = {k: [v for r in results for v in r.per_function[k]] for k in results[0].per_function}
    errors = sum(r.errors for r in results)
    means = {f"reward/{k}": sum(v) / max(len(v), 1) for k, v in per_function.items()}
    counts: dict[str, float] = {}
    for r in results:
        for key, value in r.metrics.items():
            if key not in means and key != "reward/errors":
                counts[key] = counts.get(key, 0.0) + value
    return RewardResult(total=total, per_function=per_function, errors=errors,
                        metrics=means | {"reward/errors": float(errors)} | counts)


__all__ = ["REWARDS", "CombineConfig", "RewardConfig", "RewardFunctionConfig", "RewardResult", "combine_values", "compute_rewards",
           "concat_rewards", "reward_args"]
