"""The learning-curve families (analysis/curves.py), the creep law (analysis/laws.py) and the ensemble
(analysis/ensemble.py) against hand-computed values."""

import math

import numpy as np
import pytest

from analysis.curves import FAMILIES, exp4, hill3, ilog2, janoschek, log_power, loglog_linear, mmf, pow3, pow4
from analysis.curves import vapor_pressure, weibull
from analysis.ensemble import DEFAULT_FAMILIES, fit_ensemble, mean_noise_factor, pseudo_bma_plus
from analysis.fit import fit_law, fit_sigmoid
from analysis.laws import CREEP, creep_sigmoid, sigmoid


def test_families_at_hand_computed_points():
    t = np.array([4.0])
    assert pow3(t, c=0.8, a=0.4, alpha=0.5)[0] == pytest.approx(0.8 - 0.4 / 2)  # 4^-0.5 = 1/2
    assert pow4(t, c=0.8, a=1.0, b=5.0, alpha=0.5)[0] == pytest.approx(0.8 - 1 / 3)  # (4 + 5)^-0.5
    assert log_power(t, a=0.9, b=math.log(2.0), c=1.0)[0] == pytest.approx(0.9 / (1 + 0.5))  # (4/2)^-1
    assert mmf(t, alpha=0.9, beta=0.1, kappa=0.5, delta=2.0)[0] == pytest.approx(0.9 - 0.8 / (1 + 4))
    assert weibull(t, alpha=0.9, beta=0.1, kappa=0.25, delta=2.0)[0] == pytest.approx(0.9 - 0.8 * math.exp(-1))
    assert janoschek(t, alpha=0.9, beta=0.1, kappa=0.5, delta=0.5)[0] == pytest.approx(0.9 - 0.8 * math.exp(-1))
    assert exp4(t, c=0.9, a=0.5, b=1.0, alpha=0.5)[0] == pytest.approx(0.9 - math.exp(-0.5 * 2 + 1))  # 0.9 - 1
    assert ilog2(t, c=0.9, a=0.2)[0] == pytest.approx(0.9 - 0.2 / math.log(5.0))
    assert hill3(t, y_max=0.8, eta=2.0, kappa=2.0)[0] == pytest.approx(0.8 * 16 / (4 + 16))
    assert vapor_pressure(t, a=-1.0, b=2.0, c=0.5)[0] == pytest.approx(math.exp(-1 + 0.5 + 0.5 * math.log(4)))
    assert loglog_linear(t, a=2.0, b=1.0)[0] == pytest.approx(math.log(2 * math.log(4) + 1))


def test_mmf_is_scalerl_sigmoid_with_free_r0():
    """MMF alpha - (alpha - beta) / (1 + (kappa t)^delta) is Eq. (1) with A = alpha, R0 = beta,
    C_mid = 1 / kappa, B = delta."""
    t = np.geomspace(0.1, 100, 7)
    assert np.allclose(mmf(t, 0.8, 0.2, 0.25, 1.7), sigmoid(t, A=0.8, B=1.7, C_mid=4.0, R0=0.2))


def test_asymptotes_of_the_families():
    assert FAMILIES["pow3"].asymptote({"c": 0.7, "a": 1, "alpha": 1}) == 0.7
    assert FAMILIES["mmf"].asymptote({"alpha": 0.6, "beta": 0.1, "kappa": 1, "delta": 1}) == 0.6
    assert FAMILIES["vapor_pressure"].asymptote({"a": 0.0, "b": 1.0, "c": 0.2}) == math.inf
    assert FAMILIES["vapor_pressure"].asymptote({"a": -1.0, "b": 1.0, "c": 0.0}) == pytest.approx(math.exp(-1))
    assert FAMILIES["loglog_linear"].asymptote({"a": 1.0, "b": 1.0}) == math.inf
    assert len(DEFAULT_FAMILIES) >= 6 and set(DEFAULT_FAMILIES) <= set(FAMILIES)


def test_creep_law_is_scalerl_at_tau_one_and_halves_at_c_mid():
    C = np.geomspace(1e9, 1e14, 11)
    assert np.allclose(creep_sigmoid(C, 0.8, 1.5, 3e11, 1.0, 0.3), sigmoid(C, 0.8, 1.5, 3e11, 0.3), atol=1e-12)
    for tau in (0.2, 0.5, 2.0):  # C_mid is the compute at half of the gain whatever the tail
        assert creep_sigmoid(np.array([3e11]), 0.8, 1.5, 3e11, tau, 0.3)[0] == pytest.approx(0.55)
    # hand-computed: tau = 0.5, B = 2, C = 2 C_mid: k = 2^2 - 1 = 3, gap = (1 + 3 * 4)^-0.5
    assert creep_sigmoid(np.array([2.0]), 1.0, 2.0, 1.0, 0.5, 0.0)[0] == pytest.approx(1 - 13**-0.5)
    assert creep_sigmoid(np.array([0.0]), 0.8, 1.5, 3e11, 0.4, 0.3)[0] == pytest.approx(0.3)


def test_creep_law_tail_closes_as_c_to_minus_b_tau():
    """Far above C_mid the gap to A falls by 2^(B tau) per doubling: the slow creep."""
    B, tau = 2.0, 0.3
    g = [0.8 - creep_sigmoid(np.array([c]), 0.8, B, 1.0, tau, 0.2)[0] for c in (1e6, 2e6)]
    assert g[0] / g[1] == pytest.approx(2 ** (B * tau), rel=1e-4)


def test_creep_fit_recovers_its_parameters():
    """Evals evenly spaced in compute to 8 C_mid, as a run's are (the fit leaves out the first 10%)."""
    rng = np.random.default_rng(0)
    C = np.linspace(0.0, 8e12, 121)
    y = creep_sigmoid(C, 0.75, 2.5, 1e12, 0.4, 0.3) + 0.002 * rng.standard_normal(C.size)
    fit = fit_sigmoid(C, y, law=CREEP, r0=0.3)
    assert fit.params["A"] == pytest.approx(0.75, abs=0.03)
    assert fit.params["tau"] == pytest.approx(0.4, rel=0.35)
    assert fit.params["C_mid"] == pytest.approx(1e12, rel=0.1)


def test_pseudo_bma_plus_weights():
    # two models, one far better on every held-out point: it takes the weight
    ll = np.column_stack([np.full(10, -1.0), np.full(10, -3.0)])
    w = pseudo_bma_plus(ll)
    assert w.sum() == pytest.approx(1.0) and w[0] > 0.999
    # equal scores: equal weights; softmax of n * mean: a 0.1 nat gap per point over 10 points is e^1
    assert pseudo_bma_plus(np.zeros((8, 3))) == pytest.approx([1 / 3] * 3)
    w = pseudo_bma_plus(np.column_stack([np.full(10, -1.0), np.full(10, -1.1)]), n_boot=10)
    assert w[0] / w[1] == pytest.approx(math.e, rel=1e-9)  # constant columns: every Dirichlet draw agrees


def test_mean_noise_factor():
    assert mean_noise_factor(1, 0.5) == pytest.approx(1.0)
    assert mean_noise_factor(4, 0.0) == pytest.approx(0.5)
    # n = 2, phi: Var(mean) = (1 + phi) / 2
    assert mean_noise_factor(2, 0.4) == pytest.approx(math.sqrt(0.7))


def test_ensemble_extrapolates_a_power_law_curve():
    """On a curve that is one of the families plus noise, the weighted ensemble predicts 4x beyond its
    data within the noise, and its interval covers the truth."""
    rng = np.random.default_rng(1)
    x = np.linspace(1e10, 1e12, 40)
    truth = lambda c: pow3(c / 1e10, c=0.85, a=0.5, alpha=0.6)  # noqa: E731
    y = truth(x) + 0.005 * rng.standard_normal(x.size)
    ens = fit_ensemble(x, y, n_boot=60)
    assert sum(ens.weights.values()) == pytest.approx(1.0)
    curve, end = ens.predict(4e12, n_evals=5)
    assert abs(curve.value - truth(np.array([4e12]))[0]) < 0.02
    assert curve.low <= truth(np.array([4e12]))[0] <= curve.high
    assert end.width >= curve.width


def test_a_family_fits_through_the_common_fitter():
    t = np.linspace(1, 30, 25)
    y = weibull(t, 0.8, 0.2, 0.1, 1.3)
    fit = fit_law(FAMILIES["weibull"], t, y)
    assert fit.asymptote == pytest.approx(0.8, abs=0.01)


def test_akaike_weights_by_hand():
    from analysis.ensemble import akaike_weights

    t = np.linspace(1, 10, 12)
    y = pow3(t, 0.8, 0.5, 0.7) + 0.01 * np.sin(7 * t)
    f3, f2 = fit_law(FAMILIES["pow3"], t, y), fit_law(FAMILIES["ilog2"], t, y)
    w = akaike_weights([f3, f2])

    def aicc(f):
        n, k = f.x.size, len(f.free) + 1
        return n * math.log(float(np.sum(f.residuals**2)) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)

    assert w[0] / w[1] == pytest.approx(math.exp(-0.5 * (aicc(f3) - aicc(f2))))
    assert w.sum() == pytest.approx(1.0)


def test_the_verdict_names_a_ceiling_only_once_the_run_has_stopped_rising():
    """A run that has flattened is identified; the same curve cut while it still climbs is not, and
    says what it promises instead (the value at 2x its last fitted compute)."""
    from analysis.extrapolate import fit_curve
    from analysis.verdict import continued_rise, still_rising, verdict, verdict_text

    rng = np.random.default_rng(3)
    C = np.linspace(0, 2e14, 101)
    y = sigmoid(C, A=0.7, B=2.5, C_mid=1e13, R0=0.3) + 0.005 * rng.standard_normal(C.size)
    done = verdict(fit_curve(C, y, n_boot=80))
    assert done.identified, done.reasons
    assert verdict_text(done, "flat", "val/accuracy", "compute/flops").startswith(
        "predicted asymptote of val/accuracy for flat: 0.7")
    early = verdict(fit_curve(C, y, budget=2e13, n_boot=80))  # up to 2 C_mid: still rising
    assert not early.identified and any("still rising" in r for r in early.reasons)
    assert early.at == pytest.approx(2 * 2e13, rel=0.05)
    assert early.value.low <= sigmoid(np.array([early.at]), 0.7, 2.5, 1e13, 0.3)[0] <= early.value.high
    text = verdict_text(early, "early", "val/accuracy", "compute/flops")
    assert "does not promise a ceiling" in text and "it promises val/accuracy = " in text
    # the rise per doubling by hand: y = 0.1 ln x exactly rises 0.1 ln 2 per doubling
    x = np.linspace(1, 16, 30)
    rise, p = still_rising(x, 0.1 * np.log(x) + 1e-4 * np.sin(x))
    assert rise == pytest.approx(0.1 * np.log(2), rel=1e-2) and p < 1e-6
    # continued, the same line reaches 0.1 ln 32 at twice the last x; the bound sits just above it
    hi = continued_rise(x, 0.1 * np.log(x) + 1e-4 * np.sin(x), 32.0)
    assert 0.1 * np.log(32) < hi < 0.1 * np.log(32) + 2e-3
    # a still-rising run's promise reaches at least as high as its rise continued (capped at A's range)
    assert early.value.high >= min(continued_rise(C[C <= 2e13], y[C <= 2e13], early.at), 1.0) - 1e-9
    assert still_rising(x, 0.5 + 1e-3 * np.cos(7 * x)) is None
