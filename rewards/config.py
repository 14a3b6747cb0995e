"""The `reward` section of a recipe: which registered functions score a completion, their weights and
arguments, and how their values combine. Torch-free and verifier-free: validating a recipe checks
each function's name and arguments against its signature (rewards/registry.py) without importing
math_verify or a judge's engine."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, ValidationInfo, field_validator, model_validator

from envs.schema import Config
from rewards.registry import REWARDS, reward_args


class RewardFunctionConfig(Config):
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


class CombineConfig(Config):
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


class RewardConfig(Config):
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
