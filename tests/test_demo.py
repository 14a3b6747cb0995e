"""The demo end to end, shortened: build the tiny model, warm-start, train, fit, plot, backtest."""

import pytest

from launch.demo import run_demo
from rl.logger import read_jsonl


@pytest.mark.slow
def test_demo_runs_end_to_end_and_fits_its_curve(tmp_path, capsys):
    overrides = [
        f"model.path={tmp_path / 'models' / 'tiny-math-compact'}",
        f"logging.runs_dir={tmp_path / 'runs'}",
        "logging.progress=false",
        "model.warm_start.steps=150",
        "train.iterations=40",
        "train.prompts_per_iteration=16",
        "eval.every=2",
        "checkpoint.every=12",
    ]
    assert run_demo(overrides) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "demo"
    lines = read_jsonl(run_dir / "metrics.jsonl")
    evals = [m for m in lines if "val/accuracy" in m]
    assert len(evals) == 1 + 40 // 2
    assert evals[0]["val/accuracy"] > 0.0  # the warm start gives RL something to work with
    assert "val/accuracy" in out and "asymptote" in out.lower() and "[demo] backtest:" in out and "mean |error|" in out
    assert "iterations/s" in out and "FLOPs/s" in out  # the throughput line
    assert "first half" in out and "first quarter" in out
    assert list((run_dir / "analysis").glob("*.png")), "the fit writes its plots into the run directory"
    assert (run_dir / "analysis" / "fit.json").is_file()
    # a second call finds the finished run and only fits it again
    assert run_demo(overrides) == 0
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == len(lines)
