"""Fit a run (or the seeds of a recipe) up to a compute budget, predict beyond it, and backtest.

:func:`fit_curve` is the fit of record: a law fitted to the points up to ``budget`` (ScaleRL's
sigmoid by default, fitted as in ``analysis/fit.py``), bootstrapped for intervals
(``analysis/bootstrap.py``), together with all the run's points so that plots and backtests can
show what was fitted, what was skipped and what came later. ScaleRL (Khatri et al. 2025, Fig. 1)
validates its recipe the same way: fit up to 50k GPU-hours, extrapolate to 100k, compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.bootstrap import Bootstrap, Interval, bootstrap, interval_warnings, predict
from analysis.curves import ALL_LAWS
from analysis.fit import Fit, FitError, PriorTerm, check_points, fit_law, fit_sigmoid, split_points
from analysis.readers import Run, series

Array = np.ndarray


@dataclass(frozen=True)
class CurveFit:
    """A fitted law with its bootstrap, and every point of the run(s) it came from."""

    label: str
    fit: Fit
    boot: Bootstrap
    x: Array
    y: Array
    groups: Array
    x_key: str
    y_key: str
    skip: float = 0.0
    """Points below this x were left out of the fit (ScaleRL's early low-compute regime)."""
    budget: float | None = None
    """Only points up to this x were fitted; later points are for checking the prediction."""
    runs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Warnings from the intervals (see ``bootstrap.interval_warnings``), beside the fit's own."""

    def interval(self, name: str) -> Interval:
        return self.boot.intervals[name]

    @property
    def asymptote(self) -> Interval:
        return self.boot.intervals["asymptote"]

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.fit.warnings + self.notes

    @property
    def identified(self) -> bool:
        return not self.warnings

    @property
    def fitted_range(self) -> tuple[float, float]:
        return float(self.fit.x.min()), float(self.fit.x.max())


@dataclass(frozen=True)
class Prediction:
    """The fitted curve at ``at`` (interval for the curve) and the interval for one eval there."""

    at: float
    curve: Interval
    eval: Interval
    observed: float | None = None

    @property
    def error(self) -> float | None:
        return None if self.observed is None else self.observed - self.curve.value


def fit_curve(
    x: Array,
    y: Array,
    groups: Array | None = None,
    *,
    law: str = "sigmoid",
    label: str = "run",
    budget: float | None = None,
    skip_below: float | None = None,
    skip_fraction: float = 0.1,
    r0: float | None = None,
    fixed: dict[str, float] | None = None,
    n_boot: int = 300,
    scheme: str = "auto",
    level: float = 0.95,
    seed: int = 0,
    x_key: str = "compute/flops",
    y_key: str = "val/accuracy",
    runs: tuple[str, ...] = (),
    prior: PriorTerm | None = None,
) -> CurveFit:
    """Fit ``law`` to the points with x <= ``budget`` and bootstrap it.

    For the sigmoid (and its creep variant), R0 and the skipped early compute follow ScaleRL (see
    ``fit_sigmoid``), and ``prior`` (``analysis/prior.py``) makes the fit a posterior one; the power
    law skips the same early compute; the entropy law takes every point up to the budget.
    ``groups`` labels each point's run (seed); ``fixed`` holds parameters not fitted (e.g. a shared
    A when comparing efficiencies).
    """
    x, y = check_points(x, y, x_key, y_key)
    groups = np.zeros(x.size, dtype=int) if groups is None else np.asarray(groups)
    if law in ("sigmoid", "creep"):
        fit = fit_sigmoid(
            x,
            y,
            groups=groups,
            r0=r0,
            fixed=fixed,
            skip_below=skip_below,
            skip_fraction=skip_fraction,
            up_to=budget,
            x_name=x_key,
            y_name=y_key,
            law=ALL_LAWS[law],
            prior=prior,
        )
        skip = split_points(x, y, groups, skip_below=skip_below, skip_fraction=skip_fraction, up_to=budget)[2]
    else:
        keep = np.ones(x.size, dtype=bool) if budget is None else x <= budget
        skip = float(x.min())
        if ALL_LAWS[law].x_positive:  # a power law in compute: like the sigmoid, leave out the early regime
            skip = float(skip_below) if skip_below is not None else skip_fraction * float(x[keep].max(initial=0.0))
            keep &= (x > 0) & (x >= skip)
        fit = fit_law(law, x[keep], y[keep], fixed=fixed, groups=groups[keep], x_name=x_key, y_name=y_key)
    boot = bootstrap(fit, n_boot=n_boot, scheme=scheme, level=level, seed=seed)
    notes = tuple(interval_warnings(fit, boot))
    return CurveFit(label, fit, boot, x, y, groups, x_key, y_key, skip, budget, runs, notes)


def runs_points(runs: list[Run], x_key: str, y_key: str, need_x: bool = True) -> tuple[Array, Array, Array]:
    """Pool the points of several runs (seeds of one recipe), labelling each with its run's index."""
    xs, ys, gs = [], [], []
    for i, run in enumerate(runs):
        x, y = series(run, x_key, y_key, need_x=need_x)
        xs.append(x), ys.append(y), gs.append(np.full(x.size, i))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def fit_runs(
    runs: list[Run],
    *,
    x_key: str = "compute/flops",
    y_key: str = "val/accuracy",
    label: str | None = None,
    **kwargs,
) -> CurveFit:
    """Fit one curve to one run, or to the pooled seeds of one recipe (seed-level intervals)."""
    if not runs:
        raise FitError("no runs to fit")
    x, y, g = runs_points(runs, x_key, y_key)
    name = label or (runs[0].name if len(runs) == 1 else "+".join(r.name for r in runs))
    return fit_curve(x, y, g, label=name, x_key=x_key, y_key=y_key, runs=tuple(r.name for r in runs), **kwargs)


def predict_at(cf: CurveFit, at: float) -> Prediction:
    """The curve at compute ``at`` with its interval, and the interval for one eval there."""
    curve, one_eval = predict(cf.fit, cf.boot, float(at))
    return Prediction(float(at), curve, one_eval)


@dataclass(frozen=True)
class Backtest:
    """What a fit up to ``budget`` predicted for the points after it, and what the run did."""

    budget: float
    predictions: list[Prediction] = field(default_factory=list)
    full_asymptote: Interval | None = None
    """A fitted to the whole run, to set against the budget fit's."""

    @property
    def mean_abs_error(self) -> float:
        return float(np.mean([abs(p.error) for p in self.predictions])) if self.predictions else float("nan")

    @property
    def final(self) -> Prediction | None:
        return self.predictions[-1] if self.predictions else None

    @property
    def inside(self) -> float:
        """Fraction of later evals inside their 95% interval for one eval."""
        if not self.predictions:
            return float("nan")
        return float(np.mean([p.eval.contains(p.observed) for p in self.predictions]))


def backtest(cf: CurveFit, full: CurveFit | None = None) -> Backtest:
    """Compare the fit's predictions with the run's evals after its budget.

    ``cf`` must have been fitted with a budget; ``full`` is an optional fit of the whole run, whose
    asymptote is reported beside the budget fit's.
    """
    if cf.budget is None:
        raise FitError("a backtest needs a fit with a budget (fit_curve(..., budget=C)); this fit used every point")
    later = cf.x > cf.budget
    if not later.any():
        raise FitError(f"the run has no evals after the budget {cf.budget:g}: nothing to check the prediction against")
    preds = []
    xs, ys = cf.x[later], cf.y[later]
    order = np.argsort(xs, kind="stable")
    for at, obs in zip(xs[order], ys[order]):
        p = predict_at(cf, at)
        preds.append(Prediction(p.at, p.curve, p.eval, float(obs)))
    return Backtest(float(cf.budget), preds, full.asymptote if full is not None else None)
