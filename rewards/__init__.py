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
import typing
from dataclasses import dataclass
from math import isfinite  # `import math` would be shadowed by the submodule rewards.math
from typing import Any, Callable, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from envs.base import Prompt
from rewards.code import code_tests
from rewards.format import format_reward
from rewards.judge import LocalJudgeFactory, LocalJudgeMissing, llm_judge
from rewards.math import math_verify_reward
from rewards.swe import swe_tests

log = logging.getLogger(__name__)


def reward_args(fn: Callable[..., float]) -> dict[str, inspect.Parameter]:
    """The configurable parameters of a reward function: all but (completion, prompt)."""
    return dict(list(inspect.signature(fn).parameters.items())[2:])


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class RewardFunctionConfig(_Config):
    """One term of the reward: a registered function, its weight and its arguments."""

    name: str
    """A function of REWARDS: math_verify (1 if the final answer equals the gold answer, by
    math_verify), format (1 if the completion matches a regex; default: ends with one \\boxed{}),
    swe_tests (SWE episodes: 1 if the hidden tests pass; {partial_credit: true} for a fraction),
    code_tests (code env: 1 if the completion's code passes the task's unit tests in a sandbox;
    {partial_credit: true} for the fraction passed, {timeout_seconds: 5} per test), llm_judge (an
    LLM judge: {url: http://host:8000/v1, model: NAME, template: verdict|score|pairwise, samples: k};
    backend: hf|vllm with url a model directory judges in-process)."""
    weight: float = 1.0
    """Its coefficient in the total reward. R1-style recipes use 1.0 for math_verify and a small
    weight (0.1–0.5) for format; 0 computes and logs the function without training on it."""
    workers: int = Field(1, ge=1)
    """Completions scored at once, in threads: for functions that wait on a sandbox or an endpoint
    (code_tests, llm_judge over http: requests in flight); values keep the completions' order.
    llm_judge's engine backends (hf, vllm) take the whole batch in one generate call and ignore it."""
    args: dict[str, Any] = {}
    """Keyword arguments of the function, e.g. {timeout_seconds: 10} for math_verify or
    {pattern: '.*answer: \\d+'} for format. Unknown names and wrong types fail at load."""

    @field_validator("name")
    @classmethod
    def _known_function(cls, name: str) -> str:
        if name not in REWARDS:
            raise ValueError(f"unknown reward function '{name}'; allowed: {', '.join(REWARDS)}")
        return name

    @field_validator("args")
    @classmethod
    def _known_args(cls, args: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Each argument must be a keyword parameter of the function and fit its type annotation;
        values are stored as validated (YAML's "5" for an int parameter becomes 5)."""
        name = info.data.get("name")
        if name is None:  # the name failed; its error is reported
            return args
        fn = REWARDS[name]
        params = reward_args(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
        out = {}
        for key, value in args.items():
            if key not in params:
                allowed = ", ".join(params) or "none"
                raise ValueError(f"reward '{name}' has no argument '{key}'; allowed arguments: {allowed}")
            try:
                out[key] = TypeAdapter(hints[key]).validate_python(value) if key in hints else value
            except ValidationError as e:
                msg = "; ".join(str(err.get("ctx", {}).get("error", err["msg"])) for err in e.errors())
                raise ValueError(f"reward '{name}': argument '{key}'={value!r}: {msg}") from None
        return out


class CombineConfig(_Config):
    """How the listed functions' values v_i (weights w_i) make the total reward.

    - weighted: Σ w_i v_i (the default; R1-style correctness + small format bonus);
    - min / max: the smallest / largest w_i v_i (a completion is as good as its worst / best check);
    - all / any: 1 if every / some function passes (v_i >= threshold), else 0 (weights unused);
    - gate: Σ w_i v_i if the `gate` function passes, else `fail_value`: a hybrid verifier in which an
      LLM judge's score counts only for code that passes its tests (give the gate weight 0 to leave
      it out of the sum).
    Functions listed with weight 0 are logged but take no part in min, max, all and any."""

    mode: Literal["weighted", "min", "max", "all", "any", "gate"] = "weighted"
    threshold: float = 1.0
    """all, any, gate: a function passes when its value is at least this (1.0: fully passes)."""
    gate: str | None = None
    """gate: the listed function that must pass (e.g. code_tests)."""
    fail_value: float = 0.0
    """gate: the total of a completion whose gate fails."""

    @model_validator(mode="after")
    def _gate_named(self) -> "CombineConfig":
        if self.mode == "gate" and self.gate is None:
            raise ValueError("combine mode 'gate' needs `gate`: the listed function that must pass (e.g. code_tests)")
        if self.mode != "gate" and self.gate is not None:
            raise ValueError(f"combine.gate is used by mode 'gate' only; mode is '{self.mode}'")
        return self


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


class RewardConfig(_Config):
    """How completions are scored: reward functions, and how their values combine."""

    functions: list[RewardFunctionConfig] = Field(
        default_factory=lambda: [RewardFunctionConfig(name="math_verify")], min_length=1
    )
    """The terms of the total reward, each function at most once. Default: math_verify alone, the
    binary verifiable reward of DeepSeek-R1-Zero, DAPO and ScaleRL."""
    verifiable: str = "math_verify"
    """The registered function whose value is a completion's correctness, averaged into
    val/accuracy. If it is not among `functions` it is still computed (with its default arguments,
    weight 0) so that per_function always holds it."""
    combine: CombineConfig = CombineConfig()
    """How the functions' values make the total: weighted sum (default), min, max, all, any, gate."""

    @model_validator(mode="after")
    def _check(self) -> "RewardConfig":
        names = [f.name for f in self.functions]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"reward functions listed more than once: {', '.join(repeated)}; list each once")
        if self.verifiable not in REWARDS:
            raise ValueError(f"unknown verifiable reward '{self.verifiable}'; allowed: {', '.join(REWARDS)}")
        if self.combine.gate is not None and self.combine.gate not in names:
            raise ValueError(f"combine.gate '{self.combine.gate}' is not a listed reward function; listed: {', '.join(names)}")
        return self

    def terms(self) -> list[RewardFunctionConfig]:
        """The functions to compute: the listed ones, plus `verifiable` at weight 0 if unlisted."""
        if any(f.name == self.verifiable for f in self.functions):
            return list(self.functions)
        return list(self.functions) + [RewardFunctionConfig(name=self.verifiable, weight=0.0)]


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

        def score(pair: tuple[str, Prompt], fn=fn, term=term) -> float | Exception:
            try:
                value = float(fn(pair[0], pair[1], **term.args))
                if not isfinite(value):
                    raise ValueError(f"returned {value}")
                return value
            except Exception as e:  # noqa: BLE001  (any failure of a reward is a logged zero)
                return e

        pairs = list(zip(completions, prompts))
        batch = getattr(fn, "batch", None)
        if batch is not None:
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
                        r = float(r)
                        if not isfinite(r):
                            raise ValueError(f"returned {r}")
                    except (TypeError, ValueError) as e:
                        r = e
                results.append(r)
        elif term.workers > 1 and n > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(term.workers, n), thread_name_prefix=f"reward-{term.name}") as pool:
                results = list(pool.map(score, pairs))
        else:
            results = [score(p) for p in pairs]
        for (_, prompt), result in zip(pairs, results):
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


REWARDS: dict[str, Callable[..., float]] = {
    "math_verify": math_verify_reward,
    "format": format_reward,
    "code_tests": code_tests,  # code env: the task's unit tests run in a sandbox (rewards/code.py)
    "llm_judge": llm_judge,  # generative: an LLM judge over HTTP (OpenAI-compatible) or in-process (rewards/judge.py)
    "swe_tests": swe_tests,  # multi-turn SWE episodes: the hidden tests' verdict (rewards/swe.py)
}

__all__ = ["REWARDS", "CombineConfig", "RewardConfig", "RewardFunctionConfig", "RewardResult", "combine_values", "compute_rewards",
           "concat_rewards", "reward_args"]
