"""Format reward: does the completion have the shape the recipe asks for?

DeepSeek-R1 (Guo et al. 2025, §2.2.2) adds a format reward to the accuracy reward so that the model
keeps its answer where the checker looks. The default shape here: the completion ends with exactly
one \\boxed{...} answer (braces inside it may nest up to three levels, as in
\\boxed{\\frac{\\sqrt{2}}{2}}), optionally followed by whitespace, and has no other \\boxed.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from envs.base import Prompt


def _balanced(depth: int) -> str:
    """A regex for text whose braces are balanced and nest at most `depth` levels."""
    inner = r"[^{}]*"
    for _ in range(depth):
        inner = r"[^{}]*(?:\{" + inner + r"\}[^{}]*)*"
    return inner


BOXED_AT_END = r"(?:(?!\\boxed\{).)*\\boxed\{" + _balanced(3) + r"\}\s*"
"""Exactly one \\boxed{...}, at the end of the completion (whitespace may follow)."""


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {e}") from None
    return pattern


Regex = Annotated[str, AfterValidator(_compiles)]
"""A string that must compile as a Python regular expression (checked when the recipe loads)."""


def format_reward(completion: str, prompt: Prompt, *, pattern: Regex = BOXED_AT_END) -> float:
    """1.0 if the whole completion matches `pattern` (re.fullmatch, with re.DOTALL so `.` crosses
    lines), else 0.0. The default, BOXED_AT_END, asks for one \\boxed{...} answer at the end."""
    return 1.0 if re.fullmatch(pattern, completion, flags=re.DOTALL) else 0.0
