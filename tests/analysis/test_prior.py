"""The prior learned from finished runs (analysis/prior.py): its coordinates, its file, recovering the
hyper-parameters of synthetic curves drawn from a known prior, and a prefix fit under it."""

import json

import numpy as np
import pytest
from scipy.special import expit

from analysis.fit import FitError
from analysis.laws import creep_sigmoid
from analysis.prior import COMPONENTS, Curve, Prior, build_prior, coordinates, map_fit, prior_fit, step_compute

STEP = 1e10  # compute per optimizer step of the synthetic runs
TRUE_MEAN = np.array([np.log(2.2), np.log(1.1), np.log(40.0), 0.4])  # log B, log B tau, log C_mid in steps, logit gain
BETWEEN_SD = np.array([0.12, 0.15, 0.25, 0.3])  # how families differ
WITHIN_SD = np.array([0.06, 0.08, 0.1, 0.15])  # how runs of one family differ


def law_of(z, r0=0.3):
    """(A, B, C_mid, tau) of the creep law with coordinates z (log B, log B tau, log C_mid in steps, logit gain)."""
    return r0 + expit(z[3]) * (1 - r0), np.exp(z[0]), np.exp(z[2]) * STEP, np.exp(z[1] - z[0])


def synthetic_curve(z, seed, steps=320, every=4, r0=0.3, sd=0.004):
    rng = np.random.default_rng(seed)
    x = np.arange(0, steps + 1, every) * STEP
    A, B, C_mid, tau = law_of(z, r0)
    y = creep_sigmoid(x, A, B, C_mid, tau, r0) + sd * rng.standard_normal(x.size)
    return x, np.clip(y, 0, 1), A


def draw_corpus(n_families=4, runs_per_family=3, seed=0):
    rng = np.random.default_rng(seed)
    curves = []
    for f in range(n_families):
        family_z = TRUE_MEAN + BETWEEN_SD * rng.standard_normal(4)
        for i in range(runs_per_family):
            z = family_z + WITHIN_SD * rng.standard_normal(4)
            x, y, _ = synthetic_curve(z, seed=100 * f + i)
            curves.append(Curve(f"fam{f}-run{i}", f"fam{f}", x, y, STEP))
    return curves


@pytest.fixture(scope="module")
def learned():
    return build_prior(draw_corpus(), n_iter=2, components=COMPONENTS)


def test_coordinates_by_hand():
    p = {"A": 0.8, "B": 2.0, "C_mid": 3e11, "tau": 0.5, "R0": 0.3}
    z = coordinates(p, COMPONENTS, step_compute=1e10, top=1.0)
    assert z == pytest.approx([np.log(2.0), np.log(1.0), np.log(30.0), np.log(0.5 / 0.2)])  # B tau = 1; gain 0.5 of 0.7


def test_step_compute_is_the_median_compute_per_step():
    records = [{"step": 0, "compute/flops": 0.0}, {"step": 1, "compute/flops": 2.0}, {"step": 2, "compute/flops": 6.0},
               {"step": 3, "compute/flops": 9.0}, {"step": 4, "compute/flops": 40.0}]
    assert step_compute(records, "compute/flops") == pytest.approx(3.0)  # median of 2, 3, 3, 10
    assert step_compute(records, "compute/flops", up_to=6.0) == pytest.approx(2.5)
    assert step_compute([{"compute/flops": 1.0}], "compute/flops") is None


def test_the_prior_recovers_the_hyper_parameters_it_was_drawn_from(learned):
    """12 runs of 4 families drawn from a known prior: the learned mean is within its own uncertainty
    of the truth, and its spread (a new family's run) is of the size of the true spread."""
    truth_sd = np.sqrt(BETWEEN_SD**2 + WITHIN_SD**2)
    assert learned.components == COMPONENTS and len(learned.members) == 12
    assert learned.families == ["fam0", "fam1", "fam2", "fam3"]
    se = np.sqrt((BETWEEN_SD**2 + WITHIN_SD**2 / 3) / 4)  # the sd of a mean of 4 family means
    assert np.all(np.abs(learned.mean - TRUE_MEAN) < 3 * se), (learned.mean, TRUE_MEAN)
    sd = np.sqrt(np.diag(learned.cov))
    assert np.all(sd > 0.4 * truth_sd) and np.all(sd < 3.0 * truth_sd), (sd, truth_sd)
    within = np.sqrt(np.diag(learned.within))
    assert np.all(within < 2.5 * WITHIN_SD + 0.03), within  # the runs of a family are closer than families


def test_a_prior_file_round_trips_and_bad_files_say_what_they_are(learned, tmp_path):
    path = learned.save(tmp_path / "prior.json")
    back = Prior.load(path)
    assert back.components == learned.components and np.allclose(back.cov, learned.cov)
    assert [m.family for m in back.members] == [m.family for m in learned.members]
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(ValueError, match="not an Asymptote prior"):
        Prior.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="does not exist; build one with `asymptote prior build`"):
        Prior.load(tmp_path / "missing.json")


def new_family_run(seed):
    rng = np.random.default_rng(seed)
    z = TRUE_MEAN + BETWEEN_SD * rng.standard_normal(4) + WITHIN_SD * rng.standard_normal(4)
    x, y, A = synthetic_curve(z, seed=999 + seed)
    _, B, C_mid, tau = law_of(z)
    return x, y, creep_sigmoid(np.array([x[-1]]), A, B, C_mid, tau, 0.3)[0]


def end_of(x, p):
    return creep_sigmoid(np.array([x[-1]]), p["A"], p["B"], p["C_mid"], p["tau"], p["R0"])[0]


def test_short_prefixes_of_new_families_are_predicted_better_under_the_prior(learned):
    """Runs of new families, fitted on their first eighth of compute (an 8x extrapolation): under the
    prior their ends are predicted closer than by the same law fitted freely."""
    errors = []
    for seed in range(7, 12):
        x, y, end = new_family_run(seed)
        budget = 0.125 * x[-1]
        errors.append((abs(end_of(x, map_fit(x, y, learned, step=STEP, budget=budget).params) - end),
                       abs(end_of(x, map_fit(x, y, None, budget=budget).params) - end)))
    prior_err, free_err = np.array(errors).T
    assert np.median(prior_err) < 0.5 * np.median(free_err), errors
    assert np.median(prior_err) < 0.05, errors


def test_the_interval_under_the_prior_holds_the_end(learned):
    from analysis.bootstrap import predict

    x, y, end = new_family_run(9)
    cf = prior_fit(x, y, learned, step=STEP, budget=0.25 * x[-1], n_boot=100)
    curve, _ = predict(cf.fit, cf.boot, float(x[-1]))
    assert curve.low <= end <= curve.high and curve.width < 0.15, (curve, end)
    assert cf.fit.prior is not None and cf.fit.noise is not None


def test_a_prior_needs_runs():
    x, y, _ = synthetic_curve(TRUE_MEAN, seed=1)
    with pytest.raises(FitError, match="at least 2 finished runs"):
        build_prior([Curve("a", "f", x, y, STEP)])
