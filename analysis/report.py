"""Readable tables and fit.json for fits, predictions, backtests and comparisons.

Tables are plain text with aligned columns, each parameter followed by its interval,
``0.652 [0.631, 0.680]``; fit.json holds the same numbers with their names, the method and the
points that were fitted, so that a fit can be checked or redrawn without the run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.bootstrap import Interval
from analysis.compare import Comparison
from analysis.curves import ALL_LAWS
from analysis.extrapolate import Backtest, CurveFit, Prediction

SCHEMA = "asymptote.analysis/1"


def num(v: float, digits: int = 4) -> str:
    """A number in ``digits`` significant digits, plain where it reads better (0.652, 1.62, 3.1e+04)."""
    if v is None or not math.isfinite(v):
        return "nan" if v is not None else "-"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if -3 <= mag < 5:
        return f"{v:.{max(digits - 1 - mag, 0)}f}"
    return f"{v:.{digits - 1}e}"


def iv(i: Interval, digits: int = 3) -> str:
    return f"{num(i.value, digits)} [{num(i.low, digits)}, {num(i.high, digits)}]"


def signed(i: Interval) -> str:
    """A difference: +0.104 [+0.051, +0.160]."""
    return f"{i.value:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    left = [i < left for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(cells, widths, left)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def fits_table(fits: list[CurveFit]) -> str:
    """One row per fit: the law's parameters with their intervals and the asymptote."""
    law = ALL_LAWS[fits[0].fit.law]
    shown = [p for p in law.params if p != "R0"]
    level = int(round(100 * fits[0].boot.level))
    header = ["run", "seeds", "points", "fitted x range"] + (["R0"] if "R0" in law.params else [])
    header += [f"{p} [{level}%]" for p in shown] + ([] if law.name == "sigmoid" else [f"asymptote [{level}%]"])
    rows = []
    for cf in fits:
        lo, hi = cf.fitted_range
        row = [
            cf.label + (" (!)" if cf.warnings else ""),
            str(len(np.unique(cf.groups))),
            f"{cf.fit.x.size}/{cf.x.size}",
            f"{num(lo)}-{num(hi)}",
        ]
        if "R0" in law.params:
            row.append(num(cf.fit.params["R0"], 3))
        row += [iv(cf.interval(p)) for p in shown]
        if law.name != "sigmoid":
            row.append(iv(cf.asymptote))
        rows.append(row)
    return table(header, rows)


def notes(fits: list[CurveFit]) -> str:
    """The interval method and every warning, one per line."""
    out = [f"fit: {describe(fits[0])}", f"intervals: {fits[0].boot.method}, {fits[0].boot.n_boot} refits"]
    for cf in fits:
        out += [f"(!) {cf.label}: {w}" for w in cf.warnings]
    return "\n".join(out)


def describe(cf: CurveFit) -> str:
    if cf.fit.law == "sigmoid":
        return (
            f"ScaleRL sigmoid R = R0 + (A - R0) / (1 + (C_mid / C)^B) of {cf.y_key} against {cf.x_key}, "
            f"R0 fixed at the first eval, {cf.x_key} below {num(cf.skip)} left out"
            + (f", fitted up to {num(cf.budget)}" if cf.budget is not None else "")
        )
    if cf.fit.law == "creep":
        prior = "" if cf.fit.prior is None else ", under a prior learned from finished runs (maximum a posteriori)"
        return (
            f"creep law R = R0 + (A - R0) (1 - (1 + (2^(1/tau) - 1) (C / C_mid)^B)^-tau) (ScaleRL's sigmoid at "
            f"tau = 1) of {cf.y_key} against {cf.x_key}, R0 fixed at the first eval, {cf.x_key} below "
            f"{num(cf.skip)} left out" + (f", fitted up to {num(cf.budget)}" if cf.budget is not None else "") + prior
        )
    if cf.fit.law == "entropy":
        return f"entropy law R = -a exp(H) + b of {cf.y_key} against {cf.x_key}; asymptote = -a + b at H = 0"
    return f"{cf.fit.law} law of {cf.y_key} against {cf.x_key}"


def predictions_table(preds: list[tuple[str, Prediction]], hours: list[float | None] | None = None) -> str:
    """One row per prediction; with ``hours`` (one per prediction, None where unknown), a column of
    device-hours beside x, the two units of the same compute."""
    header = ["run", "at", "curve [95%]", "one eval [95%]", "observed"]
    rows = [
        [label, num(p.at), iv(p.curve), iv(p.eval), "-" if p.observed is None else num(p.observed, 3)]
        for label, p in preds
    ]
    if hours is not None:
        header.insert(2, "device-hours")
        for row, h in zip(rows, hours):
            row.insert(2, "-" if h is None else num(h, 3))
    return table(header, rows)


def backtest_text(label: str, bt: Backtest) -> str:
    header = ["x", "observed", "predicted [95% one eval]", "inside", "error"]
    rows = [
        [num(p.at), num(p.observed, 3), iv(p.eval), "yes" if p.eval.contains(p.observed) else "NO", f"{p.error:+.3f}"]
        for p in bt.predictions
    ]
    lines = [
        f"backtest of {label}: fitted up to {num(bt.budget)}, checked on {len(bt.predictions)} later evals",
        table(header, rows),
    ]
    lines.append(
        f"mean |error| {bt.mean_abs_error:.4f}; {100 * bt.inside:.0f}% of later evals inside their 95% interval"
    )
    if bt.full_asymptote is not None:
        lines.append(f"A fitted on the whole run: {iv(bt.full_asymptote)}")
    return "\n".join(lines)


def comparison_text(cmp: Comparison) -> str:
    header = ["rank", "run", "seeds", "A [95%]", "B [95%]", "C_mid [95%]", "A - next [95%]", "significant"]
    rows = []
    for i, cf in enumerate(cmp.rows):
        d = cmp.adjacent[i] if i < len(cmp.adjacent) else None
        rows.append(
            [
                str(i + 1),
                cf.label + (" (!)" if cf.warnings else ""),
                str(len(np.unique(cf.groups))),
                iv(cf.interval("A")),
                iv(cf.interval("B")),
                iv(cf.interval("C_mid")),
                "-" if d is None else signed(d.diff),
                "-" if d is None else ("yes" if d.significant else "no"),
            ]
        )
    out = [table(header, rows, left=2)]
    if cmp.verdicts:
        out.append(f"\nagainst the baseline {cmp.baseline}:")
        moved = {"asymptote": "the asymptote", "efficiency": "efficiency only", "none": "nothing significant"}
        out.append(
            table(["ablation", "moved", "detail"], [[v.label, moved[v.effect], v.detail] for v in cmp.verdicts], left=3)
        )
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# fit.json
# --------------------------------------------------------------------------------------------


def interval_json(i: Interval) -> dict[str, float]:
    return {"value": i.value, "low": i.low, "high": i.high}


def curve_json(cf: CurveFit) -> dict[str, Any]:
    law = ALL_LAWS[cf.fit.law]
    return {
        "label": cf.label,
        "runs": list(cf.runs),
        "law": law.name,
        "x": cf.x_key,
        "y": cf.y_key,
        "params": {p: interval_json(cf.interval(p)) for p in law.params},
        "asymptote": interval_json(cf.asymptote),
        "fixed": sorted(cf.fit.fixed),
        "level": cf.boot.level,
        "interval_method": cf.boot.method,
        "n_boot": cf.boot.n_boot,
        "n_boot_failed": cf.boot.n_failed,
        "noise_sd": cf.fit.sigma,
        "noise_phi": cf.boot.phi,
        "skip_below": cf.skip,
        "budget": cf.budget,
        "fitted_range": list(cf.fitted_range),
        "n_points_fitted": int(cf.fit.x.size),
        "n_points": int(cf.x.size),
        "identified": cf.identified,
        "warnings": list(cf.warnings),
        "points": {"x": cf.x.tolist(), "y": cf.y.tolist(), "run": cf.groups.tolist()},
    }


def prediction_json(label: str, p: Prediction) -> dict[str, Any]:
    return {
        "label": label,
        "at": p.at,
        "curve": interval_json(p.curve),
        "eval": interval_json(p.eval),
        "observed": p.observed,
    }


def backtest_json(label: str, bt: Backtest) -> dict[str, Any]:
    return {
        "label": label,
        "budget": bt.budget,
        "mean_abs_error": bt.mean_abs_error,
        "fraction_inside": bt.inside,
        "full_asymptote": None if bt.full_asymptote is None else interval_json(bt.full_asymptote),
        "predictions": [prediction_json(label, p) for p in bt.predictions],
    }


def comparison_json(cmp: Comparison) -> dict[str, Any]:
    return {
        "ranking": [cf.label for cf in cmp.rows],
        "adjacent_A_differences": [
            {"a": d.a, "b": d.b, "diff": interval_json(d.diff), "significant": d.significant} for d in cmp.adjacent
        ],
        "baseline": cmp.baseline,
        "verdicts": [{"label": v.label, "effect": v.effect, "detail": v.detail} for v in cmp.verdicts],
    }
