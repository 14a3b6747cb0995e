"""Readers (analysis/readers/): run directories, CSV, wandb offline and online, grouping, points."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from analysis.readers import (
    Run,
    RunError,
    default_x,
    group_label,
    group_runs,
    load_runs,
    read_csv,
    read_metrics,
    read_run_dir,
    read_wandb,
    read_wandb_offline,
    series,
    throughput,
    throughput_rates,
)
from synthetic_runs import write_run_dir


def test_committed_run_directory(committed_run):
    run = read_run_dir(committed_run)
    assert run.name == "tiny-grpo-s0" and run.seed == 0
    assert len(run.records) == 61
    x, y = series(run)  # x = compute/flops by default
    assert x.size == 31 and x[0] == 0.0  # evals every 2 steps, step 0 included
    assert np.all(np.diff(x) > 0) and np.all((y >= 0) & (y <= 1))
    hours, _ = series(run, "compute/device_hours")
    np.testing.assert_allclose(x, hours * 3.1e15, rtol=1e-3)


def test_pred_keys_are_never_read_as_points(committed_run):
    run = read_run_dir(committed_run)
    assert any("pred/asymptote" in r for r in run.records)
    x, y = series(run)  # eval lines with pred/... keys still count as evals
    assert x.size == 31
    with pytest.raises(RunError, match="prediction written by the live predictor"):
        series(run, y_key="pred/asymptote")


def test_missing_y_names_the_keys_present(committed_run):
    run = read_run_dir(committed_run)
    with pytest.raises(
        RunError, match=r"has no 'val/pass@8' values; keys present: .*compute/device_hours.*val/accuracy"
    ):
        series(run, y_key="val/pass@8")


def test_missing_x_on_an_eval_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "val/accuracy": 0.1}\n')
    with pytest.raises(RunError, match=r"metrics.jsonl:1 has 'val/accuracy' but no 'compute/flops'"):
        series(read_run_dir(tmp_path))
    with pytest.raises(RunError, match=r"metrics.jsonl:1 has 'val/accuracy' but no 'compute/device_hours'"):
        series(read_run_dir(tmp_path), "compute/device_hours")


def test_eval_before_training_has_no_entropy(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 0, "compute/device_hours": 0, "val/accuracy": 0.1}\n'
        '{"step": 1, "compute/device_hours": 1, "train/entropy": 0.9, "val/accuracy": 0.2}\n'
    )
    run = read_run_dir(tmp_path)
    with pytest.raises(RunError, match="has 'val/accuracy' but no 'train/entropy'"):
        series(run, "train/entropy")
    H, R = series(run, "train/entropy", need_x=False)
    assert H.tolist() == [0.9] and R.tolist() == [0.2]


def test_nan_and_non_numbers(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 0, "compute/flops": 0, "val/accuracy": 0.1}\n'
        '{"step": 1, "compute/flops": 1, "val/accuracy": NaN}\n'
    )
    with pytest.raises(RunError, match=r":2: 'val/accuracy' is nan; expected a finite number"):
        series(read_run_dir(tmp_path))
    (tmp_path / "metrics.jsonl").write_text('{"step": 0, "compute/flops": "soon", "val/accuracy": 0.1}\n')
    with pytest.raises(RunError, match="'compute/flops' is 'soon', expected a number"):
        series(read_run_dir(tmp_path))


def test_compute_that_goes_down_is_an_error(tmp_path):
    lines = [{"step": i, "compute/flops": h, "val/accuracy": 0.1 * i} for i, h in enumerate([0, 1, 2, 1.5, 3])]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(RunError, match=r"decreases at line 4 \(2 -> 1.5\)"):
        series(read_run_dir(tmp_path))
    H, R = series(read_run_dir(tmp_path), "val/accuracy", "compute/flops")  # not a counter: no check
    assert H.size == 5


def test_torn_last_line_and_resumed_steps(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text(
        '{"step": 0, "x": 1}\n{"step": 1, "x": 2}\n{"step": 2, "x": 3}\n'
        '{"step": 1, "x": 20}\n{"step": 2, "x": 30}\n{"step": 3, "x'  # resumed from step 0, then killed mid-line
    )
    recs = read_metrics(p)
    assert [(r["step"], r["x"]) for r in recs] == [(0, 1), (1, 20), (2, 30)]
    p.write_text('{"step": 0, "x": 1}\n{"step": 0, "x": 1, "val/accuracy": 0.2}\n{"step": 1, "x": 2}\n')
    assert len(read_metrics(p)) == 3  # an eval line beside the step's training line is kept
    p.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(RunError, match=r"metrics.jsonl:2 is not valid JSON"):
        read_metrics(p)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(RunError, match="no metrics.jsonl"):
        read_run_dir(tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        load_runs([str(tmp_path / "nope")])
    with pytest.raises(RunError, match="not a directory"):
        read_run_dir(tmp_path / "nope")


def test_folder_of_runs_and_grouping_by_recipe(tmp_path):
    for seed in (0, 1):
        write_run_dir(tmp_path, f"grpo-s{seed}", seed=seed, steps=10)
        write_run_dir(
            tmp_path, f"dapo-s{seed}", seed=seed, steps=10, recipe_overrides={"algorithm.loss.clip_high": 0.28}
        )
    write_run_dir(tmp_path, "solo", seed=0, steps=10, recipe_overrides={"optimizer.lr": 3e-4})
    runs = load_runs([str(tmp_path)])
    assert sorted(r.name for r in runs) == ["dapo-s0", "dapo-s1", "grpo-s0", "grpo-s1", "solo"]
    groups = group_runs(runs)
    assert {k: sorted(r.name for r in v) for k, v in groups.items()} == {
        "dapo": ["dapo-s0", "dapo-s1"],
        "grpo": ["grpo-s0", "grpo-s1"],
        "solo": ["solo"],
    }


def test_seeds_group_across_run_directories_and_a_new_default_off_option(tmp_path):
    """Bookkeeping (where a run was written, its checkpoint cadence) and an option that is null in one
    recipe and absent from the other (written by an older version) do not split a recipe's seeds."""
    write_run_dir(tmp_path, "grpo-s0", seed=0, steps=4, recipe_overrides={"logging.runs_dir": "/a", "model.lora": None})
    write_run_dir(tmp_path, "grpo-s1", seed=1, steps=4, recipe_overrides={"logging.runs_dir": "/b", "checkpoint.every": 7})
    write_run_dir(tmp_path, "lora-s0", seed=0, steps=4, recipe_overrides={"model.lora": {"r": 8}})
    groups = group_runs(load_runs([str(tmp_path)]))
    assert {k: sorted(r.name for r in v) for k, v in groups.items()} == {"grpo": ["grpo-s0", "grpo-s1"],
                                                                        "lora-s0": ["lora-s0"]}


def test_wandb_group_overrides_recipe_grouping(tmp_path):
    write_run_dir(tmp_path, "a", seed=0, steps=4, recipe_overrides={"logging.wandb.group": "sweep-1"})
    write_run_dir(
        tmp_path, "b", seed=1, steps=4, recipe_overrides={"logging.wandb.group": "sweep-1", "optimizer.lr": 1.0}
    )
    groups = group_runs(load_runs([str(tmp_path)]))
    assert list(groups) == ["sweep-1"] and len(groups["sweep-1"]) == 2


def test_group_label():
    mk = lambda n: Run(n, [])  # noqa: E731
    assert group_label([mk("cispo-seed0"), mk("cispo-seed1")]) == "cispo"
    assert group_label([mk("run_s0"), mk("run_s1")]) == "run"
    assert group_label([mk("x")]) == "x"


def test_csv(tmp_path):
    p = tmp_path / "curve.csv"
    p.write_text("step,compute/device_hours,val/accuracy,train/reward\n0,0,0.1,0.1\n1,0.5,,0.2\n2,1.0,0.3,0.25\n")
    run = read_csv(p)
    assert run.name == "curve" and run.recipe == {}
    x, y = series(run, "compute/device_hours")
    np.testing.assert_allclose(x, [0.0, 1.0])
    np.testing.assert_allclose(y, [0.1, 0.3])
    assert load_runs([str(p)])[0].name == "curve"
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RunError, match="no header row"):
        read_csv(tmp_path / "empty.csv")


def test_wandb_offline_run_is_read_back(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = {"name": "wb-run", "seed": 3, "algorithm": {"loss": {"name": "cispo"}}}
    run = wandb.init(mode="offline", dir=str(tmp_path), project="asymptote", group="g1", config=cfg)
    for i in range(6):
        line = {"step": i, "compute/device_hours": 0.1 * i, "train/entropy": 1.0 - 0.1 * i}
        if i % 2 == 0:
            line["val/accuracy"] = 0.2 + 0.05 * i
        run.log(line, step=i)
    run.finish()
    wandb.teardown()  # stop wandb's service so that it has closed (flushed) the run's .wandb file
    offline = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert offline
    got = read_wandb_offline(offline[0])
    assert got.name == "wb-run" and got.group == "g1"
    assert got.recipe["seed"] == 3 and got.recipe["algorithm"] == {"loss": {"name": "cispo"}}
    x, y = series(got, "compute/device_hours")
    np.testing.assert_allclose(x, [0.0, 0.2, 0.4])
    np.testing.assert_allclose(y, [0.2, 0.3, 0.4])
    # the same run found from its folders: the offline-run dir and the .wandb file
    assert load_runs([str(offline[0])])[0].name == "wb-run"
    assert read_wandb_offline(next(offline[0].glob("run-*.wandb"))).records == got.records


def test_wandb_online_through_the_public_api_shape():
    """No network here: a stand-in with the public API's shape (Api.run, Api.runs, Run.scan_history)."""

    class FakeRun:
        def __init__(self, name, seed, group):
            self.name, self.group, self.path = name, group, ["ent", "proj", name]
            self.config = {"name": name, "seed": seed}

        def scan_history(self):
            return iter([{"_step": 0, "step": 0, "compute/device_hours": 0.0, "val/accuracy": 0.1}])

    runs = {"a": FakeRun("a", 0, "g"), "b": FakeRun("b", 1, "g")}
    api = SimpleNamespace(
        run=lambda path: runs[path.split("/")[-1]],
        runs=lambda project, filters: [r for r in runs.values() if r.group == filters["group"]],
    )
    one = read_wandb("ent/proj/a", api=api)
    assert [r.name for r in one] == ["a"] and one[0].source == "wandb:ent/proj/a"
    both = load_runs(["wandb:ent/proj?group=g"], api=api)
    assert [r.name for r in both] == ["a", "b"] and list(group_runs(both)) == ["g"]
    with pytest.raises(RunError, match="no runs in group 'h'"):
        read_wandb("ent/proj?group=h", api=api)


# --------------------------------------------------------------------------------------------
# The default compute axis and the throughput that converts it to device-hours
# --------------------------------------------------------------------------------------------


def lines_run(name, lines):
    return Run(name, [dict(line, _line=i) for i, line in enumerate(lines, start=1)], source=f"{name}/metrics.jsonl")


def test_default_x_is_flops_when_every_run_has_it(committed_run):
    assert default_x([read_run_dir(committed_run)]) == "compute/flops"
    both = [{"step": 0, "compute/flops": 0.0, "compute/tokens": 0, "val/accuracy": 0.1}]
    assert default_x([lines_run("a", both), lines_run("b", both)]) == "compute/flops"


def test_default_x_falls_back_to_tokens_when_a_run_lacks_flops():
    with_flops = lines_run("a", [{"step": 0, "compute/flops": 0.0, "compute/tokens": 0, "val/accuracy": 0.1}])
    tokens_only = lines_run("b", [{"step": 0, "compute/tokens": 0, "val/accuracy": 0.1}])
    assert default_x([with_flops, tokens_only]) == "compute/tokens"
    # flops on training lines only, not on the evals the fit reads, is not enough either
    partial = lines_run("c", [{"step": 1, "compute/flops": 5.0}, {"step": 1, "compute/tokens": 9, "val/accuracy": 0.2}])
    assert default_x([partial]) == "compute/tokens"


def test_default_x_without_flops_or_tokens_names_the_runs_and_their_metrics():
    ok = lines_run("good", [{"step": 0, "compute/flops": 0.0, "compute/tokens": 0, "val/accuracy": 0.1}])
    hours_only = lines_run(
        "old", [{"step": 0, "compute/device_hours": 0.0, "note": "x", "pred/asymptote": 0.5, "val/accuracy": 0.1}]
    )
    with pytest.raises(RunError) as err:
        default_x([ok, hours_only])
    msg = str(err.value)
    assert "old/metrics.jsonl lacks compute/flops and compute/tokens" in msg
    assert "numeric metrics on its 'val/accuracy' lines: compute/device_hours, step, val/accuracy" in msg
    assert "good" not in msg  # only the runs that lack them
    assert "pred/asymptote" not in msg and "note" not in msg  # predictions and strings are no axis
    assert "--x compute/device_hours" in msg and "--x step" in msg


def test_throughput_is_the_median_over_training_iterations():
    lines = [
        {"step": 0, "compute/flops": 0.0, "compute/device_hours": 0.0, "val/accuracy": 0.1},
        {"step": 1, "compute/flops": 10.0, "compute/device_hours": 1.0},  # 10 per hour
        {"step": 1, "compute/flops": 10.0, "compute/device_hours": 1.0, "val/accuracy": 0.2},  # eval: no change
        {"step": 2, "compute/flops": 30.0, "compute/device_hours": 2.0},  # 20
        {"step": 3, "val/accuracy": 0.3},  # no counters: passed over
        {"step": 4, "compute/flops": 42.0, "compute/device_hours": 6.0},  # 12 / 4 = 3 (a busy machine)
        {"step": 5, "compute/flops": 54.0, "compute/device_hours": 7.0},  # 12
    ]
    run = lines_run("r", lines)
    np.testing.assert_allclose(throughput_rates(run, "compute/flops"), [10.0, 20.0, 3.0, 12.0])
    assert throughput(run, "compute/flops") == pytest.approx(11.0)  # median of 3, 10, 12, 20
    # seeds pooled into one curve: the median over all their iterations
    other = lines_run(
        "s", [{"compute/flops": 0.0, "compute/device_hours": 0.0}, {"compute/flops": 5.0, "compute/device_hours": 1.0}]
    )
    assert throughput([run, other], "compute/flops") == pytest.approx(10.0)  # median of 3, 5, 10, 12, 20
    assert throughput(lines_run("t", [{"compute/flops": 1.0}, {"compute/flops": 2.0}])) is None  # no device-hours


def test_committed_run_throughput(committed_run):
    run = read_run_dir(committed_run)
    assert throughput_rates(run).size == 60  # one per training iteration
    assert throughput(run) == pytest.approx(3.1e15, rel=1e-3)  # flops = hours x 3.1e15 (hours rounded to 1e-6)
