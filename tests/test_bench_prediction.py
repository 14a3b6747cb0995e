"""bench/prediction.py and analysis/scoring.py: the methods' scores computed by hand on made-up cases,
the baselines' intervals by hand, leave-one-task-out priors that never hold the run's own family, the
report on a stored subset of the corpus, and the corpus itself (bench/prediction/runs/)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t as t_dist

from analysis.bootstrap import Interval
from analysis.methods import Context, forecast
from analysis.readers import read_run_dir, series
from analysis.scoring import Case, holds, prefix_table, ranked, summarize

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("prediction_bench", ROOT / "bench/prediction.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up there
_spec.loader.exec_module(bench)


def case(method, predicted, low, high, end=0.7, warnings=(), asymptote=None, identified=False, beyond=math.nan,
         later=(0, 0), error=None, prefix=0.25):
    c = Case("run", "fam", prefix, method, 1.0, end, error=error, predicted=predicted, low=low, high=high,
             later_inside=later[0], later_total=later[1], asymptote=asymptote, identified=identified,
             warnings=list(warnings), beyond=beyond)
    return c


def test_case_verdicts_by_hand():
    c = case("m", 0.68, 0.65, 0.72)
    assert c.inside and c.abs_error == pytest.approx(0.02) and not c.confident_wrong
    miss = case("m", 0.60, 0.58, 0.62)
    assert not miss.inside and miss.confident_wrong  # no warning, interval misses: confident and wrong
    assert not case("m", 0.60, 0.58, 0.62, warnings=["the data never bends"]).confident_wrong
    assert case("m", 0, 0, 0, error="too few evals").abs_error == math.inf
    # an identified A holds when its interval contains the end and the value beyond it
    assert case("m", 0.7, 0.6, 0.8, asymptote=[0.72, 0.69, 0.76], identified=True, beyond=0.73).a_holds is True
    assert case("m", 0.7, 0.6, 0.8, asymptote=[0.72, 0.69, 0.76], identified=True, beyond=0.78).a_holds is False
    assert case("m", 0.7, 0.6, 0.8, asymptote=[0.72, 0.69, 0.76], identified=False).a_holds is None
    assert holds(Interval(0.7, 0.65, 0.75), 0.7, math.nan) and not holds(Interval(0.7, 0.65, 0.75), 0.64, 0.7)


def test_summary_and_ranking_by_hand():
    cases = [
        case("good", 0.69, 0.66, 0.72, later=(9, 10)),
        case("good", 0.74, 0.71, 0.77, later=(5, 10)),  # error +0.04, misses the end (0.7)
        case("good", 0.71, 0.60, 0.80, later=(10, 10), warnings=["w"]),
        case("bad", 0.60, 0.50, 0.65, later=(2, 10)),
        case("bad", 0.0, 0.0, 0.0, error="cannot fit"),
        case("bad", 0.75, 0.70, 0.80, later=(8, 10)),
    ]
    s = summarize(cases, 0.25, "good")
    assert (s.runs, s.fitted) == (3, 3)
    assert s.median_abs_error == pytest.approx(0.01)  # |errors| 0.01, 0.04, 0.01
    assert s.signed_mean == pytest.approx((-0.01 + 0.04 + 0.01) / 3)
    assert s.end_coverage == pytest.approx(2 / 3) and s.later_coverage == pytest.approx(24 / 30)
    assert s.median_width == pytest.approx(0.06) and s.confident_wrong == 1
    b = summarize(cases, 0.25, "bad")
    assert b.fitted == 2 and b.median_abs_error == pytest.approx(0.1)  # 0.1, inf, 0.05: an unfitted run is inf
    assert [r.method for r in ranked(cases, 0.25)] == ["good", "bad"]
    text = prefix_table(cases, 0.25)
    assert text.startswith("prefix 25.0% of the compute (4x extrapolation)")
    assert "good" in text.splitlines()[3] and "3/3" in text and "2/3" in text


def test_last_value_baseline_by_hand():
    x = np.array([0.0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    y = np.array([0.2, 0.3, 0.4, 0.45, 0.5, 0.52, 0.5, 0.53, 0.6, 0.7, 0.8])
    f = forecast("last", x, y, 6.0, [8.0, 10.0], Context(n_end=5))
    level = np.mean([0.5, 0.52, 0.5])  # the last three evals up to the budget (6)
    assert f.curve[-1].value == pytest.approx(level)
    from analysis.fit import noise_scale

    sd = noise_scale(np.arange(1.0, 7.0), y[1:7])  # the fitted window: compute >= 10% of 6, up to 6
    assert f.end.high - f.end.value == pytest.approx(1.959964 * sd * math.sqrt(1 / 3 + 1 / 5), rel=1e-5)


def test_log_linear_baseline_by_hand():
    rng = np.random.default_rng(0)
    x = np.concatenate([[0.0], np.linspace(1, 20, 20)])
    y = 0.3 + 0.1 * np.log(np.maximum(x, 1)) + 0.01 * rng.standard_normal(x.size)
    f = forecast("loglinear", x, y, 10.0, [40.0], Context(n_end=5))
    keep = (x >= 1.0) & (x <= 10.0) & (x > 0)
    X = np.column_stack([np.ones(keep.sum()), np.log(x[keep])])
    coef, res, *_ = np.linalg.lstsq(X, y[keep], rcond=None)
    s2 = float(res[0]) / (keep.sum() - 2)
    v = np.array([1.0, np.log(40.0)])
    var = s2 * v @ np.linalg.inv(X.T @ X) @ v
    t = t_dist.ppf(0.975, keep.sum() - 2)
    assert f.curve[0].value == pytest.approx(v @ coef)
    assert f.curve[0].high - f.curve[0].value == pytest.approx(t * math.sqrt(var))
    assert f.end.high - f.end.value == pytest.approx(t * math.sqrt(var + s2 / 5))


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown prediction method 'magic'; known: sigmoid, creep, prior"):
        forecast("magic", np.arange(5.0), np.arange(5.0), 2.0, [4.0])


def test_half_gain_compute_by_hand():
    y = np.array([0.2, 0.25, 0.3, 0.45, 0.5, 0.55, 0.58, 0.6, 0.6, 0.6, 0.6, 0.6])
    x = np.arange(12.0)
    r = bench.CorpusRun("t-grpo-s0", "t", x, y, [])
    assert r.end == pytest.approx(0.6)
    # half of the gain: 0.4; smoothed y: [.., (0.3+0.45+0.5)/3 = 0.4167 at x=3]: the first at or above
    assert r.half_gain_compute == pytest.approx(3.0)


def test_the_corpus_grid_has_four_families_two_recipes_two_seeds():
    grid = bench.corpus_grid()
    names = [g[0] for g in grid]
    assert len(names) == len(set(names)) == 16
    assert {bench.family_of(n) for n in names} == set(bench.TASKS) and len(bench.TASKS) >= 4
    assert {n.split("-")[1] for n in names} == set(bench.RECIPES) and len(bench.RECIPES) >= 2
    from rl.config import load_recipe

    for name, recipe, overrides in grid:
        r = load_recipe(recipe, overrides)
        assert r.name == name and r.train.iterations >= 300
        assert (r.algorithm.kl.coef > 0) == ("-kl-" in name)
    tasks = {n: load_recipe(rc, ov).env.tasks[0].name for n, rc, ov in grid}
    assert "simple_equations" in tasks.values()  # a family that is not sums or products of digits


def test_slim_metrics_keeps_the_contract(tmp_path):
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps({"step": 1, "iteration": 1, "compute/flops": 2.0, "compute/device_hours": 0.1,
                               "compute/tokens": 5, "train/reward": 0.5, "train/kl": 0.1,
                               "train/time/gen": 0.2, "val/accuracy": 0.25}) + "\n")
    bench.slim_metrics(src, tmp_path / "out.jsonl")
    kept = json.loads((tmp_path / "out.jsonl").read_text())
    assert kept == {"step": 1, "iteration": 1, "compute/flops": 2.0, "compute/device_hours": 0.1,
                    "compute/tokens": 5, "train/reward": 0.5, "val/accuracy": 0.25}


# --------------------------------------------------------------------------------------------
# The stored corpus of real runs
# --------------------------------------------------------------------------------------------

CORPUS = bench.corpus_runs()
needs_corpus = pytest.mark.skipif(len(CORPUS) < len(bench.corpus_grid()),
                                  reason="bench/prediction/runs/ does not hold the whole grid yet")
# the seed-0 runs of every task family and recipe: what the leave-one-task-out and report tests need
needs_s0 = pytest.mark.skipif(
    not {g[0] for g in bench.corpus_grid() if g[0].endswith("-s0")} <= {d.name for d in CORPUS},
    reason="bench/prediction/runs/ lacks a seed-0 run of some task family and recipe")


@needs_corpus
def test_the_stored_corpus_is_the_grid_and_every_run_asks_a_real_8x_question():
    names = {d.name for d in CORPUS}
    assert {g[0] for g in bench.corpus_grid()} <= names
    for r in bench.load_runs(CORPUS):
        run = read_run_dir(ROOT / "bench/prediction/runs" / r.name)
        x, y = series(run, bench.X_KEY, bench.Y_KEY)
        assert x[0] == 0 and np.all(np.diff(x) > 0) and y.size >= 40 and all(math.isfinite(v) for v in y)
        assert r.x[-1] >= 8 * r.half_gain_compute, (r.name, r.x[-1] / r.half_gain_compute)


@needs_s0
def test_leave_one_task_out_priors_never_hold_the_runs_own_family():
    runs = bench.load_runs(CORPUS)
    members = bench.loto_members(runs)
    assert set(members) == {(r.family, bench.recipe_of(r.name)) for r in runs}
    for (fam, rec), pool in members.items():
        # the runs of every other family with the same recipe, and nothing else
        assert {r.name for r in pool} == {r.name for r in runs if r.family != fam and bench.recipe_of(r.name) == rec}
    for (fam, _), pool in bench.loto_members(runs, same_recipe=False).items():
        assert {r.name for r in pool} == {r.name for r in runs if r.family != fam}
    # and the prior built for one run holds exactly those runs, none of its own family
    from analysis.prior import build_prior

    few = [r for r in runs if r.name.endswith("-s0")]
    prior = build_prior(bench.prior_curves(bench.loto_members(few)[("sum", "grpo")]), n_iter=1)
    assert {m.name for m in prior.members} == {"sub-grpo-s0", "mul-grpo-s0", "eq-grpo-s0"}
    assert "sum" not in prior.families


@needs_s0
def test_report_on_a_stored_subset(tmp_path, capsys):
    """The report's tables are summarize() of the cases it writes, on two stored runs."""
    runs = [CORPUS[0], CORPUS[-1]]
    out_json = tmp_path / "r.json"
    argv = ["--report", "--runs", *map(str, runs), "--methods", "sigmoid", "last", "loglinear", "--prefixes", "0.5",
            "--boot", "40", "--json", str(out_json)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    cases = [Case(**c) for c in json.loads(out_json.read_text())]
    assert len(cases) == 2 * 3 and {c.run for c in cases} == {d.name for d in runs}
    assert "prefix 50.0% of the compute (2x extrapolation)" in text
    for s in ranked(cases, 0.5):
        assert f"{s.median_abs_error:.3f}" in text and f"{s.signed_mean:+.3f}" in text
    for c in cases:
        if c.method == "sigmoid":
            assert f"{c.predicted:.3f} [{c.low:.3f}, {c.high:.3f}]" in text
