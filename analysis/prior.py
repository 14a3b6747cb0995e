"""A prior learned from finished runs: what the shape of a curve was, so a short prefix can be read.

A prefix of a run shows the fast rise and the start of the bend; it cannot show how slowly the
run will creep afterwards, nor, for a very short prefix, where it will bend. Finished runs can: their
curves share a shape once compute is counted from their bend and gain from their start (the
normalised curves of bench/README.md, "Prediction", fall on one another). This module learns that
shape as a distribution over a few coordinates of the fitted law, and fits a new run under it.

**The law** is ScaleRL's sigmoid with a tail exponent of its own (``analysis.laws.creep_sigmoid``):
A, B, C_mid as in ScaleRL's Eq. (1), and tau, the creep (tau = 1 is Eq. (1)).

**The coordinates** (``COMPONENTS``), chosen because they are what a run's own prefix pins down
worst, and because they are dimensionless, so that runs of other models, tasks or frameworks can share
them:

* ``log_B``: the exponent of the rise;
* ``log_tail``: log(B tau), the exponent of the creep after the bend (the gap to A closes as
  C^(-B tau)); with log B, rather than log tau: across runs a steeper rise goes with a smaller tau,
  and B tau is what stays alike (on the first corpus: 0.8 to 1.1 for sums and products alike, where
  B ran from 1.4 to 2.8);
* ``log_C_mid_steps``: where the bend is, in optimizer steps (C_mid over the run's compute per step);
  it moves with learning rate and batch size, and the prior learns how much;
* ``logit_gain`` (not by default, see ``DEFAULT_COMPONENTS``): how much of the headroom RL takes,
  (A - R0) / (top - R0), top the metric's upper bound (1 for a pass rate). Only for bounded metrics.

**Learning it: empirical Bayes with families** (``build_prior``). Each finished run is fitted whole;
its coordinates z_i are its fitted law's. Runs come in families (a task; seeds and recipes of one task
share a family) and a new run usually belongs to a family the prior has not seen, so the prior is the
predictive distribution of a *new family's* run: N(mu, W + T + (W / N + T / F)), W the pooled
within-family covariance, T the between-family covariance of the family means (corrected for their
own within-family noise), mu the mean of the family means, N runs and F families (the last term is the
uncertainty of mu). With one family T cannot be estimated and is taken equal to W. The covariance
is shrunk halfway to its diagonal (few runs, four coordinates). Poorly identified coordinates of a
single run (a tau the run's own data cannot pin) are handled as hierarchical models handle them: the
fits are repeated under the prior of the previous round, which draws them towards the population,
for ``n_iter`` rounds (an EM-like iteration of the maximum a posteriori estimates).

**Using it** (``prior_fit``): the new run's prefix is fitted by maximum a posteriori (the prior as
extra residuals, ``analysis.fit.PriorTerm``), and its intervals come from the residual bootstrap with
AR(1) noise of ``analysis/bootstrap.py``, each refit under the prior recentred on a draw from it
(randomise-then-optimise), so they hold the uncertainty of the shape as well as of the evals.

Why this, and not the alternatives (docs/analysis.md, "Predict from a prefix with a prior"): a fit of
the prefix alone cannot know the creep; a Domhan-style ensemble (``analysis/ensemble.py``) averages
shapes the prefix cannot tell apart but learns nothing from other runs; a network trained on prior
curves (LC-PFN, Adriaensen et al. 2023) needs thousands of curves and its pretrained weights are not
reachable here, and with tens of finished runs a four-number Gaussian is what the data can support.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit, logit

from analysis.bootstrap import ar1_from_residuals
from analysis.fit import FitError, PriorTerm, fit_sigmoid, noise_scale, split_points
from analysis.laws import a_range

Array = np.ndarray

SCHEMA = "asymptote.prior/1"
COMPONENTS: tuple[str, ...] = ("log_B", "log_tail", "log_C_mid_steps", "logit_gain")
"""Every coordinate a prior may hold."""
DEFAULT_COMPONENTS: tuple[str, ...] = ("log_B", "log_tail", "log_C_mid_steps")
"""The shape: what transfers between tasks. The gain is left out by default: how much of the headroom RL
takes is how hard the task is for the model, which differs between tasks by more than a prefix leaves
unknown (on the first corpus a prior with it predicted sums of digits from products' gains, 0.12 high)."""
SHRINK = 0.5
"""How far the covariance is shrunk towards its diagonal."""


@dataclass(frozen=True)
class Curve:
    """A finished run as the prior sees it: its eval points and what it needs to be normalised."""

    name: str
    family: str
    x: Array
    y: Array
    step_compute: float | None = None
    """Compute per optimizer step (``step_compute``); None where the run does not log steps."""
    source: str = ""


@dataclass(frozen=True)
class Member:
    """One run the prior was built from: its family and its coordinates."""

    name: str
    family: str
    z: dict[str, float]
    source: str = ""


@dataclass(frozen=True)
class Prior:
    """z ~ N(mean, cov) over ``components`` of the law's parameters, for a run of a new family."""

    law: str
    components: tuple[str, ...]
    mean: Array
    cov: Array
    members: tuple[Member, ...]
    x_key: str = "compute/flops"
    y_key: str = "val/accuracy"
    within: Array = field(default_factory=lambda: np.zeros((0, 0)))
    between: Array = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def dof(self) -> float:
        """Degrees of freedom of the spread between families: F - 1 for F families (at least 1)."""
        return float(max(len(self.families) - 1, 1))

    @property
    def families(self) -> list[str]:
        return sorted({m.family for m in self.members})

    @property
    def sd(self) -> dict[str, float]:
        return {c: float(np.sqrt(self.cov[i, i])) for i, c in enumerate(self.components)}

    def marginal(self, keep: tuple[str, ...]) -> tuple[Array, Array]:
        """Mean and covariance of the components in ``keep`` (a Gaussian's marginal: drop the rest)."""
        idx = [self.components.index(c) for c in keep]
        return self.mean[idx], self.cov[np.ix_(idx, idx)]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "law": self.law,
            "x": self.x_key,
            "y": self.y_key,
            "components": list(self.components),
            "mean": self.mean.tolist(),
            "cov": self.cov.tolist(),
            "within": self.within.tolist(),
            "between": self.between.tolist(),
            "families": self.families,
            "members": [{"name": m.name, "family": m.family, "source": m.source, "z": m.z} for m in self.members],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "prior") -> "Prior":
        if d.get("schema") != SCHEMA:
            raise ValueError(f"{source}: not an Asymptote prior (schema {d.get('schema')!r}, expected {SCHEMA!r}); "
                             "build one with `asymptote prior build RUN... -o prior.json`")
        comps = tuple(d["components"])
        unknown = set(comps) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"{source}: unknown prior components {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
        return cls(
            law=d["law"], components=comps, mean=np.asarray(d["mean"], float), cov=np.asarray(d["cov"], float),
            members=tuple(Member(m["name"], m["family"], m["z"], m.get("source", "")) for m in d["members"]),
            x_key=d.get("x", "compute/flops"), y_key=d.get("y", "val/accuracy"),
            within=np.asarray(d.get("within", []), float), between=np.asarray(d.get("between", []), float),
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Prior":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"prior file {path} does not exist; build one with `asymptote prior build`") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"prior file {path} is not JSON ({e.msg})") from None
        return cls.from_json(d, str(path))


# --------------------------------------------------------------------------------------------
# Coordinates
# --------------------------------------------------------------------------------------------


def usable_components(components: tuple[str, ...], step_compute: float | None, top: float | None) -> tuple[str, ...]:
    """The components a run can be placed on: no bend-in-steps without steps, no gain without a bounded metric."""
    return tuple(c for c in components
                 if not (c == "log_C_mid_steps" and not step_compute) and not (c == "logit_gain" and top is None))


def coordinates(params: dict[str, float], components: tuple[str, ...], step_compute: float | None,
                top: float | None) -> Array:
    """The law's parameters in the prior's coordinates (see the module doc)."""
    out = []
    for c in components:
        if c == "log_B":
            out.append(np.log(params["B"]))
        elif c == "log_tail":
            out.append(np.log(params["B"] * params.get("tau", 1.0)))
        elif c == "log_C_mid_steps":
            out.append(np.log(params["C_mid"] / step_compute))
        elif c == "logit_gain":
            frac = (params["A"] - params["R0"]) / (top - params["R0"])
            out.append(logit(np.clip(frac, 1e-4, 1 - 1e-4)))
        else:
            raise ValueError(f"unknown prior component {c!r}; known: {', '.join(COMPONENTS)}")
    return np.array(out, dtype=float)


def metric_top(y: Array, r0: float) -> float | None:
    """The metric's upper bound where it has one (1 for a pass rate or a +-1 reward), else None."""
    lo, hi = a_range(np.asarray(y, float), r0)
    return hi if (lo, hi) in ((0.0, 1.0), (-1.0, 1.0)) else None


def step_compute(records: list[dict[str, Any]], x_key: str, up_to: float | None = None) -> float | None:
    """Compute per optimizer step: the median of x / step over the lines with step > 0 (and x <= up_to).
    None where the run logs no steps with x."""
    ratios = []
    for r in records:
        s, x = r.get("step"), r.get(x_key)
        if isinstance(s, (int, float)) and isinstance(x, (int, float)) and s > 0 and x > 0:
            if up_to is None or x <= up_to:
                ratios.append(x / s)
    return float(np.median(ratios)) if ratios else None


def prior_term(prior: Prior, components: tuple[str, ...], step: float | None, top: float | None,
               scale: float) -> PriorTerm:
    """The prior as residuals for one fit, on the components this run can be placed on."""
    mean, cov = prior.marginal(components)
    L = np.linalg.cholesky(cov)
    return PriorTerm(
        z=lambda p: coordinates(p, components, step, top),
        mean=mean, whiten=np.linalg.inv(L), chol=L, scale=scale, dof=prior.dof if prior.members else None,
    )


# --------------------------------------------------------------------------------------------
# Fitting under the prior
# --------------------------------------------------------------------------------------------


def map_fit(x: Array, y: Array, prior: Prior | None, *, step: float | None = None, budget: float | None = None,
            skip_fraction: float = 0.1, skip_below: float | None = None, law: str | None = None,
            groups: Array | None = None, x_name: str = "compute", y_name: str = "performance",
            start: dict[str, float] | None = None, noise: tuple[float, float] | None = None):
    """The maximum a posteriori fit of the prior's law to the points up to ``budget`` (without a prior:
    the least-squares fit of ``law``). Returns the Fit; its ``prior`` holds the term for the bootstrap.

    The prior's weight against the data is the eval noise, measured apart from the prior: sd and AR(1)
    phi of the residuals of the same law fitted freely to the same points (else of ScaleRL's sigmoid; a
    MAP fit's residuals also hold the prior's pull on the curve, which is not noise); the sd is inflated
    by sqrt((1 + phi) / (1 - phi)), since correlated evals carry less information than as many
    independent ones. With too few points for either: the sd of successive differences and phi = 0. ``start``
    (a previous estimate) replaces the law's many starting points; ``noise`` = (phi, sd) measured before
    skips measuring it."""
    from analysis.laws import CREEP, SIGMOID

    name = law or (prior.law if prior is not None else "creep")
    the_law = {"creep": CREEP, "sigmoid": SIGMOID}[name]
    kw = dict(groups=groups, skip_fraction=skip_fraction, skip_below=skip_below, up_to=budget, x_name=x_name,
              y_name=y_name)
    starts = None if start is None else [{k: v for k, v in start.items() if k in the_law.params}]
    if prior is None:
        return fit_sigmoid(x, y, **kw, law=the_law, starts=starts)
    anchor, fitted, _ = split_points(x, y, groups, skip_below=skip_below, skip_fraction=skip_fraction, up_to=budget)
    r0 = float(np.mean(y[anchor]))
    top = metric_top(y[fitted | anchor], r0)
    comps = usable_components(prior.components, step, top)
    if name == "sigmoid":
        comps = tuple(c for c in comps if c != "log_tail")
    phi, sd = noise if noise is not None else free_noise(x, y, kw, the_law)
    sd = max(sd, 1e-4)
    scale = sd * float(np.sqrt((1.0 + phi) / (1.0 - phi)))
    fit = fit_sigmoid(x, y, **kw, law=the_law, starts=starts, prior=prior_term(prior, comps, step, top, scale))
    return replace(fit, noise=(phi, sd))


def free_noise(x: Array, y: Array, kw: dict, law) -> tuple[float, float]:
    """(phi, sd) of the eval noise from the residuals of ``law`` fitted freely (else ScaleRL's sigmoid;
    else the sd of successive differences and phi = 0)."""
    from analysis.laws import SIGMOID

    for free_law in (law, SIGMOID):
        try:
            return ar1_from_residuals(fit_sigmoid(x, y, **kw, law=free_law))
        except (FitError, ValueError, np.linalg.LinAlgError):
            continue
    _, fitted, _ = split_points(x, y, kw.get("groups"), skip_below=kw.get("skip_below"),
                                skip_fraction=kw.get("skip_fraction", 0.1), up_to=kw.get("up_to"))
    return 0.0, noise_scale(x[fitted], y[fitted])


def prior_fit(x: Array, y: Array, prior: Prior | None, *, step: float | None = None, budget: float | None = None,
              groups: Array | None = None, n_boot: int = 300, seed: int = 0, skip_fraction: float = 0.1,
              skip_below: float | None = None, x_key: str = "compute/flops", y_key: str = "val/accuracy", label: str = "run",
              runs: tuple[str, ...] = ()):
    """:func:`map_fit` with its bootstrap (each refit under the prior recentred on a draw from it), as
    a :class:`analysis.extrapolate.CurveFit` that the reports, plots and predictions take as they are.
    Without a prior: the creep law's own least-squares fit."""
    from analysis.bootstrap import bootstrap, interval_warnings
    from analysis.extrapolate import CurveFit

    x, y = np.asarray(x, float), np.asarray(y, float)
    groups = np.zeros(x.size, dtype=int) if groups is None else np.asarray(groups)
    fit = map_fit(x, y, prior, step=step, budget=budget, skip_fraction=skip_fraction, skip_below=skip_below,
                  groups=groups, x_name=x_key, y_name=y_key)
    boot = bootstrap(fit, n_boot=n_boot, seed=seed)
    skip = split_points(x, y, groups, skip_below=skip_below, skip_fraction=skip_fraction, up_to=budget)[2]
    return CurveFit(label, fit, boot, x, y, groups, x_key, y_key, skip, budget, runs, tuple(interval_warnings(fit, boot)))


# --------------------------------------------------------------------------------------------
# Building the prior
# --------------------------------------------------------------------------------------------


def _family_covariances(Z: Array, families: list[str]) -> tuple[Array, Array, Array]:
    """(mean of family means, within-family covariance W, between-family covariance T)."""
    names = sorted(set(families))
    fam = np.array(families)
    k = Z.shape[1]
    means = np.array([Z[fam == f].mean(axis=0) for f in names])
    resid = np.concatenate([Z[fam == f] - means[i] for i, f in enumerate(names)])
    dof = max(len(Z) - len(names), 1)
    W = resid.T @ resid / dof if len(Z) > len(names) else np.zeros((k, k))
    if len(names) > 1:
        n_f = np.array([(fam == f).sum() for f in names])
        T = np.cov(means.T, ddof=1).reshape(k, k) - W * float(np.mean(1.0 / n_f))
        w, V = np.linalg.eigh((T + T.T) / 2)
        T = V @ np.diag(np.clip(w, 0.0, None)) @ V.T
    else:
        T = W.copy()
    return means.mean(axis=0), W, T


def build_prior(curves: list[Curve], *, law: str = "creep", components: tuple[str, ...] = DEFAULT_COMPONENTS,
                n_iter: int = 4, skip_fraction: float = 0.1, x_key: str = "compute/flops",
                y_key: str = "val/accuracy", floor: float = 0.05) -> Prior:
    """Learn the prior from finished runs (see the module doc). ``floor`` is the smallest sd any
    component may have, so that a prior from a handful of alike runs never claims more than that."""
    if len(curves) < 2:
        raise FitError(f"a prior needs at least 2 finished runs; got {len(curves)}")
    if law == "sigmoid":
        components = tuple(c for c in components if c != "log_tail")
    tops = []
    for c in curves:
        r0 = float(c.y[np.argmin(c.x)])
        tops.append(metric_top(c.y, r0))
    comps = usable_components(components, min((c.step_compute or 0.0) for c in curves) or None,
                              None if any(t is None for t in tops) else 1.0)
    prior: Prior | None = None
    Z = np.zeros((len(curves), len(comps)))
    estimates: list[dict[str, float] | None] = [None] * len(curves)
    noises: list[tuple[float, float] | None] = [None] * len(curves)
    for _ in range(n_iter):
        rows = []
        for i, (c, top) in enumerate(zip(curves, tops)):
            try:
                fit = map_fit(c.x, c.y, prior, step=c.step_compute, skip_fraction=skip_fraction, law=law,
                              start=estimates[i], noise=noises[i])
            except FitError as e:
                raise FitError(f"{c.name}: cannot fit the finished run for the prior: {e}") from None
            if noises[i] is None:  # the first round's fits are free: their residuals measure the noise
                noises[i] = ar1_from_residuals(fit)
            estimates[i] = fit.params
            rows.append(coordinates(fit.params, comps, c.step_compute, top))
        Z = np.array(rows)
        mu, W, T = _family_covariances(Z, [c.family for c in curves])
        F = len({c.family for c in curves})
        cov = W + T + W / len(curves) + T / F
        cov = (1 - SHRINK) * cov + SHRINK * np.diag(np.diag(cov))
        cov += np.diag(np.clip(floor**2 - np.diag(cov), 0.0, None))
        prior = Prior(law, comps, mu, cov, (), x_key, y_key, W, T)
    members = tuple(Member(c.name, c.family, dict(zip(comps, map(float, z))), c.source) for c, z in zip(curves, Z))
    return Prior(law, comps, prior.mean, prior.cov, members, x_key, y_key, prior.within, prior.between)


def gain_fraction(z: float) -> float:
    """The inverse of the logit_gain coordinate."""
    return float(expit(z))
