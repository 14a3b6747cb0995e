"""The registered reward functions by the name a recipe gives them (`reward.functions[].name`).

Importing it loads the functions' modules but none of their heavy dependencies (math_verify, an
LLM judge's engine, a sandbox): those are imported when a function first scores, so the recipe schema
(rewards/config.py) can check names and arguments against the signatures here and stay light."""

from __future__ import annotations

import inspect
from typing import Callable

from rewards.code import code_tests
from rewards.format import format_reward
from rewards.judge import llm_judge
from rewards.math import math_verify_reward
from rewards.swe import swe_tests


def reward_args(fn: Callable[..., float]) -> dict[str, inspect.Parameter]:
    """The configurable parameters of a reward function: all but (completion, prompt)."""
    return dict(list(inspect.signature(fn).parameters.items())[2:])


REWARDS: dict[str, Callable[..., float]] = {
    "math_verify": math_verify_reward,
    "format": format_reward,
    "code_tests": code_tests,  # code env: the task's unit tests run in a sandbox (rewards/code.py)
    "llm_judge": llm_judge,  # generative: an LLM judge over HTTP (OpenAI-compatible) or a local model (rewards/judge.py)
    "swe_tests": swe_tests,  # multi-turn SWE episodes: the hidden tests' verdict (rewards/swe.py)
}
