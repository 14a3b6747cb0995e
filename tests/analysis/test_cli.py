"""The command line (analysis/cli.py) on the committed run directory and on generated ones."""

import argparse
import json
import subprocess
import sys

import pytest

from analysis.cli import analysis_main, register
from synthetic_runs import write_run_dir


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="asymptote")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def fit_json(out):
    return json.loads((out / "fit.json").read_text())


HOURS_TO_FLOPS = 3.1e15  # the committed run's flops are its device-hours x 3.1e15


def test_fit_on_the_committed_run(committed_run, tmp_path, capsys):
    assert analysis_main(["fit", str(committed_run), "--out", str(tmp_path), "--boot", "100"]) == 0
    out = capsys.readouterr().out
    assert "A [95%]" in out and "tiny-grpo-s0" in out
    # the committed run still rises over its last doubling: the verdict promises a value, not a ceiling
    assert "tiny-grpo-s0: the fit does not promise a ceiling (A = " in out
    assert "it promises val/accuracy = " in out and "2x its last fitted compute" in out
    assert "(!) the run is still rising: +" in out
    assert "entropy-performance law" in out
    fit = json.loads((tmp_path / "fit.json").read_text())
    (cf,) = fit["fits"]
    assert cf["law"] == "sigmoid" and cf["x"] == "compute/flops" and cf["y"] == "val/accuracy"  # the default axis
    a = cf["params"]["A"]
    assert a["low"] <= a["value"] <= a["high"] and 0.5 < a["value"] < 0.75
    assert cf["n_points"] == 31 and cf["n_boot"] == 100
    assert fit["entropy"][0]["law"] == "entropy"
    assert (tmp_path / "tiny-grpo-s0.png").stat().st_size > 10_000
    assert (tmp_path / "tiny-grpo-s0_entropy.png").is_file()


def test_fit_with_a_budget_backtests(committed_run, tmp_path, capsys):
    budget = 0.04 * HOURS_TO_FLOPS  # the budget is in x units: FLOPs by default
    assert run_cli("fit", committed_run, "--budget", budget, "--out", tmp_path, "--boot", "80", "--no-plots") == 0
    out = capsys.readouterr().out
    assert "backtest of tiny-grpo-s0: fitted up to 1.240e+14" in out
    bt = json.loads((tmp_path / "fit.json").read_text())["backtests"][0]
    assert bt["predictions"] and 0 <= bt["fraction_inside"] <= 1


def test_fit_on_device_hours(committed_run, tmp_path, capsys):
    """--x compute/device_hours still works; on this run (flops proportional to hours) it is the
    default fit up to the scale of x, and nothing is converted."""
    hours, flops = tmp_path / "hours", tmp_path / "flops"
    by_hours = ("--x", "compute/device_hours")
    assert run_cli("fit", committed_run, *by_hours, "--out", hours, "--boot", "60", "--no-plots") == 0
    assert "device-hour" not in capsys.readouterr().out  # x is already in hours: no conversion line
    assert run_cli("fit", committed_run, "--out", flops, "--boot", "60", "--no-plots") == 0
    h, f = fit_json(hours)["fits"][0], fit_json(flops)["fits"][0]
    assert h["x"] == "compute/device_hours" and f["x"] == "compute/flops"
    for name in ("A", "B"):
        assert h["params"][name]["value"] == pytest.approx(f["params"][name]["value"], abs=2e-3)
    assert h["params"]["C_mid"]["value"] * HOURS_TO_FLOPS == pytest.approx(f["params"]["C_mid"]["value"], rel=2e-3)
    assert h["throughput"]["source"] == "identity" and h["throughput"]["value"] == 1.0


def test_predict(committed_run, tmp_path, capsys):
    at = [0.2 * HOURS_TO_FLOPS, 1.0 * HOURS_TO_FLOPS]
    assert run_cli("predict", committed_run, "--at", at[0], "--at", at[1], "--out", tmp_path, "--boot", "80") == 0
    out = capsys.readouterr().out
    assert "one eval [95%]" in out and "device-hours" in out  # the run's throughput gives hours beside x
    preds = fit_json(tmp_path)["predictions"]
    assert [p["at"] for p in preds] == at
    assert [p["at_hours"] for p in preds] == pytest.approx([0.2, 1.0], rel=1e-3)
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


def test_fit_prints_compute_in_device_hours_at_the_measured_throughput(committed_run, tmp_path, capsys):
    assert run_cli("fit", committed_run, "--out", tmp_path, "--boot", "60", "--no-plots") == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("compute:")]
    assert line.startswith(
        "compute: x = compute/flops; at 3.1e+15 compute/flops per device-hour "
        "(the run's median over 60 iterations; --throughput to set one) the fitted range ends at "
    )
    assert out.index("intervals:") < out.index(line) < out.index("entropy-performance law")  # after the fit notes
    fit = fit_json(tmp_path)["fits"][0]
    tp = fit["throughput"]
    assert tp["source"] == "median" and tp["x_key"] == "compute/flops" and tp["n_iterations"] == 60
    assert tp["value"] == pytest.approx(3.1e15, rel=1e-3)
    assert tp["C_mid_hours"] == pytest.approx(fit["params"]["C_mid"]["value"] / tp["value"])
    assert tp["fitted_range_hours"][1] == pytest.approx(fit["fitted_range"][1] / tp["value"])
    end, c_mid = tp["fitted_range_hours"][1], tp["C_mid_hours"]
    assert f"ends at {end:.3g} device-hours and C_mid = {c_mid:.3g} device-hours" in line


def test_a_given_throughput_is_used_and_said(committed_run, tmp_path, capsys):
    assert run_cli("fit", committed_run, "--throughput", "1e15", "--out", tmp_path, "--boot", "60", "--no-plots") == 0
    out = capsys.readouterr().out
    assert "at 1e+15 compute/flops per device-hour (given) the fitted range ends at" in out
    fit = fit_json(tmp_path)["fits"][0]
    assert fit["throughput"]["source"] == "given" and fit["throughput"]["value"] == 1e15
    assert fit["throughput"]["C_mid_hours"] == pytest.approx(fit["params"]["C_mid"]["value"] / 1e15)
    assert run_cli("fit", committed_run, "--x", "compute/device_hours", "--throughput", "1e15", "--out", tmp_path) == 2
    assert "x is already compute/device_hours" in capsys.readouterr().err


def test_predict_at_hours_converts_with_the_throughput(committed_run, tmp_path, capsys):
    args = ("predict", committed_run, "--out", tmp_path, "--boot", "60", "--no-plots")
    assert run_cli(*args, "--at-hours", "0.5", "--at-hours", "2", "--throughput", "4e15") == 0
    out = capsys.readouterr().out
    preds = fit_json(tmp_path)["predictions"]
    assert [p["at"] for p in preds] == [2e15, 8e15]  # 0.5 h and 2 h at 4e15 FLOPs per device-hour
    assert [p["at_hours"] for p in preds] == [0.5, 2.0]
    header, _, first, second = out.split("\n\n")[-1].splitlines()[:4]
    assert header.split()[:3] == ["run", "at", "device-hours"]
    assert first.split()[1:3] == ["2.000e+15", "0.500"] and second.split()[1:3] == ["8.000e+15", "2.00"]
    # the measured throughput (3.1e15 per hour) by default
    assert run_cli(*args, "--at-hours", "1") == 0
    assert fit_json(tmp_path)["predictions"][0]["at"] == pytest.approx(3.1e15, rel=1e-3)


def test_predict_at_hours_needs_a_throughput(tmp_path, capsys):
    lines = [{"step": i, "compute/flops": 1e12 * i, "val/accuracy": 0.1 + 0.5 * i / (i + 8)} for i in range(0, 40, 2)]
    run = tmp_path / "no-hours"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run_cli("predict", run, "--at-hours", "1", "--out", tmp_path, "--boot", "30", "--no-plots") == 2
    err = capsys.readouterr().err
    assert "--at-hours needs a throughput" in err and "no-hours" in err and "--throughput" in err
    assert run_cli("predict", run, "--at-hours", "1", "--throughput", "2e12", "--out", tmp_path, "--no-plots") == 0
    assert fit_json(tmp_path)["predictions"][0]["at"] == 2e12


def test_predict_takes_exactly_one_of_at_and_at_hours(committed_run, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli("predict", committed_run, "--at", "1e15", "--at-hours", "1")
    assert e.value.code == 2 and "argument --at-hours: not allowed with argument --at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        run_cli("predict", committed_run)
    assert e.value.code == 2 and "one of the arguments --at --at-hours is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("fit", committed_run, "--throughput", "-1")
    assert "expected a positive" in capsys.readouterr().err


def test_default_axis_falls_back_to_tokens_then_says_what_to_pass(tmp_path, capsys):
    run = write_run_dir(tmp_path / "runs", "r")
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        del line["compute/flops"]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run_cli("fit", run, "--out", tmp_path, "--boot", "30", "--no-plots") == 0
    assert fit_json(tmp_path)["fits"][0]["x"] == "compute/tokens"
    for line in lines:
        del line["compute/tokens"]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run_cli("fit", run, "--out", tmp_path, "--no-plots") == 2
    err = capsys.readouterr().err
    assert "lacks compute/flops and compute/tokens" in err and "compute/device_hours, step" in err
    assert "--x compute/device_hours" in err


def test_compare_ranks_every_recipe_on_one_axis(tmp_path, capsys):
    """A run without flops puts every run of the comparison on tokens, not just itself."""
    runs = tmp_path / "runs"
    write_run_dir(runs, "grpo-s0", A=0.55)
    cispo = write_run_dir(runs, "cispo-s0", A=0.70, recipe_overrides={"algorithm.loss.name": "cispo"})
    lines = [json.loads(line) for line in (cispo / "metrics.jsonl").read_text().splitlines()]
    (cispo / "metrics.jsonl").write_text("".join(json.dumps(line | {"compute/flops": None}) + "\n" for line in lines))
    assert run_cli("compare", runs, "--boot", "40", "--no-plots", "--out", tmp_path) == 0
    assert {f["x"] for f in fit_json(tmp_path)["fits"]} == {"compute/tokens"}


def busy_and_calm(root):
    """Two runs of the same seed: the same FLOPs and accuracies (a sigmoid in compute/flops), but
    in the busy one the first third of the iterations took 15 times as long (a loaded machine)."""
    kw = dict(sigmoid_in="compute/flops", C_mid=0.015 * 3.1e15, steps=60)
    calm = write_run_dir(root, "calm", **kw)
    busy = write_run_dir(root, "busy", slowdown=lambda step: 15.0 if step <= 20 else 1.0, **kw)
    return calm, busy


def test_load_on_the_machine_does_not_move_the_default_fit(tmp_path, capsys):
    calm, busy = busy_and_calm(tmp_path / "runs")
    c_lines, b_lines = ([json.loads(ln) for ln in (r / "metrics.jsonl").read_text().splitlines()] for r in (calm, busy))
    strip = lambda line: {k: v for k, v in line.items() if k != "compute/device_hours"}  # noqa: E731
    assert [strip(line) for line in c_lines] == [strip(line) for line in b_lines]  # only the hours differ
    assert b_lines[20]["compute/device_hours"] > 10 * c_lines[20]["compute/device_hours"]

    def fit(run, *extra):
        out = tmp_path / f"{run.name}{len(extra)}"
        assert run_cli("fit", run, "--out", out, "--no-plots", "--boot", "100", *extra) == 0
        return fit_json(out)["fits"][0]

    c, b = fit(calm), fit(busy)
    assert c["x"] == b["x"] == "compute/flops"
    for name in ("A", "B", "C_mid"):
        assert c["params"][name] == b["params"][name]  # value and interval, exactly
    assert c["asymptote"] == b["asymptote"] and c["identified"] and b["identified"]
    assert c["params"]["A"]["low"] < 0.62 < c["params"]["A"]["high"]  # and it finds the true A
    # against device-hours the busy run's curve is stretched where the machine was loaded
    c, b = fit(calm, "--x", "compute/device_hours"), fit(busy, "--x", "compute/device_hours")
    assert b["params"]["C_mid"]["value"] > 1.2 * c["params"]["C_mid"]["value"]
    assert c["params"]["A"]["low"] < 0.62 < c["params"]["A"]["high"]


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
