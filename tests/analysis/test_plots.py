"""Plots (analysis/plots.py) are written as PNGs."""

import numpy as np

from analysis.extrapolate import fit_curve, predict_at
from analysis.plots import plot_entropy, plot_fit, plot_runs
from analysis.simulate import synthetic_run

PNG = b"\x89PNG\r\n\x1a\n"


def curve(seed, A, budget=None):
    C, R = synthetic_run(
        np.random.default_rng(seed), A=A, B=1.6, C_mid=1000.0, R0=0.3, n_points=40, c_max=8000.0, sd=0.015
    )
    return fit_curve(C, R, label=f"A={A}", budget=budget, n_boot=60)


def test_plots_are_pngs(tmp_path):
    cf = curve(0, 0.65, budget=4000.0)
    p1 = plot_fit(cf, tmp_path / "fit.png", prediction=predict_at(cf, 20000.0))
    p2 = plot_runs([cf, curve(1, 0.55)], tmp_path / "sub" / "runs.png")
    H = np.linspace(1.2, 0.3, 25)
    ent = fit_curve(
        H,
        -0.3 * np.exp(H) + 0.95 + np.random.default_rng(0).normal(0, 0.01, H.size),
        law="entropy",
        n_boot=60,
        x_key="train/entropy",
    )
    p3 = plot_entropy(ent, tmp_path / "entropy.png")
    for p in (p1, p2, p3):
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000
