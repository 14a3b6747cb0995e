"""A Domhan-style ensemble of learning-curve families, weighted from the prefix alone.

Domhan et al. 2015 (IJCAI) extrapolate a learning curve with a weighted combination of parametric
families (``analysis/curves.py``) and sample the weights and parameters jointly by MCMC. We keep
their families and their idea, that no one family should be trusted to extrapolate, and make both
steps cheap and deterministic:

* **Weights from rolling-origin validation inside the prefix** (leave-future-out). Each family
  is fitted to the first half (and the first 70%) of the prefix's points and predicts the points
  after them, an extrapolation the prefix can check; a family with too many parameters for the
  points before an origin is left out (and where that leaves none, the families are weighted by
  AICc on the whole prefix instead). Each held-out point scores the
  family by its Gaussian log-likelihood under the prefix's eval noise; the weights are the
  pseudo-BMA+ weights of Yao et al. 2018 ("Using Stacking to Average Bayesian Predictive
  Distributions", Bayesian Analysis): the softmax of the summed log-likelihoods, averaged over
  Bayesian-bootstrap (Dirichlet) reweightings of the held-out points, which keeps one lucky family
  from taking all the weight.
* **Parameter uncertainty by the bootstrap of record** (``analysis.bootstrap.bootstrap``: residual
  bootstrap with AR(1) noise) of each family's fit to the whole prefix, for every family with at
  least 1% of the weight. (A Laplace approximation was tried first and is not used: families such
  as pow4 are so poorly identified from a prefix that draws from N(estimate, s^2 (J'J)^-1) leave
  the region where the family is a learning curve at all.)
* **The predictive distribution** is the mixture: curves drawn from each family's bootstrap in
  proportion to its weight. Its quantiles are the intervals, and they include the uncertainty over
  which family holds; its centre is the weighted mean of the families' fitted curves.

Every function here is pure: arrays in, arrays and small records out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import Interval, ar1_from_residuals, bootstrap
from analysis.curves import ALL_LAWS
from analysis.fit import Fit, FitError, check_points, fit_law, noise_scale
from analysis.laws import Law, a_range

Array = np.ndarray

DEFAULT_FAMILIES: tuple[str, ...] = ("pow3", "pow4", "log_power", "mmf", "weibull", "janoschek", "exp4", "ilog2",
                                     "hill3", "vapor_pressure", "loglog_linear")
"""Domhan et al.'s eleven families (Table 1)."""

SIGMOID_LAWS: tuple[str, ...] = ("mmf", "creep")
"""ScaleRL's sigmoid (as MMF: R0 free) and its creep variant: the choice between the two laws of
``analysis/laws.py`` made from the prefix alone (``analysis.methods``' ``laws`` method)."""

ORIGINS: tuple[float, ...] = (0.5, 0.7)
"""Rolling origins, as fractions of the prefix's points: each family is fitted to the first half (and
70%) of the points and scored on the rest."""


@dataclass(frozen=True)
class Member:
    """One family of the ensemble: its fit on t = x / x0, its weight, and draws of its parameters."""

    name: str
    fit: Fit
    weight: float
    draws: dict[str, Array]
    """Bootstrap draws of every parameter, as many as this member's share of the mixture."""


@dataclass(frozen=True)
class Ensemble:
    """The weighted families; predictions are in the caller's x units (x0 converts them)."""

    members: tuple[Member, ...]
    x0: float
    noise_sd: float
    phi: float
    y_range: tuple[float, float]
    """Where the metric can lie (a pass rate: [0, 1]; ``analysis.laws.a_range``): draws are cut there."""
    failed: tuple[str, ...] = ()
    """Families that could not be fitted to this prefix (too few points for their parameters ...)."""

    @property
    def weights(self) -> dict[str, float]:
        return {m.name: m.weight for m in self.members}

    def curve(self, x: Array) -> Array:
        """The weighted mean of the families' fitted curves at x."""
        t = np.atleast_1d(np.asarray(x, dtype=float)) / self.x0
        curves = [m.weight * np.clip(ALL_LAWS[m.name].fn(t, **m.fit.params), *self.y_range) for m in self.members]
        return np.sum(curves, axis=0)

    def curve_draws(self, x: Array) -> Array:
        """Draws of the curve at x from the mixture: shape (n_draws, len(x))."""
        t = np.atleast_1d(np.asarray(x, dtype=float)) / self.x0
        rows = []
        for m in self.members:
            if m.draws and len(next(iter(m.draws.values()))):
                with np.errstate(all="ignore"):
                    rows.append(ALL_LAWS[m.name].fn(t[None, :], **{k: v[:, None] for k, v in m.draws.items()}))
        out = np.concatenate(rows, axis=0)
        out = out[~np.any(np.isnan(out), axis=1)]
        return np.clip(out, *self.y_range)

    def predict(self, at: float, n_evals: int = 1, level: float = 0.95, seed: int = 0) -> tuple[Interval, Interval]:
        """The curve at ``at`` (the weighted mean curve, interval of the mixture's quantiles), and the
        interval for the mean of ``n_evals`` evals there (plus eval noise, AR(1)-correlated as fitted)."""
        draws = self.curve_draws(np.array([at]))[:, 0]
        q = (0.5 - level / 2, 0.5 + level / 2)
        mid = float(self.curve(np.array([at]))[0])
        curve = Interval(mid, float(np.quantile(draws, q[0])), float(np.quantile(draws, q[1])), level)
        rng = np.random.default_rng(seed)
        obs = draws + rng.standard_normal(draws.size) * self.noise_sd * mean_noise_factor(n_evals, self.phi)
        return curve, Interval(mid, float(np.quantile(obs, q[0])), float(np.quantile(obs, q[1])), level)


def mean_noise_factor(n_evals: int, phi: float) -> float:
    """The sd of the mean of n AR(1) evals over the sd of one: sqrt((1 + 2 sum_k (1 - k/n) phi^k) / n)."""
    k = np.arange(1, n_evals)
    return float(np.sqrt((1.0 + 2.0 * np.sum((1.0 - k / n_evals) * phi**k)) / n_evals))


def _held_out_loglik(law: Law, t: Array, y: Array, sd: float) -> Array | None:
    """The family's Gaussian log-likelihood of each point after each origin, fitted up to the origin;
    None where an origin leaves too few points to fit the family."""
    out = []
    for origin in ORIGINS:
        cut = np.arange(t.size) < int(np.ceil(origin * t.size))
        if cut.sum() < len(law.params) + 2 or (~cut).sum() == 0:
            return None
        try:
            f = fit_law(law, t[cut], y[cut])
        except (FitError, ValueError, np.linalg.LinAlgError):
            return None
        with np.errstate(all="ignore"):
            pred = law.fn(t[~cut], **f.params)
        if not np.all(np.isfinite(pred)):
            return None
        out.append(-0.5 * ((y[~cut] - pred) / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi)))
    return np.concatenate(out)


def pseudo_bma_plus(loglik: Array, n_boot: int = 1000, seed: int = 0) -> Array:
    """Yao et al. 2018's pseudo-BMA+ weights from a (points x models) matrix of log predictive densities:
    the softmax of n * (Dirichlet-weighted mean log density), averaged over ``n_boot`` Dirichlet draws."""
    n, _ = loglik.shape
    rng = np.random.default_rng(seed)
    alpha = rng.dirichlet(np.ones(n), size=n_boot)  # (n_boot, n)
    z = n * alpha @ loglik  # (n_boot, models)
    z -= z.max(axis=1, keepdims=True)
    w = np.exp(z)
    w /= w.sum(axis=1, keepdims=True)
    return w.mean(axis=0)


def akaike_weights(fits: list[Fit]) -> Array:
    """exp(-AICc / 2), normalised; AICc = n ln(RSS / n) + 2k + 2k(k + 1) / (n - k - 1) (Burnham &
    Anderson 2002), k the fitted parameters (and the noise)."""
    aicc = []
    for f in fits:
        n, k = f.x.size, len(f.free) + 1
        rss = max(float(np.sum(f.residuals**2)), 1e-300)
        aicc.append(n * np.log(rss / n) + 2 * k + (2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else np.inf))
    a = np.array(aicc)
    if not np.isfinite(a).any():
        return np.full(a.size, 1.0 / a.size)
    w = np.exp(-0.5 * (a - np.min(a[np.isfinite(a)])))
    return w / w.sum()


def fit_ensemble(
    x: Array,
    y: Array,
    families: tuple[str, ...] = DEFAULT_FAMILIES,
    *,
    n_draws: int = 2000,
    n_boot: int = 100,
    min_weight: float = 0.01,
    seed: int = 0,
) -> Ensemble:
    """Fit every family to (x, y) (the prefix's fitted points), weight the families by rolling-origin
    validation inside the prefix (where no family has enough points before an origin, by Akaike
    weights of the whole prefix), and draw the mixture. Raises :class:`FitError` when no family can be
    fitted."""
    x, y = check_points(x, y)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.any(x <= 0):
        raise FitError("the ensemble's families need compute > 0 at every fitted point")
    x0 = float(x[0])
    t = x / x0
    sd = max(noise_scale(t, y), 1e-3 * max(float(np.ptp(y)), 1e-3))
    fitted, scores, failed = {}, {}, []
    for name in families:
        law = ALL_LAWS[name]
        try:
            fitted[name] = fit_law(law, t, y)
        except (FitError, ValueError, np.linalg.LinAlgError):
            failed.append(name)
            continue
        ll = _held_out_loglik(law, t, y, sd)
        if ll is not None:
            scores[name] = ll
    if not fitted:
        raise FitError(f"no family of the ensemble could be fitted to these {x.size} points")
    if scores:  # the families that could be validated, weighted by it
        fits = {n: fitted[n] for n in scores}
        failed += [n for n in fitted if n not in scores]
        names = list(fits)
        weights = pseudo_bma_plus(np.column_stack([scores[n] for n in names]), seed=seed)
    else:  # too few points for any origin: Akaike weights of the fits to the whole prefix
        fits = fitted
        names = list(fits)
        weights = akaike_weights([fits[n] for n in names])
    boots = {}
    for n, w in zip(names, weights):
        if w >= min_weight:
            try:
                boots[n] = bootstrap(fits[n], n_boot=n_boot, scheme="ar1", seed=seed).draws
            except (FitError, ValueError, np.linalg.LinAlgError):
                failed.append(n)
    if not boots:
        raise FitError("no family of the ensemble could be bootstrapped on these points")
    names = list(boots)
    weights = np.array([weights[list(fits).index(n)] for n in names])
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_draws, weights)
    members = []
    for n, w, c in zip(names, weights, counts):
        draws = boots[n]
        pick = rng.integers(0, len(draws[ALL_LAWS[n].params[0]]), size=int(c))
        members.append(Member(n, fits[n], float(w), {k: v[pick] for k, v in draws.items() if k != "asymptote"}))
    best = fits[names[int(np.argmax(weights))]]
    phi = ar1_from_residuals(best)[0]
    noise = float(np.sqrt(np.mean(best.residuals**2)))
    return Ensemble(tuple(members), x0, noise, float(phi), a_range(y, float(y[0])), tuple(failed))
