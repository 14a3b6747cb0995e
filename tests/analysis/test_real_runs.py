"""The analysis on real training curves: the stored corpus of bench/prediction.py (bench/prediction/runs/,
CPU runs of the tiny model: 4 task families x 2 recipes x 2 seeds when complete, recipe.yaml +
metrics.jsonl each).

The synthetic runs of the other tests have known parameters; these have real noise, real
correlation between evals and real shapes (a fast sharpening phase, then a slow creep)."""

from pathlib import Path

import numpy as np
import pytest

from launch.cli import main
from analysis.extrapolate import fit_runs, predict_at
from analysis.readers import default_x, group_runs, load_runs, series, throughput
from analysis.verdict import verdict

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "prediction" / "runs"
DEMO_RUN = CORPUS / "sum-grpo-s0"  # the demo's recipe and task, 480 iterations

pytestmark = pytest.mark.skipif(not (DEMO_RUN / "metrics.jsonl").is_file(), reason="the corpus is not stored")


def test_the_default_axis_of_real_runs_is_flops_and_they_are_grouped_by_recipe():
    runs = load_runs([str(CORPUS)])
    assert len(runs) >= 8 and default_x(runs) == "compute/flops"
    groups = group_runs(runs)  # seeds of one recipe and task pool; nothing else does
    recipes = {r.name.rsplit("-s", 1)[0] for r in runs}  # task-recipe, the run name without its seed
    assert len(groups) == len(recipes)
    for g in groups.values():
        assert len({r.name.rsplit("-s", 1)[0] for r in g}) == 1
        assert len({r.recipe["seed"] for r in g}) == len(g)


def test_a_real_run_that_bent_is_fitted_but_its_creep_names_no_ceiling():
    """The demo's recipe run 480 iterations bends early (C_mid inside the data, the fit warns of
    nothing) and keeps creeping up (+0.02 to +0.04 per doubling of compute at its end): the fit's A
    extrapolates the creep above the measured plateau, the curve still holds the last eval, and the
    verdict names no ceiling, saying why."""
    run = load_runs([str(DEMO_RUN)])[0]
    cf = fit_runs([run], n_boot=150)
    _, y = series(run, "compute/flops", "val/accuracy")
    plateau = float(np.mean(y[-5:]))
    assert cf.identified, cf.warnings
    assert cf.x_key == "compute/flops" and cf.fit.params["C_mid"] < cf.fitted_range[1]
    assert cf.asymptote.value > plateau and cf.asymptote.low < plateau + 0.03
    p = predict_at(cf, float(cf.x.max()))
    assert p.eval.low < y[-1] < p.eval.high
    v = verdict(cf)
    assert not v.identified and any("still rising" in r for r in v.reasons), v.reasons


def test_the_fit_of_a_real_run_still_rising_names_no_ceiling():
    """Fitted on its first quarter of compute (past its bend, still creeping up), a run's fit may look
    clean, but the verdict names no ceiling: the evals still rise over the last doubling."""
    run = load_runs([str(DEMO_RUN)])[0]
    x, _ = series(run, "compute/flops", "val/accuracy")
    cf = fit_runs([run], n_boot=100, budget=0.25 * float(x.max()))
    v = verdict(cf)
    assert not v.identified and any("still rising" in r for r in v.reasons), v.reasons


def test_throughput_of_a_real_run_converts_flops_to_hours():
    run = load_runs([str(DEMO_RUN)])[0]
    rate = throughput(run, "compute/flops")  # FLOPs per device-hour, the median over iterations
    last = run.records[-1]
    total = last["compute/flops"] / last["compute/device_hours"]  # the ratio of totals
    assert rate is not None and 0.5 * total < rate < 2.0 * total


def test_compare_pools_the_seeds_of_real_recipes(tmp_path, capsys):
    runs = [str(p) for p in sorted(CORPUS.glob("sum-*"))]
    assert len(runs) >= 3  # GRPO's two seeds, pooled, and GRPO with a KL penalty
    assert main(["compare", *runs, "--boot", "100", "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "sum-grpo" in out and "sum-kl" in out and "compute/flops" in out
