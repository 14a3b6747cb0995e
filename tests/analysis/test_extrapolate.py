"""Fit up to a budget, predict beyond it, backtest (analysis/extrapolate.py)."""

import numpy as np
import pytest

from analysis.extrapolate import backtest, fit_curve, fit_runs, predict_at
from analysis.fit import FitError
from analysis.laws import sigmoid
from analysis.readers import load_runs
from analysis.simulate import synthetic_run
from synthetic_runs import write_run_dir

TRUE = dict(A=0.65, B=1.6, C_mid=1000.0, R0=0.3)


def test_fit_up_to_a_budget_predicts_the_rest():
    C, R = synthetic_run(np.random.default_rng(0), **TRUE, n_points=60, c_max=12000.0, sd=0.015)
    cf = fit_curve(C, R, budget=5000.0, n_boot=150)
    assert cf.fit.x.max() <= 5000.0 and cf.budget == 5000.0
    assert cf.skip == pytest.approx(0.1 * cf.fit.x.max())
    p = predict_at(cf, 12000.0)
    assert p.curve.contains(float(sigmoid(np.array([12000.0]), **TRUE)[0]))
    full = fit_curve(C, R, n_boot=150)
    bt = backtest(cf, full)
    assert len(bt.predictions) == int((C > 5000.0).sum())
    assert bt.mean_abs_error < 0.03
    assert bt.inside >= 0.8  # later evals fall inside their 95% one-eval intervals
    assert bt.final.at == pytest.approx(12000.0)
    assert bt.full_asymptote.contains(0.65)
    assert cf.interval("A").contains(0.65)


def test_backtest_needs_a_budget_and_later_points():
    C, R = synthetic_run(np.random.default_rng(1), **TRUE, n_points=30, c_max=6000.0, sd=0.01)
    with pytest.raises(FitError, match="needs a fit with a budget"):
        backtest(fit_curve(C, R, n_boot=50))
    with pytest.raises(FitError, match="no evals after the budget"):
        backtest(fit_curve(C, R, budget=1e9, n_boot=50))


def test_fit_runs_pools_seeds(tmp_path):
    for seed in (0, 1, 2):
        write_run_dir(tmp_path, f"grpo-s{seed}", seed=seed)
    runs = load_runs([str(tmp_path)])
    cf = fit_runs(runs, label="grpo", n_boot=100)
    assert cf.boot.scheme == "seeds" and cf.runs == ("grpo-s0", "grpo-s1", "grpo-s2")
    assert cf.asymptote.contains(0.62)
    assert len(np.unique(cf.groups)) == 3


def test_fit_runs_is_against_flops_by_default(tmp_path):
    kw = dict(sigmoid_in="compute/flops", C_mid=0.015 * 3.1e15)
    calm = load_runs([str(write_run_dir(tmp_path, "calm", **kw))])
    busy = load_runs([str(write_run_dir(tmp_path, "busy", slowdown=lambda step: 15.0 if step <= 20 else 1.0, **kw))])
    a, b = fit_runs(calm, n_boot=60), fit_runs(busy, n_boot=60)
    assert a.x_key == "compute/flops"
    np.testing.assert_array_equal(a.x, [line["compute/flops"] for line in calm[0].records if "val/accuracy" in line])
    assert a.fit.params == b.fit.params and a.asymptote == b.asymptote  # the busy machine changed only the hours
    assert fit_curve(a.x, a.y, n_boot=60).x_key == "compute/flops"


def test_entropy_law_through_fit_curve():
    H = np.linspace(1.3, 0.35, 30)
    R = -0.3 * np.exp(H) + 0.98 + np.random.default_rng(0).normal(0.0, 0.01, H.size)
    cf = fit_curve(H, R, law="entropy", n_boot=100, x_key="train/entropy")
    assert cf.asymptote.contains(0.68)
    assert cf.asymptote.value == pytest.approx(-cf.fit.params["a"] + cf.fit.params["b"])
