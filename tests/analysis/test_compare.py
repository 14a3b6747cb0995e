"""Comparison of recipes (analysis/compare.py)."""

import numpy as np
import pytest

from analysis.bootstrap import Interval
from analysis.compare import a_difference, compare, difference
from analysis.extrapolate import fit_curve
from analysis.simulate import synthetic_run


def test_difference_hand_derived():
    # d = 0.70 - 0.60 = 0.10; low = 0.10 - hypot(0.03, 0.04) = 0.05; high = 0.10 + hypot(0.06, 0.08) = 0.20
    d = difference(Interval(0.70, 0.67, 0.76), Interval(0.60, 0.52, 0.64))
    assert d.value == pytest.approx(0.10)
    assert d.low == pytest.approx(0.05)
    assert d.high == pytest.approx(0.20)
    r = difference(Interval(200.0, 100.0, 400.0), Interval(100.0, 50.0, 200.0), log=True)
    assert r.value == pytest.approx(np.log(2.0))  # a ratio, in logs


def recipe(label, seeds, sd=0.01, jitter=0.005, **truth):
    """``seeds`` runs of one recipe; each seed's A differs from the recipe's by N(0, jitter)."""
    xs, ys, gs = [], [], []
    for s in range(seeds):
        rng = np.random.default_rng([s, *label.encode()])
        A = truth["A"] + rng.normal(0, jitter)
        C, R = synthetic_run(rng, **{"B": 1.6, "R0": 0.3, **truth, "A": A}, n_points=40, c_max=8000.0, sd=sd)
        xs.append(C), ys.append(R), gs.append(np.full(C.size, s))
    return fit_curve(np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), label=label, n_boot=150)


@pytest.fixture(scope="module")
def recipes():
    return {
        "base": recipe("base", 3, A=0.60, C_mid=1000.0),
        "higher": recipe("higher", 3, A=0.70, C_mid=1000.0),
        "faster": recipe("faster", 3, A=0.60, C_mid=400.0),
        "same": recipe("same", 3, A=0.60, C_mid=1000.0),
    }


def test_ranking_and_adjacent_significance(recipes):
    cmp = compare(list(recipes.values()))
    assert cmp.rows[0].label == "higher"
    top = cmp.adjacent[0]
    assert top.a == "higher" and top.significant and top.diff.low > 0


def test_verdicts_against_the_baseline(recipes):
    cmp = compare(list(recipes.values()), baseline="base")
    effects = {v.label: v.effect for v in cmp.verdicts}
    assert effects == {"higher": "asymptote", "faster": "efficiency", "same": "none"}
    detail = {v.label: v.detail for v in cmp.verdicts}
    assert "raised A" in detail["higher"] and "C_mid" in detail["faster"]


def test_single_runs_need_the_seed_margin():
    # Two single runs whose A differ by 0.01 with little noise: the intervals alone would call it,
    # but a single run's interval knows nothing of seed-to-seed spread (ScaleRL's +-0.02).
    a = recipe("a", 1, sd=0.004, jitter=0.0, A=0.61, C_mid=800.0)
    b = recipe("b", 1, sd=0.004, jitter=0.0, A=0.60, C_mid=800.0)
    d = a_difference(a, b)
    assert not d.diff.contains(0.0) and abs(d.diff.value) < 0.02
    assert not d.significant


def test_unknown_baseline(recipes):
    with pytest.raises(ValueError, match="baseline 'nope' is not among"):
        compare(list(recipes.values()), baseline="nope")
