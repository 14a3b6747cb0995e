"""The command line (analysis/cli.py) on the committed run directory and on generated ones."""

import argparse
import json
import subprocess
import sys


from analysis.cli import fit_main, register
from synthetic_runs import write_run_dir


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="asymptote")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_fit_on_the_committed_run(committed_run, tmp_path, capsys):
    assert fit_main([str(committed_run), "--out", str(tmp_path), "--boot", "100"]) == 0
    out = capsys.readouterr().out
    assert "A [95%]" in out and "tiny-grpo-s0" in out
    assert "predicted asymptote of val/accuracy for tiny-grpo-s0:" in out
    assert "entropy-performance law" in out
    fit = json.loads((tmp_path / "fit.json").read_text())
    (cf,) = fit["fits"]
    assert cf["law"] == "sigmoid" and cf["x"] == "compute/device_hours" and cf["y"] == "val/accuracy"
    a = cf["params"]["A"]
    assert a["low"] <= a["value"] <= a["high"] and 0.5 < a["value"] < 0.75
    assert cf["n_points"] == 31 and cf["n_boot"] == 100
    assert fit["entropy"][0]["law"] == "entropy"
    assert (tmp_path / "tiny-grpo-s0.png").stat().st_size > 10_000
    assert (tmp_path / "tiny-grpo-s0_entropy.png").is_file()


def test_fit_with_a_budget_backtests(committed_run, tmp_path, capsys):
    assert run_cli("fit", committed_run, "--budget", "0.04", "--out", tmp_path, "--boot", "80", "--no-plots") == 0
    out = capsys.readouterr().out
    assert "backtest of tiny-grpo-s0: fitted up to 0.04" in out
    bt = json.loads((tmp_path / "fit.json").read_text())["backtests"][0]
    assert bt["predictions"] and 0 <= bt["fraction_inside"] <= 1


def test_fit_on_flops(committed_run, tmp_path, capsys):
    assert run_cli("fit", committed_run, "--x", "compute/flops", "--out", tmp_path, "--boot", "60", "--no-plots") == 0
    assert json.loads((tmp_path / "fit.json").read_text())["fits"][0]["x"] == "compute/flops"


def test_predict(committed_run, tmp_path, capsys):
    assert run_cli("predict", committed_run, "--at", "0.2", "--at", "1.0", "--out", tmp_path, "--boot", "80") == 0
    out = capsys.readouterr().out
    assert "one eval [95%]" in out
    preds = json.loads((tmp_path / "fit.json").read_text())["predictions"]
    assert [p["at"] for p in preds] == [0.2, 1.0]
    assert all(p["curve"]["low"] <= p["curve"]["value"] <= p["curve"]["high"] for p in preds)
    assert (tmp_path / "tiny-grpo-s0.png").is_file()


def test_compare_recipes_with_seeds(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run_dir(runs, f"grpo-s{seed}", seed=seed, A=0.55)
        write_run_dir(runs, f"cispo-s{seed}", seed=seed, A=0.70, recipe_overrides={"algorithm.loss.name": "cispo"})
    assert run_cli("compare", runs, "--baseline", "grpo", "--boot", "100") == 0
    out = capsys.readouterr().out
    assert out.index("cispo") < out.index("grpo")  # ranked by A
    assert "against the baseline grpo" in out
    result = json.loads((runs / "analysis" / "fit.json").read_text())  # default output: RUN/analysis
    assert result["comparison"]["ranking"] == ["cispo", "grpo"]
    assert (runs / "analysis" / "runs.png").is_file()
    # the analysis folder written inside runs/ is not mistaken for a run next time
    assert run_cli("compare", runs, "--boot", "50", "--no-plots") == 0


def test_errors_are_clear(tmp_path, committed_run, capsys):
    assert run_cli("fit", tmp_path / "missing", "--out", tmp_path) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli("fit", committed_run, "--y", "val/pass@8", "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "no 'val/pass@8' values; keys present:" in err and "val/accuracy" in err
    short = write_run_dir(tmp_path / "runs", "short", steps=6)
    assert run_cli("fit", short, "--out", tmp_path) == 2
    assert "need at least 5" in capsys.readouterr().err


def test_the_asymptote_console_script_has_the_subcommands():
    from launch.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"fit", "compare", "predict"} <= set(sub.choices)


def test_cli_module_imports_light():
    code = "import sys, analysis.cli; print(any(m in sys.modules for m in ('scipy', 'matplotlib', 'numpy')))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )
