"""Fitting (analysis/fit.py): recovery of known parameters, bad inputs, identification warnings."""

import numpy as np
import pytest

from analysis.extrapolate import fit_curve
from analysis.fit import FitError, fit_law, fit_sigmoid, noise_scale, split_points, straight_line_p_value
from analysis.laws import entropy_law, exp_power_law, power_law, sigmoid

TRUE = dict(A=0.65, B=1.6, C_mid=1000.0, R0=0.3)


def run(seed=0, sd=0.01, n=40, c_max=8000.0, **over):
    p = {**TRUE, **over}
    C = np.linspace(0.0, c_max, n + 1)
    rng = np.random.default_rng(seed)
    return C, sigmoid(C, **p) + rng.normal(0.0, sd, C.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_sigmoid_parameters(seed):
    C, R = run(seed)
    fit = fit_sigmoid(C, R)
    assert fit.params["A"] == pytest.approx(0.65, abs=0.02)
    assert fit.params["B"] == pytest.approx(1.6, rel=0.25)
    assert fit.params["C_mid"] == pytest.approx(1000.0, rel=0.15)
    assert fit.params["R0"] == R[0]  # held fixed at the eval at C = 0
    assert fit.identified, fit.warnings


def test_recovers_in_flops_as_in_hours():
    C, R = run(0)
    a = fit_sigmoid(C, R)
    b = fit_sigmoid(C * 3.6e15, R)
    assert b.params["A"] == pytest.approx(a.params["A"], abs=1e-4)
    assert b.params["C_mid"] / 3.6e15 == pytest.approx(a.params["C_mid"], rel=1e-3)


def test_early_compute_is_left_out_and_r0_fixed():
    C, R = run(0, n=20, c_max=2000.0)  # evals every 100, last at 2000
    anchor, fitted, skip = split_points(C, R, skip_fraction=0.1)
    assert skip == pytest.approx(200.0)  # 10% of the last fitted compute
    assert anchor.tolist() == [True] + [False] * 20
    assert C[fitted].min() == pytest.approx(200.0)
    fit = fit_sigmoid(C, R, skip_below=500.0)
    assert fit.x.min() == pytest.approx(500.0)
    assert fit.free == ("A", "B", "C_mid")


def test_budget_limits_the_fit():
    C, R = run(0)
    fit = fit_sigmoid(C, R, up_to=4000.0)
    assert fit.x.max() <= 4000.0
    _, fitted, skip = split_points(C, R, up_to=4000.0)
    assert skip == pytest.approx(400.0)


def test_seeds_pool_and_r0_is_the_mean_of_first_evals():
    C1, R1 = run(0)
    C2, R2 = run(1)
    C, R = np.concatenate([C1, C2]), np.concatenate([R1, R2])
    g = np.repeat([0, 1], C1.size)
    fit = fit_sigmoid(C, R, groups=g)
    assert fit.params["R0"] == pytest.approx((R1[0] + R2[0]) / 2)
    assert sorted(fit.anchor.tolist()) == sorted([R1[0], R2[0]])
    assert set(np.unique(fit.groups)) == {0, 1}


def test_no_eval_at_zero_is_said():
    C, R = run(0)
    fit = fit_sigmoid(C[1:], R[1:])
    assert fit.params["R0"] == R[1]
    assert any("no eval at" in w for w in fit.warnings)


def test_robust_loss_resists_an_outlier():
    C, R = run(3)
    R_bad = R.copy()
    R_bad[-3] = 0.05  # one broken eval near the end
    assert fit_sigmoid(C, R_bad).params["A"] == pytest.approx(fit_sigmoid(C, R).params["A"], abs=0.01)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warns_when_the_data_never_bends(seed):
    # Only the start of the curve, up to a third of C_mid: the bend is not in the data. The point
    # estimate of A may be anything; the fit must say it is poorly identified, and the interval
    # must still be honest.
    C, R = run(seed, c_max=330.0, sd=0.01)
    cf = fit_curve(C, R, n_boot=150)
    assert not cf.identified
    assert any("pin the asymptote" in w or "beyond the last fitted point" in w for w in cf.warnings)
    assert cf.asymptote.contains(0.65)


def test_straight_line_test_sees_a_bend():
    C, R = run(0)
    fit = fit_sigmoid(C, R)
    assert straight_line_p_value(fit) < 1e-6


def test_noise_scale_estimate():
    rng = np.random.default_rng(0)
    x = np.arange(400.0)
    y = 0.001 * x + rng.normal(0.0, 0.02, x.size)
    assert noise_scale(x, y) == pytest.approx(0.02, rel=0.15)


def test_recovers_entropy_law():
    H = np.linspace(1.2, 0.3, 30)
    R = entropy_law(H, a=0.3, b=0.95) + np.random.default_rng(0).normal(0.0, 0.01, H.size)
    fit = fit_law("entropy", H, R)
    assert fit.asymptote == pytest.approx(0.65, abs=0.03)  # ceiling -a + b at H = 0
    assert fit.params["a"] == pytest.approx(0.3, abs=0.03)


def test_recovers_power_law():
    C = np.geomspace(1.0, 1e4, 30)
    R = power_law(C, A=0.8, D=0.5, B=0.4) + np.random.default_rng(0).normal(0.0, 0.005, C.size)
    fit = fit_law("power", C, R)
    assert fit.params["A"] == pytest.approx(0.8, abs=0.02)
    assert fit.params["B"] == pytest.approx(0.4, rel=0.15)


def test_recovers_pass_at_k_law():
    k = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    cov = exp_power_law(k, a=-2.0, b=-0.4) + np.random.default_rng(0).normal(0.0, 0.003, k.size)
    fit = fit_law("pass_at_k", k, cov)
    assert fit.params["a"] == pytest.approx(-2.0, rel=0.1)
    assert fit.params["b"] == pytest.approx(-0.4, rel=0.1)


@pytest.mark.parametrize(
    "C, R, message",
    [
        ([], [], "empty"),
        ([0.0, 1.0, np.nan, 3.0], [0.1, 0.2, 0.3, 0.4], "non-finite"),
        ([0.0, 1.0, 2.0], [0.1, np.inf, 0.3], "non-finite"),
        ([0.0, 1.0], [0.1, 0.2, 0.3], "pair up"),
        ([5.0], [0.3], "need at least 5"),
        ([0.0, -1.0, 2.0], [0.1, 0.2, 0.3], ">= 0"),
        (np.arange(5.0), [0.1, 0.2, 0.3, 0.35, 0.4], r"4 eval point\(s\) left to fit"),
    ],
)
def test_bad_inputs_give_clear_errors(C, R, message):
    with pytest.raises(FitError, match=message):
        fit_sigmoid(C, R)


def test_constant_and_degenerate_points():
    with pytest.raises(FitError, match="constant"):
        fit_law("sigmoid", np.arange(1.0, 11.0), np.full(10, 0.4), fixed={"R0": 0.1})
    with pytest.raises(FitError, match="same x"):
        fit_law("sigmoid", np.full(10, 3.0), np.linspace(0.1, 0.5, 10), fixed={"R0": 0.1})
    with pytest.raises(FitError, match="unknown law"):
        fit_law("logistic", [1, 2, 3], [1, 2, 3])
    with pytest.raises(FitError, match="not parameters"):
        fit_law("sigmoid", np.arange(1.0, 11.0), np.linspace(0.1, 0.5, 10), fixed={"K": 1.0})
    with pytest.raises(FitError, match="x > 0"):
        fit_law("power", np.arange(0.0, 10.0), np.linspace(0.1, 0.5, 10))
