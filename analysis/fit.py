"""Robust least-squares fits of the laws in ``analysis/laws.py``.

How a law is fitted (:func:`fit_law`):

* bounded parameters (``Law.bounds``, from the data), searched in log space where the law says so
  (ScaleRL's C_mid, so that GPU-hours and FLOPs fit alike);
* several starting points (``Law.starts``); the start with the lowest loss wins;
* ``scipy.optimize.least_squares`` with the ``soft_l1`` loss, quadratic for residuals below
  ``f_scale`` (twice a robust estimate of the eval noise) and linear beyond, so that one bad eval
  does not drag the asymptote;
* clear errors for inputs that cannot be fitted (empty, NaN, one point, constant, too few points
  for the parameters) and warnings, in ``Fit.warnings``, when the fit is poorly identified.

:func:`fit_sigmoid` adds what ScaleRL (Khatri et al. 2025, Sec. 2.1 and App. A.5-A.7) does around
Eq. (1): R0 is held fixed at the performance before RL (the eval at compute 0), and the early,
low-compute part of the run is left out of the fit ("all our scaling fits begin after ~1.5k GPU
hours", about one epoch, where reward rises almost linearly before following the sigmoid). Where
the paper grid-searches A and C_mid and fits B by ``curve_fit``, we fit A, B and C_mid jointly
from several starts with bounds and a robust loss; on clean data both find the same minimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import f as f_dist

from analysis.curves import ALL_LAWS
from analysis.laws import SIGMOID, Law

Array = np.ndarray


class FitError(ValueError):
    """Points that cannot be fitted; the message says what is wrong and what is expected."""


@dataclass(frozen=True)
class PriorTerm:
    """A Gaussian prior on functions of a law's parameters, added to the least-squares objective.

    ``z(params)`` maps the parameters to the prior's coordinates (e.g. log B, log tau); the prior
    is z ~ N(mean, cov) with ``whiten`` = L^-1 for cov = L L'. The fit minimises
    sum(r_i^2) + (scale * |L^-1 (z - mean)|)^2 under the same robust loss as the residuals, so
    ``scale`` (the eval noise sd, inflated for correlated evals) puts the prior in the residuals'
    units: a maximum a posteriori fit whose prior turns linear beyond two standard deviations
    (a heavy-tailed prior, so that a run unlike the prior's runs can still move away from it).
    ``analysis/prior.py`` builds these from finished runs.
    """

    z: Callable[[dict[str, float]], Array]
    mean: Array
    whiten: Array
    chol: Array
    scale: float
    dof: float | None = None
    """Degrees of freedom of the prior's spread where it was estimated from few groups (a prior from F
    task families: F - 1): the recentring draws are then multivariate-t, not Gaussian."""

    def residuals(self, params: dict[str, float]) -> Array:
        return self.scale * (self.whiten @ (self.z(params) - self.mean))

    def recentred(self, rng: np.random.Generator) -> "PriorTerm":
        """The same prior centred on a draw from itself: each bootstrap refit uses one, which turns the
        bootstrap into randomise-then-optimise sampling of the posterior (exact for a linear-Gaussian
        model; Bardsley et al. 2014, SIAM J. Sci. Comput.). With ``dof``, the draw is multivariate-t: a
        spread estimated from F groups is itself uncertain, and a new group can lie further out."""
        step = self.chol @ rng.standard_normal(self.mean.size)
        if self.dof is not None:
            step *= np.sqrt(self.dof / rng.chisquare(self.dof))
        return replace(self, mean=self.mean + step)


@dataclass(frozen=True)
class Fit:
    """A fitted law: its parameters, the points it was fitted to, and how well it is identified.

    ``params`` holds every parameter of the law, the fixed ones included; ``free`` names those that
    were fitted. ``groups`` labels each point with its run (seed) when several runs were pooled.
    ``anchor`` holds the measurements a fixed parameter came from (ScaleRL's R0: each run's first
    eval), so that the bootstrap can resample them too. ``f_scale`` is the robust loss's scale.
    """

    law: str
    params: dict[str, float]
    free: tuple[str, ...]
    x: Array
    y: Array
    groups: Array
    bounds: dict[str, tuple[float, float]]
    f_scale: float
    anchor: Array = field(default_factory=lambda: np.zeros(0))
    anchor_groups: Array = field(default_factory=lambda: np.zeros(0, dtype=int))
    warnings: tuple[str, ...] = ()
    prior: PriorTerm | None = None
    """The prior the fit was made under (``analysis/prior.py``), or None for a plain least-squares fit."""
    noise: tuple[float, float] | None = None
    """(phi, sd) of the eval noise where it was measured apart from this fit's residuals (a fit under a
    prior: its residuals also hold the prior's pull on the curve, which is not eval noise); None: the
    bootstrap estimates them from the residuals."""

    @property
    def fixed(self) -> dict[str, float]:
        return {k: v for k, v in self.params.items() if k not in self.free}

    @property
    def fitted(self) -> Array:
        return ALL_LAWS[self.law].fn(self.x, **self.params)

    @property
    def residuals(self) -> Array:
        return self.y - self.fitted

    @property
    def sigma(self) -> float:
        """Residual standard deviation, sqrt(RSS / (n - p))."""
        dof = max(self.x.size - len(self.free), 1)
        return float(np.sqrt(np.sum(self.residuals**2) / dof))

    @property
    def asymptote(self) -> float:
        return float(ALL_LAWS[self.law].asymptote(self.params))

    @property
    def identified(self) -> bool:
        return not self.warnings


# --------------------------------------------------------------------------------------------
# Checks with messages that say what is wrong
# --------------------------------------------------------------------------------------------


def check_points(x: Array, y: Array, x_name: str = "x", y_name: str = "y") -> tuple[Array, Array]:
    """Return x, y as float arrays, or raise FitError naming the problem (empty, NaN, lengths)."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.size != y.size:
        raise FitError(f"{x_name} has {x.size} values and {y_name} has {y.size}: they must pair up")
    if x.size == 0:
        raise FitError(f"no points to fit: {x_name} and {y_name} are empty")
    for name, v in ((x_name, x), (y_name, y)):
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise FitError(
                f"{name} has {bad.size} non-finite value(s) (NaN or inf) at positions {bad[:10].tolist()}; "
                "every point must be a finite number"
            )
    return x, y


def _check_fittable(law: Law, x: Array, y: Array, n_free: int, x_name: str, y_name: str, n_prior: int = 0) -> None:
    """Points a law can be fitted to: two more than its parameters (to estimate the noise), or, under a
    prior of ``n_prior`` components (its noise measured apart), one more than the parameters it leaves."""
    if law.x_positive and np.any(x <= 0):
        raise FitError(
            f"the {law.name} law needs {x_name} > 0 at every fitted point; got {np.sort(x[x <= 0])[:5].tolist()}"
        )
    need = n_free + 2 if not n_prior else max(n_free - n_prior, 1) + 1
    if x.size < need:
        why = "two more than the parameters, to estimate the noise" if not n_prior else (
            f"one more than the parameters the prior's {n_prior} components leave")
        raise FitError(f"{x.size} point(s) to fit {n_free} parameters of the {law.name} law: need at least {need} ({why})")
    if np.ptp(x) == 0:
        raise FitError(f"all {x.size} points have the same {x_name} = {x[0]:g}: a curve needs several x values")
    if np.ptp(y) == 0:
        raise FitError(f"{y_name} is constant ({y[0]:g} at all {y.size} points): there is no curve to fit")


def noise_scale(x: Array, y: Array) -> float:
    """A robust estimate of the eval noise sd: the MAD of successive differences (sorted by x) / sqrt 2."""
    d = np.diff(y[np.argsort(x, kind="stable")])
    if d.size == 0:
        return 0.0
    s = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    if s == 0.0:  # quantized accuracies can make most differences equal
        s = float(np.std(d)) / np.sqrt(2.0)
    return s


# --------------------------------------------------------------------------------------------
# The solver: bounded, multi-start, robust least squares in internal (log) coordinates
# --------------------------------------------------------------------------------------------


def _to_internal(law: Law, names: tuple[str, ...], values: dict[str, float]) -> Array:
    return np.array([np.log(values[n]) if n in law.log_params else values[n] for n in names], dtype=float)


def _to_public(law: Law, names: tuple[str, ...], theta: Array) -> dict[str, float]:
    return {n: float(np.exp(t)) if n in law.log_params else float(t) for n, t in zip(names, theta)}


def _internal_bounds(law: Law, names: tuple[str, ...], bounds: dict[str, tuple[float, float]]) -> tuple[Array, Array]:
    lo = _to_internal(law, names, {n: bounds[n][0] for n in names})
    hi = _to_internal(law, names, {n: bounds[n][1] for n in names})
    return lo, hi


def solve(
    law: Law,
    x: Array,
    y: Array,
    fixed: dict[str, float],
    free: tuple[str, ...],
    bounds: dict[str, tuple[float, float]],
    starts: list[dict[str, float]],
    f_scale: float,
    prior: PriorTerm | None = None,
) -> tuple[dict[str, float], float]:
    """Minimize the soft_l1 loss from each start; return the best parameters (all) and its cost.
    With a ``prior``, its residuals are appended to the data's (a maximum a posteriori fit)."""
    lo, hi = _internal_bounds(law, free, bounds)
    width = hi - lo

    def residuals(theta: Array) -> Array:
        params = _to_public(law, free, theta)
        r = law.fn(x, **fixed, **params) - y
        return r if prior is None else np.append(r, prior.residuals({**fixed, **params}))

    best_theta, best_cost = None, np.inf
    for start in starts:
        theta0 = np.clip(_to_internal(law, free, start), lo + 1e-6 * width, hi - 1e-6 * width)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = least_squares(residuals, theta0, bounds=(lo, hi), loss="soft_l1", f_scale=f_scale, method="trf")
        if np.isfinite(res.cost) and res.cost < best_cost:
            best_theta, best_cost = res.x, float(res.cost)
    if best_theta is None:
        raise FitError(f"the {law.name} fit failed from every starting point (non-finite loss)")
    return {**fixed, **_to_public(law, free, best_theta)}, best_cost


def fit_law(
    law: str | Law,
    x: Array,
    y: Array,
    *,
    fixed: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
    groups: Array | None = None,
    x_name: str = "x",
    y_name: str = "y",
    prior: PriorTerm | None = None,
    starts: list[dict[str, float]] | None = None,
) -> Fit:
    """Fit ``law`` (a name in ``ALL_LAWS`` or a :class:`Law`) to the points (x, y).

    ``fixed`` holds parameters not fitted; ``bounds`` overrides the law's data-derived bounds for
    some parameters; ``starts`` replaces the law's starting points (e.g. a previous estimate). With a
    ``prior``, the prior's components count as observations: fewer points are needed. Raises
    :class:`FitError` for points that cannot be fitted; a fit that is poorly identified is returned
    with ``warnings``.
    """
    if isinstance(law, str):
        if law not in ALL_LAWS:
            raise FitError(f"unknown law {law!r}; known laws: {', '.join(ALL_LAWS)}")
        law = ALL_LAWS[law]
    x, y = check_points(x, y, x_name, y_name)
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(law.params)
    if unknown:
        raise FitError(f"fixed parameters {sorted(unknown)} are not parameters of the {law.name} law {law.params}")
    free = tuple(p for p in law.params if p not in fixed)
    _check_fittable(law, x, y, len(free), x_name, y_name, 0 if prior is None else prior.mean.size)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    groups = np.zeros(x.size, dtype=int) if groups is None else np.asarray(groups)[order]

    all_bounds = {**law.bounds(x, y, fixed), **(bounds or {})}
    f_scale = max(2.0 * noise_scale(x, y), 1e-3 * max(float(np.ptp(y)), 1e-3))
    params, _ = solve(law, x, y, fixed, free, all_bounds, starts or law.starts(x, y, fixed), f_scale, prior)
    fit = Fit(
        law=law.name,
        params=params,
        free=free,
        x=x,
        y=y,
        groups=groups,
        bounds={n: all_bounds[n] for n in free},
        f_scale=f_scale,
        prior=prior,
    )
    return _with_warnings(fit, identification_warnings(fit, law))


def _with_warnings(fit: Fit, warnings: list[str]) -> Fit:
    return replace(fit, warnings=tuple(fit.warnings) + tuple(warnings))


def identification_warnings(fit: Fit, law: Law) -> list[str]:
    """Say where the data cannot pin the parameters down: a parameter at its bound, and for the
    sigmoid, a midpoint beyond the data or data that never bends (no better than a line in log C)."""
    out = []
    for name in fit.free:
        lo, hi = fit.bounds[name]
        v = fit.params[name]
        if name in law.log_params:
            lo, hi, v = np.log(lo), np.log(hi), np.log(v)
        tol = 1e-6 * (hi - lo)  # least_squares ends exactly on an active bound
        if v - lo < tol or hi - v < tol:
            out.append(f"{name} = {fit.params[name]:.4g} is at the bound of its search range {fit.bounds[name]}")
    if "C_mid" in law.params:  # ScaleRL's sigmoid and its creep variant
        x_last = float(fit.x.max())
        if fit.params["C_mid"] > x_last:
            out.append(
                f"C_mid = {fit.params['C_mid']:.4g} lies beyond the last fitted point ({x_last:.4g}): the run has "
                "not reached half of its gain, so A is an extrapolation"
            )
        # Under a prior the shape comes partly from the prior, and a MAP curve that the prior pulls off
        # the points says nothing about whether the points bend: the width of A's interval speaks there.
        p = straight_line_p_value(fit) if fit.prior is None else 0.0
        if p > 0.05:
            out.append(
                "the data never bends: a straight line in log-compute fits as well as the sigmoid "
                f"(F-test p = {p:.2f}), so B and C_mid, and A while the curve still rises, are poorly identified"
            )
    return out


def straight_line_p_value(fit: Fit) -> float:
    """F-test of the sigmoid against R = c0 + c1 * ln C (two parameters) on the same points."""
    lx = np.log(fit.x)
    design = np.column_stack([np.ones_like(lx), lx])
    coef, *_ = np.linalg.lstsq(design, fit.y, rcond=None)
    rss_line = float(np.sum((fit.y - design @ coef) ** 2))
    rss_sig = float(np.sum(fit.residuals**2))
    extra = len(fit.free) - 2
    dof = fit.x.size - len(fit.free)
    if extra <= 0 or dof <= 0 or rss_sig <= 0:
        return 0.0 if rss_sig < rss_line else 1.0
    F = ((rss_line - rss_sig) / extra) / (rss_sig / dof)
    return float(f_dist.sf(max(F, 0.0), extra, dof))


# --------------------------------------------------------------------------------------------
# ScaleRL's procedure around Eq. (1)
# --------------------------------------------------------------------------------------------


def split_points(
    C: Array,
    R: Array,
    groups: Array | None = None,
    *,
    skip_below: float | None = None,
    skip_fraction: float = 0.1,
    up_to: float | None = None,
) -> tuple[Array, Array, float]:
    """Which points define R0, which are fitted, and the compute below which points are skipped.

    Returns (anchor, fitted, skip): boolean masks over the points and the skip threshold. The anchor
    is each run's first eval (smallest compute; ScaleRL's R0 is the pass rate before RL). Fitted are
    the other points with skip <= C <= up_to, where skip = ``skip_below`` if given, else
    ``skip_fraction`` of the last fitted compute (ScaleRL skips ~1.5k GPU-hours, about one epoch).
    """
    C = np.asarray(C, dtype=float)
    groups = np.zeros(C.size, dtype=int) if groups is None else np.asarray(groups)
    anchor = np.zeros(C.size, dtype=bool)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        anchor[idx[np.argmin(C[idx])]] = True
    window = ~anchor & (C > 0)
    if up_to is not None:
        window &= C <= up_to
    last = float(C[window].max()) if window.any() else 0.0
    skip = float(skip_below) if skip_below is not None else skip_fraction * last
    return anchor, window & (C >= skip), skip


def fit_sigmoid(
    C: Array,
    R: Array,
    *,
    groups: Array | None = None,
    r0: float | None = None,
    fixed: dict[str, float] | None = None,
    skip_below: float | None = None,
    skip_fraction: float = 0.1,
    up_to: float | None = None,
    x_name: str = "compute",
    y_name: str = "performance",
    law: Law = SIGMOID,
    prior: PriorTerm | None = None,
    starts: list[dict[str, float]] | None = None,
) -> Fit:
    """Fit ScaleRL's Eq. (1) the way the paper does (Sec. 2.1, App. A.5-A.7).

    R0 is held fixed: at ``r0`` if given, else at the mean of each run's first eval (which should be
    at compute 0, before RL). A, B and C_mid are fitted to the points with compute in
    [skip, up_to], skip as in :func:`split_points`. ``groups`` labels the run (seed) of each point
    when several runs of one recipe are pooled into one curve. ``fixed`` holds other parameters
    to hold fixed (ScaleRL Sec. 4 refits with a shared A to compare B). ``law`` may be the creep
    variant of Eq. (1) (``analysis.laws.CREEP``), fitted the same way; ``prior`` makes the fit a
    maximum a posteriori one (``analysis/prior.py``).
    """
    C, R = check_points(C, R, x_name, y_name)
    if np.any(C < 0):
        raise FitError(f"{x_name} must be >= 0 (cumulative compute); got {np.sort(C[C < 0])[:5].tolist()}")
    groups = np.zeros(C.size, dtype=int) if groups is None else np.asarray(groups)
    anchor, fitted, skip = split_points(C, R, groups, skip_below=skip_below, skip_fraction=skip_fraction, up_to=up_to)
    warnings = []
    measured_r0 = r0 is None
    if measured_r0:
        r0 = float(np.mean(R[anchor]))
        if np.any(C[anchor] > 0):
            warnings.append(
                f"no eval at {x_name} = 0: R0 is taken from the first eval (at {x_name} = {C[anchor].max():.4g})"
            )
    if fitted.sum() < (5 if prior is None else 3):
        raise FitError(
            f"{int(fitted.sum())} eval point(s) left to fit after skipping {x_name} below {skip:.4g}"
            + (f" and above {up_to:.4g}" if up_to is not None else "")
            + f" (of {C.size} points): need at least {5 if prior is None else 3}; run longer, evaluate more often "
            "or lower the skip"
        )
    fixed = {**(fixed or {}), "R0": r0}
    fit = fit_law(law, C[fitted], R[fitted], fixed=fixed, groups=groups[fitted], x_name=x_name, y_name=y_name,
                  prior=prior, starts=starts)
    if measured_r0:  # R0 is a noisy measurement too: the bootstrap resamples it
        fit = replace(fit, anchor=R[anchor], anchor_groups=groups[anchor])
    return _with_warnings(fit, warnings)
