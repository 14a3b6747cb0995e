"""bench/prediction.py: the prefix-prediction report, on synthetic runs with known curves and on the
stored corpus of real training runs (bench/prediction/runs/)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.readers import read_run_dir, series
from tests.analysis.synthetic_runs import write_run_dir

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("prediction_bench", ROOT / "bench/prediction.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up there
_spec.loader.exec_module(bench)

# a curve in FLOPs that bends early: C_mid at ~7% of the final compute (120 steps x 3.41e12)
BENT = dict(sigmoid_in="compute/flops", A=0.45, B=2.0, C_mid=3e13, R0=0.2, steps=120, eval_every=3, sd=0.01,
            pred_lines=False)


@pytest.fixture(scope="module")
def bent_run(tmp_path_factory) -> Path:
    return write_run_dir(tmp_path_factory.mktemp("runs"), "bent-s0", **BENT)


@pytest.fixture(scope="module")
def bent_result(bent_run):
    return bench.evaluate_run(bent_run, n_boot=80)


def test_plateau_error_and_later_evals_are_what_the_report_says(bent_run, bent_result):
    x, y = series(read_run_dir(bent_run), bench.X_KEY, bench.Y_KEY)
    r = bent_result
    assert r.plateau == pytest.approx(float(np.mean(y[-5:])))  # the mean of the last 5 evals
    assert r.final_compute == pytest.approx(float(x.max()))
    assert [q.prefix for q in r.prefixes] == [0.25, 0.5, 0.75]
    for q in r.prefixes:
        assert q.error is None
        assert q.budget == pytest.approx(q.prefix * float(x.max()))
        assert q.abs_error == pytest.approx(abs(q.predicted - r.plateau))
        assert q.inside == (q.low <= r.plateau <= q.high)
        assert q.later_total == int(np.sum(x > q.budget))  # every eval after the prefix is scored
        assert 0 <= q.later_inside <= q.later_total


def test_a_curve_that_bent_early_is_predicted_from_half_of_its_compute(bent_result):
    r = bent_result
    assert r.full_identified, r.full_warnings
    assert r.full_A == pytest.approx(BENT["A"], abs=0.02)
    half = next(q for q in r.prefixes if q.prefix == 0.5)
    assert half.abs_error < 0.02 and half.inside
    assert abs(half.A - r.full_A) <= bench.A_TOLERANCE and half.verdict(r.full_A) in ("ok", "warned, unneeded")


def test_a_prefix_before_the_bend_says_it_cannot_name_the_ceiling(tmp_path):
    """C_mid beyond the first quarter: that prefix must warn, not print a confident ceiling."""
    run = write_run_dir(tmp_path, "late-s0", **{**BENT, "C_mid": 1.5e14, "B": 2.5})
    r = bench.evaluate_run(run, prefixes=(0.25,), n_boot=80)
    q = r.prefixes[0]
    assert q.error is None and not q.identified
    assert any("C_mid" in w or "never bends" in w for w in q.warnings)
    assert q.verdict(r.full_A) != "WRONG"


def test_summary_counts_only_runs_whose_full_fit_is_identified(bent_result):
    unbent = bench.RunResult("flat", 10, 1.0, 0.3, 0.9, 0.3, 1.0, 2.0, False, ["the data never bends"],
                             [bench.PrefixResult(0.5, 0.5, predicted=0.5, abs_error=0.2, A=0.9, identified=False,
                                                 later_inside=0, later_total=5)])
    s = bench.summarize([bent_result, unbent], 0.5)
    half = next(q for q in bent_result.prefixes if q.prefix == 0.5)
    assert s.n_runs == 1 and s.later_evals == half.later_total
    assert s.median_abs_error == pytest.approx(half.abs_error)
    assert s.coverage == pytest.approx(half.later_inside / half.later_total)
    line = bench.summary_line(s)
    assert line.startswith(f"prefix 50%: median |error| {half.abs_error:.3f}, 95% coverage ")
    assert "A within 0.03 of full-run A in 1 of 1 runs" in line


def test_verdicts():
    q = bench.PrefixResult(0.5, 1.0, A=0.50, identified=True)
    assert q.verdict(0.52) == "ok" and q.verdict(0.60) == "WRONG"
    q.identified = False
    assert q.verdict(0.60) == "warned, right" and q.verdict(0.52) == "warned, unneeded"
    assert bench.PrefixResult(0.25, 1.0, error="too few evals").verdict(0.5) == "not fitted"


def test_report_cli_on_run_directories(bent_run, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    assert bench.main(["--report", "--runs", str(bent_run), "--boot", "60", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "bent-s0" in text and text.count("prefix ") >= 3 and "prefix 50%: median |error|" in text
    rows = json.loads(out_json.read_text())
    assert rows[0]["name"] == "bent-s0" and len(rows[0]["prefixes"]) == 3


def test_slim_metrics_keeps_the_contract(tmp_path):
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps({"step": 1, "iteration": 1, "compute/flops": 2.0, "compute/device_hours": 0.1,
                               "compute/tokens": 5, "train/reward": 0.5, "train/kl": 0.1,
                               "train/time/gen": 0.2, "val/accuracy": 0.25}) + "\n")
    bench.slim_metrics(src, tmp_path / "out.jsonl")
    kept = json.loads((tmp_path / "out.jsonl").read_text())
    assert kept == {"step": 1, "iteration": 1, "compute/flops": 2.0, "compute/device_hours": 0.1,
                    "compute/tokens": 5, "train/reward": 0.5, "val/accuracy": 0.25}


def test_the_corpus_grid_has_three_tasks_two_recipes_two_seeds():
    grid = bench.corpus_grid()
    names = [g[0] for g in grid]
    assert len(names) == len(set(names)) == 12
    assert {n.split("-")[0] for n in names} == set(bench.TASKS) and len(bench.TASKS) >= 3
    assert {n.split("-")[1] for n in names} == set(bench.RECIPES) and len(bench.RECIPES) >= 2
    from rl.config import load_recipe

    for name, recipe, overrides in grid:  # the overrides make valid recipes, the demo's but for task, loss, seed
        r = load_recipe(recipe, overrides)
        assert r.name == name and r.train.iterations == (480 if name.startswith("mul3") else 240)
        assert r.algorithm.loss.name == ("cispo" if "-cispo-" in name else "ppo_clip")


# --------------------------------------------------------------------------------------------
# The stored corpus of real runs
# --------------------------------------------------------------------------------------------

CORPUS = bench.corpus_runs()
needs_corpus = pytest.mark.skipif(len(CORPUS) < 12, reason="bench/prediction/runs/ holds fewer than 12 runs")


@needs_corpus
def test_the_stored_corpus_is_real_runs_of_the_grid():
    names = {d.name for d in CORPUS}
    assert {g[0] for g in bench.corpus_grid()} <= names
    for d in CORPUS:
        run = read_run_dir(d)
        assert run.recipe["name"] == d.name and run.recipe["train"]["iterations"] >= 200
        x, y = series(run, bench.X_KEY, bench.Y_KEY)
        # (iterations, not steps: with zero-variance filtering an iteration whose every group was filtered takes no step)
        iterations = [r["iteration"] for r in run.records if "val/accuracy" in r]
        assert x[0] == 0 and np.all(np.diff(x) > 0) and y.size >= 40
        assert iterations[-1] == run.recipe["train"]["iterations"]
        assert all(math.isfinite(v) for v in y)


@needs_corpus
def test_report_on_a_stored_subset(tmp_path, capsys):
    """The report's rows are evaluate_run's numbers, and its summary lines are computed from them."""
    runs = [CORPUS[0], CORPUS[-1]]
    out_json = tmp_path / "r.json"
    assert bench.main(["--report", "--runs", *map(str, runs), "--boot", "80", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    rows = json.loads(out_json.read_text())
    expected = [bench.evaluate_run(d, n_boot=80) for d in runs]
    assert [r["name"] for r in rows] == [d.name for d in runs]
    for row, want in zip(rows, expected):
        assert row["plateau"] == pytest.approx(want.plateau) and row["full_A"] == pytest.approx(want.full_A)
        for q, w in zip(row["prefixes"], want.prefixes):
            assert q["predicted"] == pytest.approx(w.predicted) and q["A"] == pytest.approx(w.A)
            assert q["later_inside"] == w.later_inside and q["warnings"] == w.warnings
            assert f"{w.predicted:.3f} [{w.low:.3f}, {w.high:.3f}]" in text
    for p in bench.PREFIXES:
        assert bench.summary_line(bench.summarize(expected, p)) in text


@needs_corpus
def test_prediction_from_half_of_the_compute_on_the_real_corpus():
    """The benchmark's headline at 50%, with the figures of bench/README.md as bounds that a
    regression in the fit, the intervals or the warnings would break."""
    results = [bench.evaluate_run(d, prefixes=(0.5,), n_boot=100) for d in CORPUS]
    s = bench.summarize(results, 0.5)
    assert s.n_runs == 12  # every run's full fit is identified: each bends, C_mid inside its data
    assert 0.90 <= s.coverage <= 1.0, s  # the 95% intervals for one eval cover the later evals (0.99)
    assert s.median_abs_error <= 0.02, s  # 0.011
    assert s.a_within >= s.n_runs // 2 and s.confident_wrong <= 2, s  # 8 of 12 and 1
    assert s.a_covered >= s.n_runs - 2, s  # 11 of 12
