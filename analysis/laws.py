"""The laws Asymptote fits: pure functions of arrays, written as in their papers.

Each law is a function ``f(x, **params) -> y`` plus a :class:`Law` record that tells the fitter
(``analysis/fit.py``) its parameter names, which of them it searches in log space, its bounds and its
starting points, all derived from the data so that no unit (GPU-hours, FLOPs, tokens) is assumed.

* :func:`sigmoid` — ScaleRL, Khatri et al. 2025 ("The Art of Scaling Reinforcement Learning Compute
  for LLMs", arXiv 2510.13786), Eq. (1): R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B).
* :func:`creep_sigmoid` — ScaleRL's sigmoid with a heavier upper tail (one more parameter, tau): the
  fast rise of Eq. (1), then the slow creep towards A that RL runs show after the bend
  (bench/README.md, "Prediction"); tau = 1 is Eq. (1) exactly.
* :func:`entropy_law` — Cui et al. 2025 ("The Entropy Mechanism of Reinforcement Learning for
  Reasoning Language Models", arXiv 2505.22617): R = -a * exp(H) + b; ceiling -a + b at H = 0.
* :func:`power_law` — the pre-training form ScaleRL compares against (its App. A.4):
  R(C) = A - D / C^B with D > 0, A the irreducible term (fit -loss for a loss falling to -A).
* :func:`exp_power_law` — coverage against samples, Brown et al. 2024 ("Large Language Monkeys",
  arXiv 2407.21787): pass@k ~ exp(a * k^b) with a < 0, b < 0, so coverage -> 1 as k grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.special import expit

Array = np.ndarray


def sigmoid(C: Array, A: float, B: float, C_mid: float, R0: float) -> Array:
    """ScaleRL Eq. (1): R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B).

    A is the asymptote, B the efficiency exponent, C_mid the compute at half of the gain A - R0 and
    R0 the performance before RL (C = 0). Written as R0 + (A - R0) * expit(B * (ln C - ln C_mid)),
    which is the same function without overflow, and gives R0 at C = 0.
    """
    C = np.asarray(C, dtype=float)
    with np.errstate(divide="ignore"):
        z = B * (np.log(C) - np.log(C_mid))
    return R0 + (A - R0) * expit(z)


def creep_sigmoid(C: Array, A: float, B: float, C_mid: float, tau: float, R0: float) -> Array:
    """ScaleRL's sigmoid with a tail exponent of its own:
    R(C) = R0 + (A - R0) * [1 - (1 + (2^(1/tau) - 1) (C / C_mid)^B)^(-tau)].

    The gain fraction is the CDF of a Burr (Singh-Maddala) distribution of log-compute. C_mid is
    still the compute at half of the gain A - R0 and B the exponent of the rise (well below C_mid the
    gain grows as C^B, as in Eq. (1)); far above C_mid the gap to A closes as C^(-B tau) instead of
    Eq. (1)'s C^(-B). tau < 1 is a slow creep after the bend, tau = 1 is ScaleRL's Eq. (1) exactly,
    tau > 1 a plateau reached faster than the rise. Evaluated as -expm1(-tau softplus(v)) with
    v = ln(2^(1/tau) - 1) + B ln(C / C_mid), which neither overflows nor loses the small gains.
    """
    C = np.asarray(C, dtype=float)
    with np.errstate(divide="ignore"):
        v = np.log(np.expm1(np.log(2.0) / tau)) + B * (np.log(C) - np.log(C_mid))
    return R0 + (A - R0) * -np.expm1(-tau * np.logaddexp(0.0, v))


def entropy_law(H: Array, a: float, b: float) -> Array:
    """Cui et al. 2025: R = -a * exp(H) + b, with H the policy entropy; the ceiling at H = 0 is -a + b."""
    return -a * np.exp(np.asarray(H, dtype=float)) + b


def power_law(C: Array, A: float, D: float, B: float) -> Array:
    """Power law with an irreducible term (ScaleRL App. A.4): R(C) = A - D / C^B, defined for C > 0."""
    return A - D * np.power(np.asarray(C, dtype=float), -B)


def exp_power_law(k: Array, a: float, b: float) -> Array:
    """Brown et al. 2024: coverage(k) = exp(a * k^b), a < 0, b < 0 (pass@k against samples k)."""
    return np.exp(a * np.power(np.asarray(k, dtype=float), b))


# --------------------------------------------------------------------------------------------
# What the fitter needs to know about each law
# --------------------------------------------------------------------------------------------

Bounds = dict[str, tuple[float, float]]
Starts = list[dict[str, float]]


@dataclass(frozen=True)
class Law:
    """A law for the fitter: parameters in order, which are searched as logs, bounds and starts.

    ``bounds(x, y, fixed)`` and ``starts(x, y, fixed)`` see the points that are fitted and the
    fixed parameters (e.g. ScaleRL's R0), and return values in the parameters' own units.
    ``asymptote(params)`` is the value the law predicts at infinite x (or at H = 0 for the entropy
    law): the number Asymptote ranks recipes by.
    """

    name: str
    fn: Callable[..., Array]
    params: tuple[str, ...]
    bounds: Callable[[Array, Array, dict[str, float]], Bounds]
    starts: Callable[[Array, Array, dict[str, float]], Starts]
    asymptote: Callable[[dict[str, float]], float]
    log_params: frozenset[str] = field(default_factory=frozenset)
    x_positive: bool = True
    """Whether x must be > 0 (compute, samples); the entropy law takes any real H."""


def span(y: Array) -> float:
    return float(np.ptp(y)) if y.size else 0.0


def a_range(y: Array, r0: float) -> tuple[float, float]:
    """Where an asymptote may lie: [0, 1] for a pass rate (ScaleRL: 0 <= A <= 1), [-1, 1] for a mean
    of +-1 rewards, else the data's range widened by ten times its span above and one below."""
    values = np.append(y, r0)
    if np.all((values >= 0.0) & (values <= 1.0)):
        return 0.0, 1.0
    if np.all((values >= -1.0) & (values <= 1.0)):
        return -1.0, 1.0
    width = max(span(values), 1e-3)
    return float(values.min()) - width, float(values.max()) + 10.0 * width


def _sigmoid_bounds(x: Array, y: Array, fixed: dict[str, float]) -> Bounds:
    r0 = fixed.get("R0", float(np.min(y)))
    lo, hi = a_range(y, r0)
    # C_mid within two decades either side of the fitted compute: further out it is not identified.
    return {
        "A": (lo, hi),
        "B": (0.05, 20.0),
        "C_mid": (float(np.min(x)) / 100.0, float(np.max(x)) * 100.0),
        "R0": (lo, hi),
    }


def _sigmoid_starts(x: Array, y: Array, fixed: dict[str, float]) -> Starts:
    order = np.argsort(x)
    top = float(np.mean(y[order][-3:]))
    r0 = fixed.get("R0", float(np.mean(y[order][:3])))
    gain = top - r0 if abs(top - r0) > 1e-6 else span(y) or 1e-3
    lx = np.log(x)
    mids = np.exp(np.quantile(lx, [0.2, 0.5, 0.8]).tolist() + [float(lx.max()) + np.log(3.0)])
    return [
        {"A": top + f * gain, "B": b, "C_mid": float(m), "R0": r0}
        for f in (0.0, 0.5, 2.0)
        for m in mids
        for b in (1.0, 3.0)
    ]


SIGMOID = Law(
    name="sigmoid",
    fn=sigmoid,
    params=("A", "B", "C_mid", "R0"),
    bounds=_sigmoid_bounds,
    starts=_sigmoid_starts,
    asymptote=lambda p: p["A"],
    log_params=frozenset({"C_mid"}),
)


def _creep_bounds(x: Array, y: Array, fixed: dict[str, float]) -> Bounds:
    return {**_sigmoid_bounds(x, y, fixed), "tau": (0.05, 5.0)}


def _creep_starts(x: Array, y: Array, fixed: dict[str, float]) -> Starts:
    return [{**s, "tau": tau} for s in _sigmoid_starts(x, y, fixed) for tau in (1.0, 0.3)]


CREEP = Law(
    name="creep",
    fn=creep_sigmoid,
    params=("A", "B", "C_mid", "tau", "R0"),
    bounds=_creep_bounds,
    starts=_creep_starts,
    asymptote=lambda p: p["A"],
    log_params=frozenset({"C_mid", "tau"}),
)


def _entropy_bounds(x: Array, y: Array, fixed: dict[str, float]) -> Bounds:
    width = max(span(y), 1e-3)
    scale = width / max(float(np.ptp(np.exp(x))), 1e-6)  # the a that spans y over the observed exp(H)
    return {"a": (0.0, 50.0 * scale), "b": (float(np.min(y)) - 50.0 * width, float(np.max(y)) + 50.0 * width)}


def _entropy_starts(x: Array, y: Array, fixed: dict[str, float]) -> Starts:
    # The law is linear in (a, b): least squares of y on [-exp(H), 1] is the natural start.
    design = np.column_stack([-np.exp(x), np.ones_like(x)])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return [{"a": max(float(a), 1e-6), "b": float(b)}]


ENTROPY = Law(
    name="entropy",
    fn=entropy_law,
    params=("a", "b"),
    bounds=_entropy_bounds,
    starts=_entropy_starts,
    asymptote=lambda p: -p["a"] + p["b"],
    x_positive=False,
)


def _power_bounds(x: Array, y: Array, fixed: dict[str, float]) -> Bounds:
    # D > 0 is searched as a log, so its wide range costs nothing (x may be FLOPs ~ 1e20).
    width = max(span(y), 1e-3)
    lo, hi = a_range(y, float(np.min(y)))
    return {"A": (lo, hi), "D": (1e-12 * width, 1e6 * width * float(np.max(x)) ** 3 + 1.0), "B": (1e-3, 3.0)}


def _power_starts(x: Array, y: Array, fixed: dict[str, float]) -> Starts:
    order = np.argsort(x)
    first, last = float(y[order][0]), float(y[order][-1])
    x0 = float(x[order][0])
    starts = []
    for b in (0.2, 0.5, 1.0):
        for f in (0.1, 0.5, 2.0):
            a = last + f * (last - first)
            starts.append({"A": a, "D": max(a - first, 1e-9) * x0**b, "B": b})
    return starts


POWER = Law(
    name="power",
    fn=power_law,
    params=("A", "D", "B"),
    bounds=_power_bounds,
    starts=_power_starts,
    asymptote=lambda p: p["A"],
    log_params=frozenset({"D"}),
)


def _exp_power_bounds(x: Array, y: Array, fixed: dict[str, float]) -> Bounds:
    return {"a": (-50.0, -1e-6), "b": (-5.0, -1e-4)}


def _exp_power_starts(x: Array, y: Array, fixed: dict[str, float]) -> Starts:
    # -log c = -a k^b is a power law: a straight line in log-log space gives the start.
    keep = (y > 0) & (y < 1)
    if keep.sum() >= 2:
        slope, icpt = np.polyfit(np.log(x[keep]), np.log(-np.log(y[keep])), 1)
        guess = {"a": -float(np.exp(icpt)), "b": float(np.clip(slope, -4.9, -1e-3))}
    else:
        guess = {"a": -1.0, "b": -0.5}
    return [guess, {"a": -1.0, "b": -0.5}, {"a": -3.0, "b": -0.2}]


EXP_POWER = Law(
    name="pass_at_k",
    fn=exp_power_law,
    params=("a", "b"),
    bounds=_exp_power_bounds,
    starts=_exp_power_starts,
    asymptote=lambda p: 1.0,
)


LAWS: dict[str, Law] = {"sigmoid": SIGMOID, "creep": CREEP, "entropy": ENTROPY, "power": POWER, "pass_at_k": EXP_POWER}
