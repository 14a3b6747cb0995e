"""Every way Asymptote can predict a run from a prefix, behind one signature, so they can be scored
side by side (``bench/prediction.py``) and chosen by name.

A method takes the run's eval points, the compute budget it may look at, and the computes to predict
at, and returns a :class:`Forecast`: the predicted curve there with the 95% interval for the mean of
``n_end`` evals at the last one (a measured plateau) and the interval for one eval at each (a later
eval). Methods:

* ``sigmoid``: the fit of record, ScaleRL's Eq. (1) (``analysis.extrapolate.fit_curve``);
* ``creep``: Eq. (1) with a tail exponent (``analysis.laws.creep_sigmoid``), fitted the same way;
* ``prior``: the creep law fitted under a prior learned from finished runs (``analysis/prior.py``);
* ``power``: the power law A - D C^-B on the same points;
* ``laws``: ScaleRL's sigmoid and the creep law, weighted from the prefix alone (leave-future-out
  validation, as the ensemble weighs its families), intervals from the mixture;
* ``ensemble``: Domhan et al.'s eleven families weighted from the prefix (``analysis/ensemble.py``);
* ``last``: the last evals' level persists (the mean of the last three, with their noise);
* ``loglinear``: a straight line in log-compute through the fitted points, with its t-interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import t as t_dist

from analysis.bootstrap import Interval, predict
from analysis.fit import FitError, noise_scale, split_points

Array = np.ndarray
LEVEL = 0.95


@dataclass(frozen=True)
class Forecast:
    """What a method predicted from the evals up to ``budget``."""

    method: str
    budget: float
    at: Array
    curve: list[Interval]
    """The curve at each ``at`` with the interval for the curve."""
    one_eval: list[Interval]
    """The interval for one eval at each ``at``."""
    end: Interval
    """The interval for the mean of ``n_end`` evals at the last ``at``."""
    asymptote: Interval | None = None
    warnings: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)
    identified: bool = False
    """The method calls its asymptote identified (``analysis.verdict.verdict``)."""


@dataclass(frozen=True)
class Context:
    """What a method may know beyond the points: a prior and the run's compute per step."""

    prior: object | None = None
    step_compute: float | None = None
    n_boot: int = 300
    seed: int = 0
    n_end: int = 5
    skip_fraction: float = 0.1


def _from_curvefit(name: str, cf, at: Array, ctx: Context) -> Forecast:
    from analysis.verdict import verdict

    curve, one = [], []
    for a in at:
        c, o = predict(cf.fit, cf.boot, float(a))
        curve.append(c), one.append(o)
    _, end = predict(cf.fit, cf.boot, float(at[-1]), n_evals=ctx.n_end)
    details = {k: float(v) for k, v in cf.fit.params.items()}
    v = verdict(cf)
    details["not_identified_because"] = list(v.reasons)
    return Forecast(name, float(cf.budget), at, curve, one, end, cf.asymptote, tuple(cf.warnings), details,
                    v.identified)


def _law_method(law: str) -> Callable[[Array, Array, float, Array, Context], Forecast]:
    def method(x: Array, y: Array, budget: float, at: Array, ctx: Context) -> Forecast:
        from analysis.extrapolate import fit_curve

        cf = fit_curve(x, y, law=law, budget=budget, n_boot=ctx.n_boot, seed=ctx.seed, skip_fraction=ctx.skip_fraction)
        return _from_curvefit(law, cf, at, ctx)

    return method


def prior_method(x: Array, y: Array, budget: float, at: Array, ctx: Context) -> Forecast:
    """The creep law under ``ctx.prior`` (a fit without a prior when there is none)."""
    from analysis.prior import prior_fit

    cf = prior_fit(x, y, ctx.prior, step=ctx.step_compute, budget=budget, n_boot=ctx.n_boot, seed=ctx.seed,
                   skip_fraction=ctx.skip_fraction)
    return _from_curvefit("prior", cf, at, ctx)


def _ensemble_method(name: str, families: tuple[str, ...] | None):
    def method(x: Array, y: Array, budget: float, at: Array, ctx: Context) -> Forecast:
        return ensemble_forecast(name, families, x, y, budget, at, ctx)

    return method


def ensemble_forecast(name: str, families: tuple[str, ...] | None, x: Array, y: Array, budget: float, at: Array,
                      ctx: Context) -> Forecast:
    from analysis.ensemble import DEFAULT_FAMILIES, fit_ensemble

    keep = (x > 0) & (x <= budget)
    ens = fit_ensemble(x[keep], y[keep], families or DEFAULT_FAMILIES, seed=ctx.seed)
    curve, one = [], []
    for a in at:
        c, o = ens.predict(float(a), seed=ctx.seed)
        curve.append(c), one.append(o)
    _, end = ens.predict(float(at[-1]), n_evals=ctx.n_end, seed=ctx.seed)
    return Forecast(name, budget, at, curve, one, end, None, (), {"weights": ens.weights})


def _window(x: Array, y: Array, budget: float, ctx: Context) -> tuple[Array, Array]:
    anchor, fitted, _ = split_points(x, y, skip_fraction=ctx.skip_fraction, up_to=budget)
    if fitted.sum() < 3:
        raise FitError(f"{int(fitted.sum())} eval point(s) up to {budget:.4g}: need at least 3")
    return x[fitted], y[fitted]


def last_value(x: Array, y: Array, budget: float, at: Array, ctx: Context) -> Forecast:
    """The level of the last three evals persists: its interval holds their mean's noise and one
    eval's (or ``n_end`` evals') noise, sd from successive differences; no drift."""
    xs, ys = _window(x, y, budget, ctx)
    level = float(np.mean(ys[-3:]))
    sd = noise_scale(xs, ys)
    z = 1.959963984540054

    def iv(n: int) -> Interval:
        h = z * sd * np.sqrt(1 / 3 + 1 / n)
        return Interval(level, level - h, level + h)

    curve = [Interval(level, level - z * sd / np.sqrt(3), level + z * sd / np.sqrt(3)) for _ in at]
    return Forecast("last", budget, at, curve, [iv(1) for _ in at], iv(ctx.n_end))


def log_linear(x: Array, y: Array, budget: float, at: Array, ctx: Context) -> Forecast:
    """Ordinary least squares of y on ln C over the fitted points; Student-t intervals for the line
    and for new evals (one, or the mean of ``n_end``)."""
    xs, ys = _window(x, y, budget, ctx)
    X = np.column_stack([np.ones(xs.size), np.log(xs)])
    coef, *_ = np.linalg.lstsq(X, ys, rcond=None)
    dof = xs.size - 2
    s2 = float(np.sum((ys - X @ coef) ** 2)) / dof
    XtXi = np.linalg.inv(X.T @ X)
    tq = float(t_dist.ppf(0.5 + LEVEL / 2, dof))

    def at_point(a: float, n: int | None) -> Interval:
        v = np.array([1.0, np.log(a)])
        m = float(v @ coef)
        var = s2 * float(v @ XtXi @ v) + (0.0 if n is None else s2 / n)
        return Interval(m, m - tq * np.sqrt(var), m + tq * np.sqrt(var))

    return Forecast("loglinear", budget, at, [at_point(a, None) for a in at], [at_point(a, 1) for a in at],
                    at_point(float(at[-1]), ctx.n_end))


METHODS: dict[str, Callable[[Array, Array, float, Array, Context], Forecast]] = {
    "sigmoid": _law_method("sigmoid"),
    "creep": _law_method("creep"),
    "prior": prior_method,
    "power": _law_method("power"),
    "laws": _ensemble_method("laws", ("mmf", "creep")),
    "ensemble": _ensemble_method("ensemble", None),
    "last": last_value,
    "loglinear": log_linear,
}


def forecast(method: str, x: Array, y: Array, budget: float, at: Array, ctx: Context | None = None) -> Forecast:
    """Predict the run (x, y) at each compute in ``at`` from its evals up to ``budget`` with ``method``."""
    if method not in METHODS:
        raise ValueError(f"unknown prediction method {method!r}; known: {', '.join(METHODS)}")
    at = np.atleast_1d(np.asarray(at, dtype=float))
    return METHODS[method](np.asarray(x, float), np.asarray(y, float), float(budget), at, ctx or Context())
