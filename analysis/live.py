"""Live prediction during training, and the early-stop rule for sweeps.

The trainer calls :meth:`LivePredictor.update` at each eval with every metrics line so far; it
refits ScaleRL's sigmoid (Khatri et al. 2025, Eq. 1), or with a prior file (recipe key
``eval.prior``) the creep law under that prior (``analysis/prior.py``), to the evals and returns the predicted
asymptote with its interval as ``pred/...`` metrics, which go to metrics.jsonl and wandb with the
rest. It never raises: with too few evals, or data it cannot fit, it returns ``{}``; a fit that is
poorly identified (the curve has not bent yet) is returned with ``pred/identified = 0``.

:func:`should_stop` is the rule for sweeps: stop an arm whose asymptote interval lies wholly below
the best arm's (its upper bound under the best arm's lower bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.bootstrap import Interval


@dataclass
class LivePredictor:
    """Refit at each eval and report ``pred/asymptote`` with its interval.

    ``min_evals`` counts eval lines (the one at step 0 included) before the first prediction;
    ``n_boot`` is kept small so that an update takes well under a second for ~30 evals.

    x is ``compute/flops`` by default, not ``compute/device_hours``: wall time depends on what else
    runs on the machine, and a sweep stops arms on this prediction, so a neighbour's load must not
    move it. FLOPs count the work and are the same when the run is resumed or rerun elsewhere.
    """

    x_key: str = "compute/flops"
    y_key: str = "val/accuracy"
    min_evals: int = 8
    n_boot: int = 120
    skip_fraction: float = 0.1
    level: float = 0.95
    seed: int = 0
    prior_path: str | None = None
    """A prior file (``asymptote prior build``): fit the creep law under it (``analysis/prior.py``)."""
    _prior: object | None = field(default=None, init=False, repr=False)

    def update(self, history: list[dict[str, Any]]) -> dict[str, float]:
        """The ``pred/...`` metrics for the evals in ``history`` (all metrics lines so far), or ``{}``."""
        x, y = _points(history, self.x_key, self.y_key)
        if x.size < self.min_evals:
            return {}
        try:
            cf = self._fit(history, x, y)
        except Exception:  # noqa: BLE001 — a prediction must never stop training
            return {}
        a = cf.asymptote
        out = {
            "pred/asymptote": a.value,
            "pred/asymptote_low": a.low,
            "pred/asymptote_high": a.high,
            "pred/B": cf.fit.params["B"],
            "pred/C_mid": cf.fit.params["C_mid"],
            "pred/identified": 1.0 if cf.identified else 0.0,
            "pred/n_evals": float(x.size),
        }
        return {k: float(v) for k, v in out.items() if math.isfinite(v)}


    def _fit(self, history: list[dict[str, Any]], x: np.ndarray, y: np.ndarray) -> Any:
        kw = dict(n_boot=self.n_boot, skip_fraction=self.skip_fraction, seed=self.seed, x_key=self.x_key,
                  y_key=self.y_key)
        if self.prior_path is None:
            from analysis.extrapolate import fit_curve

            return fit_curve(x, y, level=self.level, **kw)
        from analysis.prior import Prior, prior_fit, step_compute

        if self._prior is None:
            self._prior = Prior.load(self.prior_path)
        return prior_fit(x, y, self._prior, step=step_compute(history, self.x_key), **kw)


def _points(history: list[dict[str, Any]], x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Eval points of the history, leaving out any line whose x or y is missing or not a finite number."""
    x, y = [], []
    for line in history:
        xv, yv = line.get(x_key), line.get(y_key)
        if isinstance(xv, (int, float)) and isinstance(yv, (int, float)) and math.isfinite(xv) and math.isfinite(yv):
            x.append(float(xv)), y.append(float(yv))
    return np.array(x), np.array(y)


def should_stop(arms: dict[str, Interval | None], margin: float = 0.0) -> set[str]:
    """Arms to stop: those whose asymptote's upper bound + ``margin`` is below the best arm's lower bound.

    The best arm has the highest asymptote estimate. Arms without an interval yet (``None``) are
    never stopped, and neither is the best arm.
    """
    known = {name: iv for name, iv in arms.items() if iv is not None}
    if len(known) < 2:
        return set()
    best = max(known, key=lambda n: (known[n].value, known[n].low))
    floor = known[best].low
    return {name for name, iv in known.items() if name != best and iv.high + margin < floor}
