"""Intervals for fitted parameters and predictions, by bootstrap over points or over seeds.

What an interval means. Within one run, the run follows one curve and its evals scatter around it
(a finite eval set, k samples per prompt, the policy wobbling between evals). The point-level 95%
interval covers the parameter of *that run's* curve in 95% of repeated runs of the evals; it does
not know how much another seed of the same recipe would differ (ScaleRL, Khatri et al. 2025,
App. A.5, puts that seed-to-seed spread of A at about +-0.02 from three runs). With several seeds of
one recipe, the seed-level interval covers the parameter of the recipe's curve.

Point level (one run; ``scheme="ar1"``, the default): a residual bootstrap (Davison & Hinkley 1997,
Sec. 6.3) whose noise may be correlated between neighbouring evals. The noise is modelled as AR(1)
with phi >= 0 and its phi and sd are estimated from the residuals, corrected for what the fit absorbs
(:func:`ar1_from_residuals`); each pseudo-run is the fitted curve plus AR(1) noise built from
resampled innovations. With phi = 0 this is the plain residual bootstrap with leverage-corrected
scale. R0, held fixed in the fit, is one more noisy eval: each pseudo-run moves it by a Gaussian draw
of the estimated noise sd. Each pseudo-run is refitted from the estimate. The interval is the
percentile interval of the refits with both half-widths multiplied by t_{dof} / z (quantiles at
(1 + level) / 2), dof = n_eff - p, n_eff = n (1 - phi) / (1 + phi): the small-sample correction of
a t-interval, with correlated evals counted as fewer. ``scheme="residual"`` (i.i.d.,
leverage-adjusted) and ``"wild"`` (Rademacher signs, for noise whose size changes along the run)
are there too; on the synthetic curves of ``bench/analysis_coverage.py`` the wild bootstrap
under-covered (its pseudo-runs keep every point's residual size), so it is not the default.

Seed level (several runs of one recipe; ``scheme="seeds"``): seeds are resampled with replacement (a
cluster bootstrap; a resampled seed keeps all its points) and the pooled curve refitted. With S seeds
the bootstrap spread is too small by sqrt((S - 1) / S) and normal quantiles are too narrow, so the
interval is estimate +- t_{S-1} * sqrt(S / (S - 1)) * sd(refits): for a mean over seeds this is exactly
Student's t-interval.

``bench/analysis_coverage.py`` measures how often these intervals contain the true parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, t as t_dist

from analysis.curves import ALL_LAWS
from analysis.fit import Fit, FitError, solve
from analysis.laws import Law

Array = np.ndarray

SIGMOIDS = ("sigmoid", "creep")
"""ScaleRL's Eq. (1) and its creep variant: curves between R0 and A, so their draws are cut to A's range."""


@dataclass(frozen=True)
class Interval:
    """A value with a two-sided interval at ``level`` (0.95: the stated 95% interval)."""

    value: float
    low: float
    high: float
    level: float = 0.95

    def contains(self, v: float) -> bool:
        return self.low <= v <= self.high

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class Bootstrap:
    """Bootstrap draws of every parameter (``draws[name]``, one value per successful refit), the
    intervals they give, and the residual pool used for intervals on future observations."""

    draws: dict[str, Array]
    intervals: dict[str, Interval]
    method: str
    scheme: str
    level: float
    n_boot: int
    n_failed: int
    noise: Array
    widen: float
    """The factor the percentile half-widths were multiplied by (t over z, see the module doc)."""
    phi: float = 0.0
    """Estimated lag-1 autocorrelation of the eval noise (the "ar1" scheme)."""


def hat_matrix(fit: Fit) -> Array:
    """H = J (J'J + P'P)^+ J' of the fit linearised at its estimate (J in internal, log, coordinates),
    P the Jacobian of the prior's residuals for a fit under a prior (none otherwise: H = J (J'J)^+ J').
    Its trace is the fit's effective number of parameters: a prior that pins a parameter takes it away."""
    law = ALL_LAWS[fit.law]
    names = fit.free
    theta = np.array([np.log(fit.params[n]) if n in law.log_params else fit.params[n] for n in names])

    def at(t: Array) -> dict[str, float]:
        return {**fit.params, **{n: float(np.exp(v)) if n in law.log_params else float(v) for n, v in zip(names, t)}}

    J = np.empty((fit.x.size, theta.size))
    P = np.empty((0 if fit.prior is None else fit.prior.mean.size, theta.size))
    for j in range(theta.size):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        J[:, j] = (law.fn(fit.x, **at(up)) - law.fn(fit.x, **at(down))) / (2 * h)
        if fit.prior is not None:
            P[:, j] = (fit.prior.residuals(at(up)) - fit.prior.residuals(at(down))) / (2 * h)
    return J @ np.linalg.pinv(J.T @ J + P.T @ P) @ J.T


def leverages(fit: Fit) -> Array:
    """Diagonal of the hat matrix, clipped below 1."""
    return np.clip(np.diag(hat_matrix(fit)), 0.0, 0.95)


def adjusted_residuals(fit: Fit) -> Array:
    """Residuals divided by sqrt(1 - h_ii), then centred (Davison & Hinkley 1997, Eq. 6.9)."""
    r = fit.residuals / np.sqrt(1.0 - leverages(fit))
    return r - r.mean()


def ar1_from_residuals(fit: Fit) -> tuple[float, float]:
    """(phi, sd) of AR(1) eval noise, corrected for what the fit absorbs.

    Residuals r = M e (M = I - H, H the hat matrix) are less autocorrelated than the noise e: the
    curve soaks up slow wobbles, and short series bias lag-1 correlations down. With R_phi the AR(1)
    correlation matrix and L the lag-1 averaging matrix, E[r'Lr] / E[r'r] = tr(M L M R_phi) / tr(M R_phi);
    phi solves that = the observed lag-1 autocorrelation (bisection on [0, 0.95]); the noise variance
    is RSS / tr(M R_phi).
    """
    n = fit.x.size
    M = np.eye(n) - hat_matrix(fit)
    L = (np.eye(n, k=1) + np.eye(n, k=-1)) / 2.0
    lags = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    r = fit.residuals

    def expected(phi: float) -> float:
        R = phi**lags
        return float(np.trace(M @ L @ M @ R) / np.trace(M @ R))

    observed = float(r @ L @ r / (r @ r)) if r @ r > 0 else 0.0
    lo, hi = 0.0, 0.95
    if observed <= expected(lo):
        phi = 0.0
    elif observed >= expected(hi):
        phi = hi
    else:
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expected(mid) < observed else (lo, mid)
        phi = (lo + hi) / 2
    sd = float(np.sqrt(np.sum(r**2) / np.trace(M @ phi**lags)))
    return phi, sd


def noise_of(fit: Fit) -> tuple[float, float]:
    """(phi, sd) of the eval noise: as measured apart from the fit (``Fit.noise``), else from its residuals."""
    return fit.noise if fit.noise is not None else ar1_from_residuals(fit)


def _ar1_noise(r: Array, phi: float, sd: float, rng: np.random.Generator) -> Array:
    """AR(1) noise with the given phi and marginal sd; innovations resampled from the residuals'."""
    z = r[1:] - phi * r[:-1] if r.size > 2 else r
    z = (z - z.mean()) / (z.std() or 1.0)
    u = rng.choice(z, size=r.size)
    out = np.empty(r.size)
    out[0] = sd * u[0]
    for i in range(1, r.size):
        out[i] = phi * out[i - 1] + sd * np.sqrt(1.0 - phi**2) * u[i]
    return out


def _refit(
    fit: Fit, law: Law, x: Array, y: Array, fixed: dict[str, float], rng: np.random.Generator
) -> dict[str, float]:
    """Refit a pseudo-dataset from the estimate; a fit made under a prior is refitted under the prior
    recentred on a draw from it (randomise-then-optimise, see ``PriorTerm.recentred``)."""
    start = {n: fit.params[n] for n in fit.free}
    prior = None if fit.prior is None else fit.prior.recentred(rng)
    params, _ = solve(law, x, y, fixed, fit.free, fit.bounds, [start], fit.f_scale, prior)
    return params


def _point_datasets(fit: Fit, scheme: str, rng: np.random.Generator):
    """Yield (x, y*, fixed*) pseudo-datasets for the point-level bootstrap."""
    r = adjusted_residuals(fit)
    fitted = fit.fitted
    if scheme == "ar1":
        phi, sd = noise_of(fit)
    while True:
        if scheme == "residual":
            noise = rng.choice(r, size=r.size)
        elif scheme == "wild":
            noise = r * rng.choice((-1.0, 1.0), size=r.size)
        elif scheme == "ar1":
            noise = _ar1_noise(fit.residuals, phi, sd, rng)
        else:
            raise ValueError(f"unknown bootstrap scheme {scheme!r}; use 'residual', 'wild', 'ar1' or 'seeds'")
        fixed = fit.fixed
        if fit.anchor.size and "R0" in fixed:
            # R0 = mean of the runs' first evals; each of them gets a resampled residual.
            extra = (
                rng.choice(r, size=fit.anchor.size) if scheme != "ar1" else sd * rng.standard_normal(fit.anchor.size)
            )
            fixed = {**fixed, "R0": fixed["R0"] + float(np.mean(extra))}
        yield fit.x, fitted + noise, fixed


def _seed_datasets(fit: Fit, rng: np.random.Generator):
    """Yield pseudo-datasets made of seeds drawn with replacement, each keeping all its points."""
    seeds = np.unique(fit.groups)
    while True:
        chosen = rng.choice(seeds, size=seeds.size)
        idx = np.concatenate([np.flatnonzero(fit.groups == s) for s in chosen])
        fixed = fit.fixed
        if fit.anchor.size and "R0" in fixed:
            r0 = [fit.anchor[fit.anchor_groups == s].mean() for s in chosen]
            fixed = {**fixed, "R0": float(np.mean(r0))}
        yield fit.x[idx], fit.y[idx], fixed


def bootstrap(
    fit: Fit,
    *,
    n_boot: int = 400,
    scheme: str = "auto",
    level: float = 0.95,
    seed: int = 0,
) -> Bootstrap:
    """Bootstrap ``fit``: refit ``n_boot`` pseudo-datasets and turn the draws into intervals.

    ``scheme``: "auto" is "seeds" when the fit pools several runs, else "ar1"; "residual" and
    "wild" are the alternatives described in the module doc.
    """
    law = ALL_LAWS[fit.law]
    n_seeds = np.unique(fit.groups).size
    if scheme == "auto":
        scheme = "seeds" if n_seeds > 1 else "ar1"
    if scheme == "seeds" and n_seeds < 2:
        raise FitError("the 'seeds' bootstrap needs at least 2 runs (seeds) pooled in the fit; got 1")
    rng = np.random.default_rng(seed)
    phi = noise_of(fit)[0] if scheme == "ar1" else 0.0
    datasets = _seed_datasets(fit, rng) if scheme == "seeds" else _point_datasets(fit, scheme, rng)

    rows, failed = [], 0
    for _ in range(n_boot):
        x, y, fixed = next(datasets)
        try:
            rows.append(_refit(fit, law, x, y, fixed, rng))
        except (FitError, ValueError, np.linalg.LinAlgError):
            failed += 1
    if len(rows) < max(20, n_boot // 2):
        raise FitError(
            f"only {len(rows)} of {n_boot} bootstrap refits succeeded: the fit is too unstable for intervals"
        )
    draws = {name: np.array([row[name] for row in rows]) for name in law.params}
    draws["asymptote"] = np.array([law.asymptote(row) for row in rows])

    estimate = {**fit.params, "asymptote": fit.asymptote}
    if scheme == "seeds":
        widen = float(t_dist.ppf(0.5 + level / 2, n_seeds - 1) * np.sqrt(n_seeds / (n_seeds - 1)))
    else:  # correlated evals carry less information: n_eff = n (1 - phi) / (1 + phi); under a prior
        # the parameters it pins count less (the effective number of parameters, trace of the hat matrix)
        p_eff = len(fit.free) if fit.prior is None else float(np.trace(hat_matrix(fit)))
        dof = max(fit.x.size * (1.0 - phi) / (1.0 + phi) - p_eff, 1.0)
        widen = float(t_dist.ppf(0.5 + level / 2, dof) / norm.ppf(0.5 + level / 2))
    summarize = _se_interval if scheme == "seeds" else _percentile_interval
    intervals = {k: summarize(estimate[k], v, widen, level, k in law.log_params) for k, v in draws.items()}
    intervals = {k: _clip(iv, _param_bounds(fit, k)) for k, iv in intervals.items()}
    method = {
        "residual": "bootstrap of leverage-adjusted residuals",
        "wild": "wild bootstrap of leverage-adjusted residuals",
        "ar1": f"residual bootstrap with AR(1) noise (phi = {phi:.2f})",
        "seeds": f"bootstrap over {n_seeds} seeds (t-corrected)",
    }[scheme]
    noise = adjusted_residuals(fit)
    return Bootstrap(draws, intervals, method, scheme, level, n_boot, failed, noise, widen, phi)


def _param_bounds(fit: Fit, name: str) -> tuple[float, float] | None:
    """The fit's search range of a parameter (the sigmoid's asymptote is its A), or None."""
    if name == "asymptote":
        name = "A" if fit.law in SIGMOIDS else name
    return fit.bounds.get(name)


def _clip(iv: Interval, bounds: tuple[float, float] | None) -> Interval:
    """The interval cut to the parameter's search range: a widened interval (few effective points,
    see the module doc) can reach past it, e.g. an accuracy asymptote above 1. Every estimate lies in
    that range, so cutting there cannot lower the coverage."""
    if bounds is None:
        return iv
    lo, hi = bounds
    return Interval(iv.value, min(max(iv.low, lo), iv.value), max(min(iv.high, hi), iv.value), iv.level)


def _percentile_interval(value: float, draws: Array, widen: float, level: float, log: bool) -> Interval:
    """Percentile interval of the draws, its two half-widths about the estimate times ``widen``."""
    tr, inv = (np.log, np.exp) if log else (lambda v: v, lambda v: v)
    v = tr(value)
    lo, hi = np.quantile(tr(draws), [0.5 - level / 2, 0.5 + level / 2])
    lo, hi = min(lo, v), max(hi, v)
    return Interval(float(value), float(inv(v - widen * (v - lo))), float(inv(v + widen * (hi - v))), level)


def _se_interval(value: float, draws: Array, widen: float, level: float, log: bool) -> Interval:
    """estimate +- widen * sd(draws): the t-interval over seeds (see the module doc)."""
    tr, inv = (np.log, np.exp) if log else (lambda v: v, lambda v: v)
    v, sd = tr(value), float(np.std(tr(draws), ddof=1))
    return Interval(float(value), float(inv(v - widen * sd)), float(inv(v + widen * sd)), level)


def curve_draws(fit: Fit, boot: Bootstrap, x: Array) -> Array:
    """The law evaluated at ``x`` for every bootstrap draw: shape (n_draws, len(x))."""
    law = ALL_LAWS[fit.law]
    x = np.atleast_1d(np.asarray(x, dtype=float))
    cols = {n: boot.draws[n][:, None] for n in law.params}
    return law.fn(x[None, :], **cols)


def predict(fit: Fit, boot: Bootstrap, at: float, n_evals: int = 1) -> tuple[Interval, Interval]:
    """The curve at ``at`` with its interval, and an interval for new evals there (curve + eval noise).

    The first interval covers the run's (or recipe's) curve; the second also contains the scatter
    of an eval around it, which is what a later eval of the run is compared to in a backtest. With
    ``n_evals`` > 1 the second interval is for the mean of that many consecutive evals (a measured
    plateau): their noise averages down, by less than 1/sqrt(n) when neighbouring evals are
    correlated (the AR(1) phi of the "ar1" scheme: Var(mean) = sd^2/n * (1 + 2 sum_k (1 - k/n) phi^k)).
    """
    if n_evals < 1:
        raise ValueError(f"n_evals must be >= 1 (evals averaged); got {n_evals}")
    law = ALL_LAWS[fit.law]
    value = float(law.fn(np.array([at], dtype=float), **fit.params)[0])
    draws = curve_draws(fit, boot, np.array([at]))[:, 0]
    summarize = _se_interval if boot.scheme == "seeds" else _percentile_interval
    curve = summarize(value, draws, boot.widen, boot.level, False)
    rng = np.random.default_rng(1)
    noise = rng.choice(boot.noise, size=(draws.size, n_evals))  # the same stream as one eval per draw for n = 1
    noise = (noise * rng.choice((-1.0, 1.0), size=(draws.size, n_evals))).mean(axis=1)
    if n_evals > 1:
        k = np.arange(1, n_evals)
        noise = noise * np.sqrt(1.0 + 2.0 * float(np.sum((1.0 - k / n_evals) * boot.phi**k)))
    obs = summarize(value, draws + noise, boot.widen, boot.level, False)
    # the sigmoid's (and the creep law's) curve lies between R0 and A, both in A's search range (for a pass rate [0, 1]),
    # and so do evals: a widened interval is cut there, as the parameters' intervals are
    bounds = fit.bounds.get("A") if fit.law in SIGMOIDS else None
    return _clip(curve, bounds), _clip(obs, bounds)


def curve_band(fit: Fit, boot: Bootstrap, x: Array) -> tuple[Array, Array, Array]:
    """The fitted curve at ``x`` and the pointwise interval band, computed as :func:`predict` does."""
    law = ALL_LAWS[fit.law]
    x = np.atleast_1d(np.asarray(x, dtype=float))
    mid = law.fn(x, **fit.params)
    draws = curve_draws(fit, boot, x)
    if boot.scheme == "seeds":
        sd = np.std(draws, axis=0, ddof=1)
        lo, hi = mid - boot.widen * sd, mid + boot.widen * sd
    else:
        lo, hi = np.quantile(draws, [0.5 - boot.level / 2, 0.5 + boot.level / 2], axis=0)
        lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
        lo, hi = mid - boot.widen * (mid - lo), mid + boot.widen * (hi - mid)
    bounds = fit.bounds.get("A") if fit.law in SIGMOIDS else None  # cut as predict() cuts
    if bounds is not None:
        lo, hi = np.minimum(np.maximum(lo, bounds[0]), mid), np.maximum(np.minimum(hi, bounds[1]), mid)
    return mid, lo, hi


def interval_warnings(fit: Fit, boot: Bootstrap) -> list[str]:
    """Poor identification seen in the intervals: an asymptote interval wider than half the gain it
    predicts (for the sigmoid, A - R0), or one that runs into the bound of A's search range."""
    out = []
    a = boot.intervals["asymptote"]
    pct = round(100 * boot.level)
    gain = abs(fit.asymptote - fit.params["R0"]) if "R0" in fit.params else float(np.ptp(fit.y))
    if a.width > 0.5 * gain:
        out.append(
            f"the asymptote's {pct}% interval [{a.low:.3g}, {a.high:.3g}] is wider than half the predicted gain "
            f"({gain:.3g}): the data do not pin the asymptote down yet"
        )
    if "A" in fit.bounds:
        lo, hi = fit.bounds["A"]
        at_top = np.isclose(boot.draws["A"], hi, atol=1e-4 * (hi - lo))
        if np.mean(at_top) > 1 - boot.level and not np.isclose(fit.params["A"], hi, atol=1e-3 * (hi - lo)):
            out.append(f"more than {100 - pct}% of the bootstrap refits put A at the top of its range ({hi:.3g})")
    return out
