"""Intervals (analysis/bootstrap.py) and the coverage simulation (analysis/simulate.py)."""

import numpy as np
import pytest

from analysis.bootstrap import Interval, ar1_from_residuals, bootstrap, curve_band, predict
from analysis.fit import FitError, fit_sigmoid
from analysis.laws import sigmoid
from analysis.simulate import PARAMS, Scenario, coverage, draw_dataset, synthetic_run

TRUE = dict(A=0.65, B=1.6, C_mid=1000.0, R0=0.3)


def one_run(seed=0, sd=0.015, n=30, c_max=6000.0, ar=0.0):
    return synthetic_run(np.random.default_rng(seed), **TRUE, n_points=n, c_max=c_max, sd=sd, ar=ar)


def test_interval_basics():
    i = Interval(0.6, 0.55, 0.7)
    assert i.contains(0.55) and i.contains(0.7) and not i.contains(0.71)
    assert i.width == pytest.approx(0.15)


def test_intervals_hold_the_estimate_and_the_truth():
    C, R = one_run(0)
    fit = fit_sigmoid(C, R)
    boot = bootstrap(fit, n_boot=150, seed=0)
    assert boot.scheme == "ar1" and boot.n_failed == 0
    for name in ("A", "B", "C_mid"):
        iv = boot.intervals[name]
        assert iv.low <= fit.params[name] <= iv.high
        assert iv.contains(TRUE[name]), (name, iv)
    assert boot.intervals["asymptote"] == boot.intervals["A"]
    assert 0.0 < boot.intervals["A"].width < 0.15


def test_more_noise_gives_wider_intervals():
    widths = []
    for sd in (0.005, 0.03):
        C, R = one_run(1, sd=sd)
        widths.append(bootstrap(fit_sigmoid(C, R), n_boot=120, seed=1).intervals["A"].width)
    assert widths[1] > 2 * widths[0]


def test_intervals_stay_inside_the_search_range():
    # a short run still rising in log-compute with a slow wobble: strongly correlated evals leave
    # few effective points, the intervals are widened by t(dof) / z, and without the cut the
    # accuracy asymptote's upper end would lie above 1
    rng = np.random.default_rng(0)
    C = np.geomspace(1.0, 100.0, 10)
    R = 0.35 + 0.03 * np.log(C) + np.cumsum(rng.normal(0.0, 0.02, C.size))
    fit = fit_sigmoid(C, R)
    boot = bootstrap(fit, n_boot=120, seed=0)
    for name, (lo, hi) in fit.bounds.items():
        iv = boot.intervals[name]
        assert lo <= iv.low <= iv.value <= iv.high <= hi, (name, iv, (lo, hi))
    assert boot.intervals["asymptote"] == boot.intervals["A"]
    assert boot.widen > 3.0 and fit.params["A"] < 0.6 and boot.intervals["A"].high == fit.bounds["A"][1] == 1.0


def test_same_seed_same_intervals():
    C, R = one_run(2)
    fit = fit_sigmoid(C, R)
    a, b = bootstrap(fit, n_boot=60, seed=5), bootstrap(fit, n_boot=60, seed=5)
    assert a.intervals["A"] == b.intervals["A"]


@pytest.mark.parametrize("scheme", ["residual", "wild"])
def test_other_point_schemes(scheme):
    C, R = one_run(3)
    boot = bootstrap(fit_sigmoid(C, R), n_boot=80, scheme=scheme, seed=0)
    assert boot.scheme == scheme
    assert boot.intervals["A"].contains(0.65)


def test_unknown_scheme_and_seeds_without_seeds():
    C, R = one_run(0)
    fit = fit_sigmoid(C, R)
    with pytest.raises(ValueError, match="unknown bootstrap scheme"):
        bootstrap(fit, n_boot=30, scheme="jackknife")
    with pytest.raises(FitError, match="at least 2 runs"):
        bootstrap(fit, n_boot=30, scheme="seeds")


def test_ar1_estimate_is_corrected_for_the_fit():
    # Residuals of a fitted curve understate the noise's autocorrelation; the estimate corrects it.
    phis = []
    for seed in range(12):
        C, R = one_run(seed, n=40, ar=0.5)
        phis.append(ar1_from_residuals(fit_sigmoid(C, R))[0])
    assert np.mean(phis) == pytest.approx(0.5, abs=0.12)
    C, R = one_run(0, n=40)
    assert ar1_from_residuals(fit_sigmoid(C, R))[0] < 0.2


def test_seed_bootstrap_is_a_t_interval():
    sc = Scenario(n_seeds=4)
    C, R, g, truth = draw_dataset(sc, np.random.default_rng(0))
    fit = fit_sigmoid(C, R, groups=g)
    boot = bootstrap(fit, n_boot=200, seed=0)
    assert boot.scheme == "seeds" and "4 seeds" in boot.method
    # widen = t_{3, 0.975} * sqrt(4 / 3) = 3.1824 * 1.1547
    assert boot.widen == pytest.approx(3.1824 * 1.1547, rel=1e-3)
    sd = np.std(boot.draws["A"], ddof=1)
    assert boot.intervals["A"].high - fit.params["A"] == pytest.approx(boot.widen * sd)


def test_prediction_and_band():
    C, R = one_run(4)
    fit = fit_sigmoid(C, R)
    boot = bootstrap(fit, n_boot=100, seed=0)
    curve, one_eval = predict(fit, boot, 12000.0)
    true = sigmoid(np.array([12000.0]), **TRUE)[0]
    assert curve.contains(true)
    assert one_eval.low <= curve.low and one_eval.high >= curve.high  # an eval adds its noise
    mid, lo, hi = curve_band(fit, boot, np.array([500.0, 3000.0, 12000.0]))
    assert np.all(lo <= mid) and np.all(mid <= hi)
    assert hi[2] - lo[2] == pytest.approx(curve.width, rel=1e-9)


def test_coverage_quick():
    # A handful of datasets: the machinery runs and rates are sane (the real check is the slow test).
    cov = coverage(Scenario(), 6, n_boot=40, seed=3)
    assert cov.n_fitted == 6
    assert set(PARAMS) <= set(cov.hits)
    assert all(0 <= cov.rate(p) <= 1 for p in PARAMS)


@pytest.mark.slow
def test_stated_95_intervals_cover_at_least_90_percent():
    """The coverage simulation, smaller than bench/analysis_coverage.py (which runs 300 datasets)."""
    cov = coverage(Scenario(), 100, n_boot=150, seed=11, workers=2)
    assert cov.n_fitted >= 95
    for name in ("A", "B", "C_mid", "R(2C)"):
        assert cov.rate(name) >= 0.90, (name, cov.rate(name))
