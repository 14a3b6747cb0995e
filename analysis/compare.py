"""Compare runs or recipes by where they will end up: A, B and C_mid with intervals, ranked by A.

ScaleRL (Khatri et al. 2025) compares recipes by the fitted asymptote A first and efficiency
(B, C_mid) second (App. A.8: "prioritize design choices that raise the asymptotic ceiling A, and
only then optimize for efficiency"). It takes +-0.02 as the error margin on A from three seeds
(App. A.5), and compares the efficiency of recipes whose A agree by refitting them with the average
of their A values and comparing B (App. A.5, Sec. 4).

Here a difference between two fits is *significant* when its 95% interval excludes 0. The two fits
are independent, so the interval of the difference combines each side's half-widths in quadrature:
[d - sqrt(lo1^2 + hi2^2), d + sqrt(hi1^2 + lo2^2)] for d = v1 - v2 (lo, hi the distances from each
estimate to its interval ends). A single run's interval holds eval noise only, not seed-to-seed
variation, so where a side is a single run the difference in A must also exceed ScaleRL's 0.02
seed margin to count; with seeds on both sides, the seed-level intervals decide alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import Interval
from analysis.extrapolate import CurveFit, fit_curve

SEED_MARGIN = 0.02
"""ScaleRL's error margin on A from three independent runs (Khatri et al. 2025, App. A.5)."""


@dataclass(frozen=True)
class Difference:
    """v(a) - v(b) for one parameter, with its interval and whether it counts as significant."""

    a: str
    b: str
    param: str
    diff: Interval
    significant: bool


@dataclass(frozen=True)
class Verdict:
    """What an ablation did relative to the baseline."""

    label: str
    effect: str
    """"asymptote", "efficiency" or "none"."""
    detail: str


@dataclass(frozen=True)
class Comparison:
    rows: list[CurveFit]
    """Ranked by A, highest first."""
    adjacent: list[Difference]
    """A of each row against the row ranked just below it."""
    baseline: str | None
    verdicts: list[Verdict]


def difference(a: Interval, b: Interval, *, log: bool = False) -> Interval:
    """Interval of a - b for independent estimates (half-widths in quadrature; in logs if ``log``)."""
    tr = np.log if log else (lambda v: v)
    va, la, ha = tr(a.value), tr(a.low), tr(a.high)
    vb, lb, hb = tr(b.value), tr(b.low), tr(b.high)
    d = float(va - vb)
    low = d - float(np.hypot(va - la, hb - vb))
    high = d + float(np.hypot(ha - va, vb - lb))
    return Interval(d, low, high, a.level)


def _seeded(cf: CurveFit) -> bool:
    return cf.boot.scheme == "seeds"


def a_difference(a: CurveFit, b: CurveFit, margin: float = SEED_MARGIN) -> Difference:
    """A(a) - A(b): significant if its interval excludes 0 (and beyond ``margin`` unless both have seeds)."""
    d = difference(a.interval("A"), b.interval("A"))
    significant = not d.contains(0.0)
    if not (_seeded(a) and _seeded(b)):
        significant = significant and abs(d.value) > margin
    return Difference(a.label, b.label, "A", d, significant)


def shared_a_refit(cf: CurveFit, A: float, n_boot: int = 200) -> CurveFit:
    """Refit a sigmoid with A held at ``A`` (ScaleRL's refit at the average A to compare B); the same
    law, under the same prior, as the fit it refits."""
    return fit_curve(
        cf.x,
        cf.y,
        cf.groups,
        law=cf.fit.law,
        prior=cf.fit.prior,
        label=cf.label,
        budget=cf.budget,
        skip_below=cf.skip,
        fixed={"A": A},
        n_boot=n_boot,
        x_key=cf.x_key,
        y_key=cf.y_key,
        runs=cf.runs,
    )


def verdict(ablation: CurveFit, baseline: CurveFit, margin: float = SEED_MARGIN, n_boot: int = 200) -> Verdict:
    """Did ``ablation`` move the asymptote, only the efficiency, or nothing we can tell?"""
    dA = a_difference(ablation, baseline, margin)
    if dA.significant:
        sign = "raised" if dA.diff.value > 0 else "lowered"
        return Verdict(
            ablation.label, "asymptote", f"{sign} A by {dA.diff.value:+.3f} [{dA.diff.low:+.3f}, {dA.diff.high:+.3f}]"
        )
    shared = (ablation.fit.params["A"] + baseline.fit.params["A"]) / 2
    ra, rb = shared_a_refit(ablation, shared, n_boot), shared_a_refit(baseline, shared, n_boot)
    found = []
    dB = difference(ra.interval("B"), rb.interval("B"))
    if not dB.contains(0.0):
        found.append(f"B {dB.value:+.2f} [{dB.low:+.2f}, {dB.high:+.2f}]")
    dC = difference(ra.interval("C_mid"), rb.interval("C_mid"), log=True)
    if not dC.contains(0.0):
        found.append(f"C_mid x{np.exp(dC.value):.2f} [x{np.exp(dC.low):.2f}, x{np.exp(dC.high):.2f}]")
    head = f"A unchanged ({dA.diff.value:+.3f} [{dA.diff.low:+.3f}, {dA.diff.high:+.3f}])"
    if found:
        return Verdict(ablation.label, "efficiency", f"{head}; at shared A = {shared:.3f}: " + ", ".join(found))
    return Verdict(
        ablation.label, "none", f"{head}; B and C_mid at shared A = {shared:.3f} not significantly different"
    )


def compare(fits: list[CurveFit], baseline: str | None = None, margin: float = SEED_MARGIN) -> Comparison:
    """Rank fits by A, test each against the next, and judge each against ``baseline`` (a label).

    Verdicts need the sigmoid law; ``baseline=None`` gives the ranking without verdicts.
    """
    rows = sorted(fits, key=lambda cf: cf.interval("A").value, reverse=True)
    adjacent = [a_difference(rows[i], rows[i + 1], margin) for i in range(len(rows) - 1)]
    verdicts: list[Verdict] = []
    if baseline is not None:
        by_label = {cf.label: cf for cf in fits}
        if baseline not in by_label:
            raise ValueError(f"baseline {baseline!r} is not among the compared runs: {', '.join(by_label)}")
        base = by_label[baseline]
        verdicts = [verdict(cf, base, margin) for cf in fits if cf.label != baseline]
    return Comparison(rows, adjacent, baseline, verdicts)
