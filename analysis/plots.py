"""PNG plots of fits: one run, several runs, entropy against reward.

Figures are built with matplotlib's object API (``Figure`` + Agg canvas), so nothing here touches
pyplot's global state or the backend of the caller. Compute is on a log axis (ScaleRL's sigmoid is
a logistic curve in log C); R0, measured at C = 0, is drawn as a dotted line since 0 has no place on
a log axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.bootstrap import curve_band
from analysis.extrapolate import CurveFit, Prediction
from analysis.report import iv

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


def _figure(width: float = 7.5, height: float = 4.8):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _grid(cf: CurveFit, right: float) -> np.ndarray:
    positive = cf.x[cf.x > 0]
    left = float(positive.min()) if positive.size else float(cf.fit.x.min())
    return np.geomspace(left, right, 300)


def _draw_curve(ax, cf: CurveFit, color: str, right: float, label: str | None, band: bool = True) -> None:
    """The fit: solid over the fitted region, dashed beyond it, with its interval band."""
    xs = _grid(cf, right)
    mid, lo, hi = curve_band(cf.fit, cf.boot, xs)
    end = cf.fitted_range[1]
    inside = xs <= end
    ax.plot(xs[inside], mid[inside], color=color, lw=2, label=label)
    ax.plot(
        xs[~inside | (np.arange(xs.size) == inside.sum() - 1)],
        mid[~inside | (np.arange(xs.size) == inside.sum() - 1)],
        color=color,
        lw=2,
        ls="--",
    )
    if band:
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, lw=0)


def _draw_asymptote(ax, cf: CurveFit, color: str, text: bool = True) -> None:
    a = cf.asymptote
    ax.axhline(a.value, color=color, lw=1, ls=":")
    ax.axhspan(a.low, a.high, color=color, alpha=0.07, lw=0)
    if text:
        ax.annotate(
            f"A = {iv(a)}",
            xy=(1.0, a.value),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            va="bottom",
            color=color,
            fontsize=9,
        )


def plot_fit(cf: CurveFit, path: str | Path, *, prediction: Prediction | None = None, title: str | None = None) -> Path:
    """One run: its evals (fitted, skipped early, after the budget), the fit with its 95% band, solid
    where fitted and dashed where extrapolated, the fitted region shaded, and the asymptote."""
    fig, ax = _figure()
    color = COLORS[0]
    fitted = np.isin(cf.x, cf.fit.x) & (cf.x >= cf.fitted_range[0]) & (cf.x <= cf.fitted_range[1])
    later = cf.x > cf.fitted_range[1]
    early = ~fitted & ~later & (cf.x > 0)
    right = float(cf.x.max()) * 2.0
    if prediction is not None:
        right = max(right, prediction.at * 1.3)
    lo, hi = cf.fitted_range
    ax.axvspan(lo, hi, color="0.5", alpha=0.08, lw=0, label="fitted region")
    ax.axvline(hi, color="0.5", lw=0.8)
    ax.text(hi, 0.02, "  extrapolated →", transform=ax.get_xaxis_transform(), fontsize=8, color="0.35", va="bottom")
    _draw_curve(ax, cf, color, right, label=f"{cf.fit.law} fit, 95% band")
    _draw_asymptote(ax, cf, color)
    if "R0" in cf.fit.params:
        ax.axhline(cf.fit.params["R0"], color="0.4", lw=0.8, ls=(0, (1, 3)))
        ax.annotate(
            f"R0 = {cf.fit.params['R0']:.3f} (eval at C = 0)",
            xy=(0.0, cf.fit.params["R0"]),
            xycoords=("axes fraction", "data"),
            xytext=(4, -3),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color="0.35",
        )
    ax.scatter(cf.x[fitted], cf.y[fitted], s=16, color=color, zorder=3, label="evals fitted")
    if early.any():
        ax.scatter(
            cf.x[early],
            cf.y[early],
            s=16,
            facecolors="none",
            edgecolors="0.45",
            zorder=3,
            label="early evals, left out",
        )
    if later.any():
        ax.scatter(
            cf.x[later], cf.y[later], s=20, marker="x", color="#d62728", zorder=3, label="later evals, not fitted"
        )
    if prediction is not None:
        p = prediction
        ax.errorbar(
            [p.at],
            [p.curve.value],
            yerr=[[p.curve.value - p.eval.low], [p.eval.high - p.curve.value]],
            fmt="D",
            color="#2ca02c",
            capsize=4,
            zorder=4,
            label=f"prediction at {p.at:.4g}: {iv(p.curve)}",
        )
    ax.set_xscale("log")
    ax.set_xlabel(cf.x_key + " (log)")
    ax.set_ylabel(cf.y_key)
    ax.set_title(
        title or f"{cf.label}: A = {iv(cf.asymptote)}" + ("  (poorly identified)" if cf.warnings else ""), fontsize=10
    )
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 0.08))
    ax.grid(alpha=0.25, which="both")
    return _save(fig, path)


def plot_runs(fits: list[CurveFit], path: str | Path, *, title: str | None = None) -> Path:
    """Several runs or recipes on one figure: evals, fits with bands, asymptotes, ranked legend."""
    fig, ax = _figure(8.0, 5.0)
    right = max(float(cf.x.max()) for cf in fits) * 2.0
    ranked = sorted(fits, key=lambda cf: cf.asymptote.value, reverse=True)
    for i, cf in enumerate(ranked):
        color = COLORS[i % len(COLORS)]
        keep = cf.x > 0
        ax.scatter(cf.x[keep], cf.y[keep], s=9, color=color, alpha=0.55, zorder=3)
        _draw_curve(ax, cf, color, right, label=f"{cf.label}: A = {iv(cf.asymptote)}")
        _draw_asymptote(ax, cf, color, text=False)
    ax.set_xscale("log")
    ax.set_xlabel(fits[0].x_key + " (log)")
    ax.set_ylabel(fits[0].y_key)
    ax.set_title(title or "fits ranked by asymptote (solid: fitted, dashed: extrapolated)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.25, which="both")
    return _save(fig, path)


def plot_entropy(cf: CurveFit, path: str | Path, *, title: str | None = None) -> Path:
    """Reward against policy entropy with Cui et al.'s law R = -a exp(H) + b down to H = 0, where
    the ceiling -a + b is marked with its interval."""
    fig, ax = _figure(6.5, 4.6)
    color = COLORS[0]
    ax.scatter(cf.x, cf.y, s=16, color=color, zorder=3, label="evals (thin line: order in training)")
    for g in np.unique(cf.groups):
        ax.plot(cf.x[cf.groups == g], cf.y[cf.groups == g], color=color, lw=0.5, alpha=0.4)
    xs = np.linspace(0.0, float(cf.x.max()) * 1.05, 200)
    mid, lo, hi = curve_band(cf.fit, cf.boot, xs)
    ax.plot(xs, mid, color="k", lw=1.8, label="R = -a exp(H) + b")
    ax.fill_between(xs, lo, hi, color="k", alpha=0.12, lw=0)
    c = cf.asymptote
    ax.errorbar(
        [0.0],
        [c.value],
        yerr=[[c.value - c.low], [c.high - c.value]],
        fmt="*",
        ms=12,
        color="#d62728",
        capsize=4,
        zorder=4,
        label=f"ceiling at H = 0: {iv(c)}",
    )
    ax.set_xlim(left=-0.02 * float(cf.x.max()))
    ax.set_xlabel(cf.x_key)
    ax.set_ylabel(cf.y_key)
    a, b = cf.interval("a"), cf.interval("b")
    ax.set_title(title or f"{cf.label}: entropy-performance law (Cui et al. 2025)\na = {iv(a)}, b = {iv(b)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.25)
    return _save(fig, path)
