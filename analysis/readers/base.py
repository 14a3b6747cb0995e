"""What every reader returns: a :class:`Run`, or a :class:`RunError` that names the file and the problem."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray


class RunError(ValueError):
    """A run that cannot be read or has no usable points; the message names the file and the problem."""


def json_lines(path: Path, expected: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-blank line of a JSONL log; a torn last line (the run was
    stopped mid-write) is dropped, any other line that is not JSON is an error ending `expected`."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):
                return  # the last line was being written when the run stopped
            raise RunError(f"{path}:{i} is not valid JSON ({e.msg}); {expected}") from None


@dataclass(frozen=True)
class Run:
    name: str
    records: list[dict[str, Any]]
    recipe: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """Where it was read from (a path or a wandb path), for messages."""
    group: str | None = None
    """The wandb group, where the source has one."""
    format: str = "asymptote"
    """The reader that read it (see ``analysis.readers.FORMATS``)."""
    notes: dict[str, str] = field(default_factory=dict)
    """Per Asymptote metric the reader derived (``compute/tokens``, ``compute/device_hours``): how it
    was derived from the framework's metrics, or why it could not be; errors about a missing metric
    quote it."""

    @property
    def seed(self) -> Any:
        return self.recipe.get("seed")


def number(v: Any) -> bool:
    """A finite int or float (not a bool): a value a fit can use."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def accumulate(records: list[dict[str, Any]], per_step: str, out: str, scale: float = 1.0) -> bool:
    """Write the cumulative sum of the per-step metric ``per_step`` (times ``scale``) as ``out`` on
    every record, in place (records in step order); return False, writing nothing, where no record
    has ``per_step``.

    A framework that logs a per-step amount (tokens, seconds) every ``k`` steps has logged one step
    of every ``k``: each logged value counts for the steps since the previous logged one (exact when
    every step is logged, as verl and OpenRLHF do by default). Records before the first logged value
    (an eval before training) get 0; a record that repeats a step adds nothing.
    """
    if not any(number(r.get(per_step)) for r in records):
        return False
    total, prev = 0.0, None
    for r in records:
        step, v = r.get("step"), r.get(per_step)
        if number(v) and number(step):
            gap = max(step, 1) if prev is None else step - prev
            if gap > 0:
                total += float(v) * gap * scale
                prev = step
        r[out] = total
    return True
