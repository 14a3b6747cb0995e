"""The points a fit reads: :func:`series` turns a run into (x, y) arrays, with errors that name the
file, the line and the keys present; :func:`check_y` says which metrics could be the y-axis when
the one asked for is absent; :func:`default_x` picks the compute axis runs are fitted against, and
:func:`throughput` converts it to device-hours."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.readers.base import Array, Run, RunError, number

EVAL_PREFIXES = ("val", "eval", "test")
"""Metric names that start so (``val/accuracy``, ``val-core/...``, ``eval_reward``, ``eval/...``)
are listed first among the candidates for the y-axis: verl's ``val-core/...`` (its headline
validation metrics), then those that name a score (:data:`SCORE_WORDS`), then the rest."""

SCORE_WORDS = ("acc", "reward", "pass", "score")


def _evals_first(keys: list[str]) -> list[str]:
    evals = [k for k in keys if k.startswith(EVAL_PREFIXES)]
    return sorted(evals, key=lambda k: (not k.startswith("val-core/"), not any(w in k for w in SCORE_WORDS), k))


def y_candidates(run: Run, limit: int = 12) -> str:
    """The run's numeric metrics that could be a y-axis, evals first, as text for an error message:
    the eval-like ones all, the others up to ``limit``."""
    numeric = {k for r in run.records for k, v in r.items() if number(v)}
    numeric -= {"step"}
    keys = sorted(k for k in numeric if not k.startswith(("_", "pred/", "compute/")))
    evals = _evals_first(keys)
    others = [k for k in keys if k not in evals]
    parts = []
    if evals:
        parts.append(f"eval metrics: {', '.join(evals)}")
    if others:
        more = f" and {len(others) - limit} more" if len(others) > limit else ""
        parts.append(f"other numeric metrics: {', '.join(others[:limit])}{more}")
    return "; ".join(parts) or "no numeric metrics at all"


def check_y(runs: list[Run], y_key: str) -> None:
    """Raise a :class:`RunError` naming every run without a ``y_key`` value and the metrics it has
    that could be the y-axis (``--y``); other frameworks name their evals differently."""
    missing = [r for r in runs if not any(number(rec.get(y_key)) for rec in r.records)]
    if not missing:
        return
    described = [
        f"{r.source or r.name} ({r.format}) has no '{y_key}' values; keys present: {y_candidates(r)}" for r in missing
    ]
    raise RunError(
        "; ".join(described)
        + f". Pass --y to name the metric to fit (y_key= in Python), e.g. --y {_example(missing[0], y_key)}"
    )


def _example(run: Run, y_key: str) -> str:
    numeric = sorted({k for r in run.records for k, v in r.items() if number(v) and not k.startswith("_")})
    evals = [k for k in _evals_first(numeric) if k != y_key and not k.startswith("pred/")]
    return (evals or ["METRIC"])[0]


def _why_missing(run: Run, key: str) -> str:
    note = run.notes.get(key)
    return f" ({note})" if note else ""


def series(
    run: Run,
    x_key: str = "compute/flops",
    y_key: str = "val/accuracy",
    *,
    cumulative: bool | None = None,
    need_x: bool = True,
) -> tuple[Array, Array]:
    """The (x, y) points of a run: every line that has ``y_key``, in the order logged.

    Lines without ``y_key`` (training steps between evals) are skipped; ``pred/...`` keys, written by
    the live predictor, are never read as x or y. A line with y but no x is an error, unless
    ``need_x=False`` (the eval before training has no ``train/entropy``). When x is a cumulative
    counter (``cumulative``; by default for ``step`` and ``compute/...``) it must never decrease.
    Errors name the source, the line and the keys seen.
    """
    for key in (x_key, y_key):
        if key.startswith("pred/"):
            raise RunError(
                f"'{key}' is a prediction written by the live predictor, not a measurement; fit a measured metric"
            )
    lines = [r for r in run.records if y_key in r and r[y_key] is not None]
    if not need_x:
        lines = [r for r in lines if r.get(x_key) is not None]
    if not lines:
        keys = sorted({k for r in run.records for k in r if not k.startswith("_")})
        raise RunError(
            f"{run.source or run.name} has no '{y_key}' values"
            + ("" if need_x else f" on lines with '{x_key}'")
            + (f"; keys present: {', '.join(keys)}" if keys else " (no metrics lines at all)")
            + _why_missing(run, y_key)
            + (f". Pass --y to name the y-axis (y_key= in Python); {y_candidates(run)}" if keys else "")
        )
    x, y = [], []
    for r in lines:
        where = f"{run.source or run.name}" + (f":{r['_line']}" if "_line" in r else f" (step {r.get('step')})")
        if x_key not in r or r[x_key] is None:
            keys = ", ".join(k for k in r if not k.startswith("_"))
            raise RunError(
                f"{where} has '{y_key}' but no '{x_key}'{_why_missing(run, x_key)}; keys on that line: {keys}"
            )
        for key in (x_key, y_key):
            v = r[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RunError(f"{where}: '{key}' is {v!r}, expected a number")
            if not math.isfinite(v):
                raise RunError(
                    f"{where}: '{key}' is {v}; expected a finite number (was the eval or the logger broken?)"
                )
        x.append(float(r[x_key])), y.append(float(r[y_key]))
    xa, ya = np.array(x), np.array(y)
    if cumulative is None:
        cumulative = x_key == "step" or x_key.startswith("compute/")
    back = np.flatnonzero(np.diff(xa) < 0) if cumulative else np.zeros(0, dtype=int)
    if back.size:
        i = int(back[0])
        line = lines[i + 1].get("_line", f"step {lines[i + 1].get('step')}")
        raise RunError(
            f"{run.source or run.name}: '{x_key}' decreases at line {line} ({xa[i]:g} -> {xa[i + 1]:g}); "
            "it must be a cumulative counter that never goes down"
        )
    return xa, ya


# --------------------------------------------------------------------------------------------
# The compute axis, and device-hours as a unit of it
# --------------------------------------------------------------------------------------------

DEFAULT_X = ("compute/flops", "compute/tokens")
"""The axes :func:`default_x` chooses from, in order: counts of work, the same for the same run on
any machine. ``compute/device_hours`` (wall time x devices) is not among them: on a shared or busy
machine an iteration takes longer, the curve stretches where the machine was loaded, and a fit
against it bends there rather than where the recipe saturated."""

HOURS = "compute/device_hours"


def _eval_lines(run: Run, y_key: str) -> list[dict[str, Any]]:
    return [r for r in run.records if r.get(y_key) is not None]


def default_x(runs: list[Run], y_key: str = "val/accuracy") -> str:
    """The x-axis to fit ``runs`` against when none is given: the first of :data:`DEFAULT_X` that
    every run has, as a number, on every line with ``y_key`` (its evals).

    All runs get one axis, so that fits of one command (a comparison above all) can be set side by
    side. Where no candidate fits every run, the error names the runs that lack them and the numeric
    metrics their evals do have, so that an axis can be chosen with ``--x``.
    """
    def has(run: Run, key: str) -> bool:
        return all(number(r.get(key)) for r in _eval_lines(run, y_key))

    for key in DEFAULT_X:
        if all(has(run, key) for run in runs):
            return key
    described = []
    for run in runs:
        missing = [key for key in DEFAULT_X if not has(run, key)]
        if not missing:
            continue
        numeric = {k for r in _eval_lines(run, y_key) for k, v in r.items() if number(v)}
        keys = sorted(k for k in numeric if not k.startswith(("_", "pred/")))
        why = "".join(_why_missing(run, key) for key in missing)
        described.append(
            f"{run.source or run.name} lacks {' and '.join(missing)}{why} "
            f"(numeric metrics on its '{y_key}' lines: {', '.join(keys) or 'none'})"
        )
    raise RunError(
        f"cannot choose the compute axis: the default is {' or, failing that, '.join(DEFAULT_X)} on every "
        f"'{y_key}' line of every run, but " + "; ".join(described)
        + ". Pass --x to name the x-axis (x_key= in Python), e.g. --x compute/device_hours or --x step"
    )


def throughput_rates(runs: Run | list[Run], x_key: str = "compute/flops") -> Array:
    """Δ(x)/Δ(device-hours) of every pair of consecutive metrics lines where both counters increase
    (one per training iteration; an eval line that repeats its step adds nothing), over all ``runs``.

    Lines that lack either counter are passed over; a run without ``compute/device_hours`` gives none.
    """
    rates: list[float] = []
    for run in [runs] if isinstance(runs, Run) else runs:
        lines = [r for r in run.records if number(r.get(x_key)) and number(r.get(HOURS))]
        for a, b in zip(lines, lines[1:]):
            dx, dh = float(b[x_key]) - float(a[x_key]), float(b[HOURS]) - float(a[HOURS])
            if dx > 0 and dh > 0:
                rates.append(dx / dh)
    return np.array(rates, dtype=float)


def throughput(runs: Run | list[Run], x_key: str = "compute/flops") -> float | None:
    """The run's measured x-units per device-hour: the median of :func:`throughput_rates` (for seeds
    pooled into one curve, over all their lines), or None where the run has no device-hours.

    The median, not total x over total hours: an iteration slowed by a busy machine is an outlier
    in hours per unit of work, and the median leaves it out where a ratio of totals would not.
    """
    rates = throughput_rates(runs, x_key)
    return float(np.median(rates)) if rates.size else None
