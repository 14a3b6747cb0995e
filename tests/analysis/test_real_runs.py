"""The analysis on real training curves: the stored corpus of bench/prediction.py (bench/prediction/runs/,
16 CPU runs of the tiny model: 4 task families x 2 recipes x 2 seeds, recipe.yaml + metrics.jsonl each).

The synthetic runs of the other tests have known parameters; these have real noise, real
correlation between evals and real shapes (a fast sharpening phase, then a slow creep)."""

from pathlib import Path

import numpy as np
import pytest

from launch.cli import main
from analysis.extrapolate import fit_runs, predict_at
from analysis.readers import default_x, group_runs, load_runs, series, throughput

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "prediction" / "runs"
DEMO_RUN = CORPUS / "sum-grpo-s0"  # the demo's recipe and task, 480 iterations

pytestmark = pytest.mark.skipif(not (DEMO_RUN / "metrics.jsonl").is_file(), reason="the corpus is not stored")


def test_the_default_axis_of_real_runs_is_flops_and_they_are_grouped_by_recipe():
    runs = load_runs([str(CORPUS)])
    assert len(runs) >= 16 and default_x(runs) == "compute/flops"
    groups = group_runs(runs)  # seeds of one recipe and task pool; nothing else does
    assert len(groups) == len(runs) // 2 and all(len(g) == 2 for g in groups.values())
    assert all(len({r.recipe["seed"] for r in g}) == 2 for g in groups.values())


def test_a_real_run_that_bent_is_identified_and_its_asymptote_is_its_plateau():
    run = load_runs([str(DEMO_RUN)])[0]
    cf = fit_runs([run], n_boot=150)
    _, y = series(run, "compute/flops", "val/accuracy")
    plateau = float(np.mean(y[-5:]))
    assert cf.identified, cf.warnings
    assert cf.x_key == "compute/flops" and cf.fit.params["C_mid"] < cf.fitted_range[1]
    assert abs(cf.asymptote.value - plateau) < 0.02
    assert cf.asymptote.low < plateau < cf.asymptote.high
    p = predict_at(cf, float(cf.x.max()))
    assert p.eval.low < y[-1] < p.eval.high


def test_the_fit_of_a_real_run_before_its_bend_says_so():
    """Fitted on its first quarter of compute (still rising steeply), a run has not bent yet."""
    run = load_runs([str(DEMO_RUN)])[0]
    x, _ = series(run, "compute/flops", "val/accuracy")
    cf = fit_runs([run], n_boot=100, budget=0.25 * float(x.max()))
    assert not cf.identified and cf.warnings


def test_throughput_of_a_real_run_converts_flops_to_hours():
    run = load_runs([str(DEMO_RUN)])[0]
    rate = throughput(run, "compute/flops")  # FLOPs per device-hour, the median over iterations
    last = run.records[-1]
    total = last["compute/flops"] / last["compute/device_hours"]  # the ratio of totals
    assert rate is not None and 0.5 * total < rate < 2.0 * total


def test_compare_pools_the_seeds_of_real_recipes(tmp_path, capsys):
    runs = [str(p) for p in sorted(CORPUS.glob("sum-*"))]
    assert len(runs) == 4
    assert main(["compare", *runs, "--boot", "100", "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "sum-grpo" in out and "sum-kl" in out and "compute/flops" in out
