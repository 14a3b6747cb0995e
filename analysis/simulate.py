"""Synthetic runs with known parameters, and the simulation that measures interval coverage.

A synthetic run follows ScaleRL's Eq. (1) (Khatri et al. 2025) with eval points evenly spaced in
compute (an eval every N steps, compute per step about constant), the first at compute 0 (R0,
before RL). Eval noise is Gaussian with sd ``sd`` at accuracy 0.5 and sqrt(p (1 - p)) times that
elsewhere (a mean of Bernoulli rewards), optionally AR(1)-correlated between neighbouring evals.
Several seeds of a recipe differ in A (sd ``seed_sd_A``, ScaleRL App. A.5 finds +-0.015) and in
C_mid (log sd ``seed_sd_logC``).

:func:`coverage` fits many such datasets, bootstraps each, and counts how often the stated interval
contains the true parameter; ``bench/analysis_coverage.py`` prints it.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from analysis.bootstrap import bootstrap, interval_warnings, predict
from analysis.fit import FitError, fit_sigmoid
from analysis.laws import sigmoid

Array = np.ndarray


@dataclass(frozen=True)
class Scenario:
    """Ranges the true parameters and the run's shape are drawn from, uniformly, per dataset."""

    name: str = "realistic"
    A: tuple[float, float] = (0.5, 0.8)
    R0: tuple[float, float] = (0.1, 0.4)
    B: tuple[float, float] = (1.0, 3.0)
    span: tuple[float, float] = (2.5, 10.0)
    """Last compute over C_mid: the curve bends inside the observed range."""
    n_points: tuple[int, int] = (20, 40)
    sd: tuple[float, float] = (0.01, 0.03)
    ar: float = 0.0
    """AR(1) coefficient of the eval noise along the run (0: independent evals)."""
    n_seeds: int = 1
    seed_sd_A: float = 0.015
    seed_sd_logC: float = 0.1
    scheme: str = "auto"
    skip_fraction: float = 0.1
    extrapolate: float = 2.0
    """Also check the prediction at this multiple of the last fitted compute."""


def synthetic_run(
    rng: np.random.Generator,
    *,
    A: float,
    B: float,
    C_mid: float,
    R0: float,
    n_points: int,
    c_max: float,
    sd: float,
    ar: float = 0.0,
) -> tuple[Array, Array]:
    """Eval points (C, R) of one run: an eval at C = 0 and ``n_points`` more up to ``c_max``."""
    C = np.linspace(0.0, c_max, n_points + 1)
    mean = sigmoid(C, A=A, B=B, C_mid=C_mid, R0=R0)
    eps = rng.normal(size=C.size)
    if ar:
        for i in range(1, eps.size):
            eps[i] = ar * eps[i - 1] + np.sqrt(1.0 - ar**2) * eps[i]
    scale = sd * np.sqrt(np.clip(mean * (1.0 - mean), 1e-4, None)) / 0.5
    return C, mean + scale * eps


def draw_dataset(sc: Scenario, rng: np.random.Generator) -> tuple[Array, Array, Array, dict[str, float]]:
    """Points of ``sc.n_seeds`` runs of one recipe, their seed labels, and the true parameters."""
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    truth = {"A": u(sc.A), "R0": u(sc.R0), "B": u(sc.B), "C_mid": 1000.0}
    n_points = int(rng.integers(sc.n_points[0], sc.n_points[1] + 1))
    c_max, sd = truth["C_mid"] * u(sc.span), u(sc.sd)
    xs, ys, gs = [], [], []
    for s in range(sc.n_seeds):
        A_s = truth["A"] + (rng.normal(0.0, sc.seed_sd_A) if sc.n_seeds > 1 else 0.0)
        C_s = truth["C_mid"] * (np.exp(rng.normal(0.0, sc.seed_sd_logC)) if sc.n_seeds > 1 else 1.0)
        C, y = synthetic_run(
            rng, A=A_s, B=truth["B"], C_mid=C_s, R0=truth["R0"], n_points=n_points, c_max=c_max, sd=sd, ar=sc.ar
        )
        xs.append(C), ys.append(y), gs.append(np.full(C.size, s))
    truth["sd"], truth["c_max"] = sd, c_max
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), truth


@dataclass
class Coverage:
    """How often the stated intervals contained the truth, over the datasets that could be fitted."""

    scenario: Scenario
    n_datasets: int
    n_fitted: int = 0
    n_warned: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    widths: dict[str, list[float]] = field(default_factory=dict)

    def rate(self, name: str) -> float:
        return self.hits.get(name, 0) / max(self.n_fitted, 1)


PARAMS = ("A", "B", "C_mid", "R0")


def one_dataset(sc: Scenario, seed: int, n_boot: int, level: float) -> dict | None:
    """Fit and bootstrap one synthetic dataset; return hits and widths, or None if it cannot be fitted."""
    rng = np.random.default_rng(seed)
    C, y, g, truth = draw_dataset(sc, rng)
    try:
        fit = fit_sigmoid(C, y, groups=g, skip_fraction=sc.skip_fraction)
        boot = bootstrap(fit, n_boot=n_boot, scheme=sc.scheme, level=level, seed=seed)
    except FitError:
        return None
    out = {"warned": bool(fit.warnings or interval_warnings(fit, boot)), "hits": {}, "widths": {}}
    for name in PARAMS:
        iv = boot.intervals[name]
        out["hits"][name] = iv.contains(truth[name])
        out["widths"][name] = iv.width
    if sc.extrapolate:
        at = sc.extrapolate * truth["c_max"]
        curve, _ = predict(fit, boot, at)
        true_r = float(sigmoid(np.array([at]), A=truth["A"], B=truth["B"], C_mid=truth["C_mid"], R0=truth["R0"])[0])
        out["hits"]["R(2C)"] = curve.contains(true_r)
        out["widths"]["R(2C)"] = curve.width
    return out


def _chunk(args: tuple) -> list[dict | None]:
    sc, seeds, n_boot, level = args
    return [one_dataset(sc, s, n_boot, level) for s in seeds]


def coverage(
    sc: Scenario, n_datasets: int, *, n_boot: int = 300, level: float = 0.95, seed: int = 0, workers: int = 1
) -> Coverage:
    """Coverage of the ``level`` intervals over ``n_datasets`` synthetic datasets drawn from ``sc``."""
    seeds = [seed * 1_000_003 + i for i in range(n_datasets)]
    if workers > 1:
        chunks = [(sc, seeds[w::workers], n_boot, level) for w in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            results = [r for part in pool.map(_chunk, chunks) for r in part]
    else:
        results = _chunk((sc, seeds, n_boot, level))
    cov = Coverage(sc, n_datasets)
    for r in results:
        if r is None:
            continue
        cov.n_fitted += 1
        cov.n_warned += r["warned"]
        for name, hit in r["hits"].items():
            cov.hits[name] = cov.hits.get(name, 0) + int(hit)
            cov.widths.setdefault(name, []).append(r["widths"][name])
    return cov
