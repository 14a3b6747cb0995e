"""The code environment's recipe section: single-turn Python function tasks with unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from envs.schema import Config

DATA_DIR = Path(__file__).resolve().parent / "data"


class CodeEnvConfig(Config):
    """Write a Python function from a description; the code_tests reward runs it against the task's
    unit tests in a sandbox (MBPP/HumanEval style, single turn)."""

    name: Literal["code"] = "code"
    """Selects this environment in the recipe's `env` section."""
    dataset: str = str(DATA_DIR / "basic.jsonl")
    """JSONL of tasks, one per line: {"id", "question", "tests": [Python snippets, e.g. "assert f(1) == 2"],
    "solution" (a reference solution, for the warm start), "entry_point" (optional)}. Default: 22
    small function tasks shipped with Asymptote (envs/code/data/basic.jsonl)."""
    val_size: int = Field(4, ge=1)
    """Tasks held out (seeded choice) for val/accuracy; the rest are the training split."""
    seed: int | None = None
    """Seeds the split and the epoch orders; None: the recipe seed."""
    prompt_template: str = (
        "{question}\n\nAnswer with the complete function in one ```python code block."
    )
    """The user message; {question} is replaced by the task's description."""
    system_prompt: str | None = None
    """An optional system message before the user message."""
    gold_format: Literal["fenced", "plain"] = "fenced"
    """How the reference solution is written as a gold completion (warm start)."""
