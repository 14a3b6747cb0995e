"""What a fit may promise: a ceiling, or the value at a stated compute.

An asymptote printed as *identified* is a promise about compute nobody has run yet: that the run,
continued, stays inside the 95% interval for A. The promise is checked on the stored corpus
(``bench/prediction.py --report``, the "identified A held" column): for every prefix fit that calls
its A identified, A's interval must contain the run's measured end and the value at twice the run's
final compute (by the run's own full fit), in at least 90% of cases.

A fit calls its A identified when all of these hold:

* it gives no warning (``Fit.warnings`` and the interval warnings: the curve bends inside the data,
  no parameter at a bound, A's interval narrower than half the predicted gain, A not piled at the
  top of its range);
* **the run has stopped rising**: over the last doubling of the fitted compute, the evals' least-
  squares slope in log-compute is not significantly positive (one-sided t-test at 5%). RL runs creep
  up for a long time after their bend (every GRPO run of the stored corpus still rose significantly
  over its last doubling); a run that is still rising has not shown its ceiling, whatever a law
  extrapolates;
* **the ceiling is in reach**: the fitted curve at ``REACH`` times the last fitted compute is already
  inside A's interval. A curve still creeping (the slow phase after the bend) is far from its A at
  the end of the data and beyond; its A is an extrapolation of the creep, which a prefix measures
  worst, and it is not called identified however narrow its interval;
* **the ceiling does not hang on the law**: the other law fitted to the same points (the creep law
  for ScaleRL's sigmoid, the sigmoid for the creep law) puts A inside the same interval. Where the
  two laws disagree, A is a choice of law, not a measurement.

Otherwise the fit promises the value at ``HORIZON`` times its last fitted compute, with its 95%
interval: an extrapolation the benchmark checks (from half of a run, its end). Where the run is still
rising, the law's interval alone is too low (a sigmoid flattens where RL runs keep creeping), so the
promise's upper end reaches at least the 95% upper bound of the rise of the last doubling continued
in log-compute (``continued_rise``; the law's point estimate stays the point), capped at the top of
A's range. Fitted on half of each of the 11 stored runs, the promise held the run's end in 8 (the
law's interval alone: 6; median width 0.040 against 0.025); the 3 misses are runs flat over the
half's last doubling that rose again later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import Interval, predict

REACH = 4.0
HORIZON = 2.0


@dataclass(frozen=True)
class Verdict:
    identified: bool
    asymptote: Interval
    at: float
    """The compute the fallback promise is stated at: HORIZON times the last fitted compute."""
    value: Interval
    """The curve at ``at`` with its 95% interval."""
    reasons: tuple[str, ...]
    """Why A is not called identified (empty when it is)."""


def other_law_asymptote(cf) -> tuple[str, float] | None:
    """The other law of the pair (sigmoid, creep) fitted freely to the same points: (its name, its A);
    None for other laws, or where it cannot be fitted."""
    from analysis.fit import FitError, fit_sigmoid
    from analysis.laws import CREEP, SIGMOID

    other = {"sigmoid": CREEP, "creep": SIGMOID}.get(cf.fit.law)
    if other is None:
        return None
    try:
        fit = fit_sigmoid(cf.x, cf.y, groups=cf.groups, skip_below=cf.skip, up_to=cf.budget, law=other)
    except (FitError, ValueError, np.linalg.LinAlgError):
        return None
    return other.name, float(fit.params["A"])


def _last_doubling_line(x: np.ndarray, y: np.ndarray, min_points: int):
    """The least-squares line in log-compute through the points of the last doubling of ``x``:
    (coefficients, inverse of X'X, residual variance, degrees of freedom); None with fewer than
    ``min_points`` such points."""
    keep = x >= float(np.max(x)) / 2
    if keep.sum() < min_points:
        return None
    X = np.column_stack([np.ones(int(keep.sum())), np.log(x[keep])])
    coef, *_ = np.linalg.lstsq(X, y[keep], rcond=None)
    dof = int(keep.sum()) - 2
    s2 = float(np.sum((y[keep] - X @ coef) ** 2)) / dof
    return coef, np.linalg.inv(X.T @ X), s2, dof


def still_rising(x: np.ndarray, y: np.ndarray, level: float = 0.05) -> tuple[float, float] | None:
    """(rise per doubling, one-sided p) of the least-squares line in log-compute through the points of the
    last doubling of ``x``, where that rise is significantly positive at ``level``; None where it is not
    (or where fewer than 4 points lie in the last doubling)."""
    from scipy.stats import t as t_dist

    line = _last_doubling_line(x, y, 4)
    if line is None:
        return None
    coef, inv, s2, dof = line
    se = float(np.sqrt(s2 * inv[1, 1]))
    if se == 0.0:
        return None
    p = float(t_dist.sf(coef[1] / se, dof))
    return (float(coef[1] * np.log(2.0)), p) if p < level else None


def continued_rise(x: np.ndarray, y: np.ndarray, at: float, level: float = 0.95) -> float:
    """The upper end of the two-sided ``level`` confidence interval, at ``at``, of the least-squares line
    in log-compute through the points of the last doubling of ``x``: where the recent rise, continued,
    would take the curve (nan with fewer than 3 such points)."""
    from scipy.stats import t as t_dist

    line = _last_doubling_line(x, y, 3)
    if line is None:
        return float("nan")
    coef, inv, s2, dof = line
    v = np.array([1.0, np.log(at)])
    se = float(np.sqrt(s2 * v @ inv @ v))
    return float(v @ coef + t_dist.ppf(0.5 + level / 2, dof) * se)


def verdict(cf, reach: float = REACH, horizon: float = HORIZON, check_law: bool = True) -> Verdict:
    """The verdict on a :class:`analysis.extrapolate.CurveFit` (see the module doc); ``check_law=False``
    skips refitting the other law."""
    last = float(cf.fitted_range[1])
    a = cf.asymptote
    reasons = list(cf.warnings)
    rising = still_rising(cf.fit.x, cf.fit.y)
    if rising is not None:
        reasons.append(
            f"the run is still rising: {rising[0]:+.3f} per doubling of compute over the last doubling fitted "
            f"(one-sided p = {rising[1]:.3f})"
        )
    if "R0" in cf.fit.params:  # ScaleRL's sigmoid and the creep law: the curve approaches A from below
        far, _ = predict(cf.fit, cf.boot, reach * last)
        if not a.low <= far.value:
            reasons.append(
                f"the fitted curve at {reach:g}x the last fitted compute ({far.value:.3f}) is still below A's "
                f"interval [{a.low:.3f}, {a.high:.3f}]: the run would still be creeping there"
            )
    other = other_law_asymptote(cf) if check_law and not reasons else None
    if other is not None and not a.contains(other[1]):
        reasons.append(
            f"the {other[0]} law fitted to the same points puts A at {other[1]:.3f}, outside [{a.low:.3f}, "
            f"{a.high:.3f}]: the ceiling depends on the law assumed"
        )
    value, _ = predict(cf.fit, cf.boot, horizon * last)
    if rising is not None:  # the law's interval stops short of a rise that has not stopped
        from analysis.laws import a_range

        top = a_range(cf.fit.y, float(cf.fit.params.get("R0", cf.fit.y[0])))[1]
        high = min(continued_rise(cf.fit.x, cf.fit.y, horizon * last, value.level), top)
        if high > value.high:
            value = Interval(value.value, value.low, high, value.level)
    return Verdict(not reasons, a, horizon * last, value, tuple(reasons))


def verdict_text(v: Verdict, label: str, y_key: str, x_key: str) -> str:
    """One line: the identified asymptote, or what the fit promises instead."""
    level = round(100 * v.asymptote.level)
    a = f"{v.asymptote.value:.3f} [{v.asymptote.low:.3f}, {v.asymptote.high:.3f}]"
    if v.identified:
        return f"predicted asymptote of {y_key} for {label}: {a} ({level}% interval), identified"
    at = np.format_float_scientific(v.at, precision=3) if v.at >= 1e5 else f"{v.at:.4g}"
    return (f"{label}: the fit does not promise a ceiling (A = {a} is an extrapolation); it promises "
            f"{y_key} = {v.value.value:.3f} [{v.value.low:.3f}, {v.value.high:.3f}] ({level}% interval) at "
            f"{x_key} = {at}, {HORIZON:g}x its last fitted compute")
