"""``asymptote fit|compare|predict``: fit runs, rank recipes, predict a run at more compute.

    asymptote fit runs/grpo                       fit ScaleRL's sigmoid; table, fit.json and PNGs
    asymptote fit runs/grpo --budget 1e14         fit up to 1e14 FLOPs, backtest on the rest
    asymptote compare runs/ --baseline grpo       rank runs/recipes by A; which ablations moved A
    asymptote predict runs/grpo --at 3e15         the curve at 3e15 FLOPs, with its interval
    asymptote predict runs/grpo --at-hours 1.0    ... at 1.0 device-hours of the run's throughput

RUN is a run directory (recipe.yaml + metrics.jsonl), a .csv, a TRL output directory
(trainer_state.json), a verl file-logger .jsonl, a TensorBoard log (verl, OpenRLHF, TRL), a wandb
offline run, a folder of any of these, or wandb:ENTITY/PROJECT/RUN_ID (or wandb:ENTITY/PROJECT?group=NAME);
each one's content says which it is (--format forces a reader). Seeds of one recipe (same recipe
apart from name and seed, or the same wandb group) are pooled into one curve with seed-level
intervals unless --no-group. Output goes to RUN/analysis for one run directory (or folder of runs),
else to ./asymptote-analysis, or to --out.

Compute is compute/flops by default (else compute/tokens), a count of work that does not depend on
the machine's load; device-hours are a unit conversion of it at the run's measured throughput
(--throughput to set one), or the axis itself with --x compute/device_hours.

This module imports only the standard library at import time, so ``asymptote --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMANDS = {
    "fit": "fit ScaleRL's sigmoid (and the entropy law) to runs, with intervals",
    "compare": "rank runs or recipes by asymptote; say which ablations moved A or only efficiency",
    "predict": "predict a run's performance at a larger compute, with an interval",
}


def register(subparsers: Any) -> None:
    """Add the ``fit``, ``compare`` and ``predict`` subcommands to an argparse subparsers object."""
    for name, help_text in COMMANDS.items():
        p = subparsers.add_parser(
            name,
            help=help_text,
            description=f"{help_text}.\n\n{__doc__.split(chr(10) + chr(10))[1]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(p, name)
        p.set_defaults(func=_COMMAND_FUNCS[name])


def _add_common(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run directory, .csv, TRL output dir, verl .jsonl, TensorBoard log, wandb offline run, a folder "
        "of them, or wandb:ENTITY/PROJECT/RUN_ID",
    )
    p.add_argument(
        "--format",
        choices=["auto", "asymptote", "csv", "trl", "verl", "tensorboard", "wandb"],
        default="auto",
        help="reader of every RUN (default: auto, each RUN's content decides)",
    )
    p.add_argument(
        "--gpus",
        type=int,
        metavar="N",
        help="GPUs a verl or OpenRLHF run ran on, for compute/device_hours (verl: default read from perf/throughput)",
    )
    p.add_argument(
        "--x",
        default="auto",
        help="x-axis metric (default: auto = compute/flops when every run has it on its eval lines, else "
        "compute/tokens when every run has that, else an error; e.g. compute/device_hours or step)",
    )
    p.add_argument("--y", default="val/accuracy", help="y-axis metric (default: %(default)s)")
    if command != "compare":
        p.add_argument(
            "--law", choices=["sigmoid", "power"], default="sigmoid", help="law to fit (default: ScaleRL's sigmoid)"
        )
    if command == "predict":
        at = p.add_mutually_exclusive_group(required=True)
        at.add_argument(
            "--at", type=float, action="append", metavar="COMPUTE", help="x value to predict at (repeatable)"
        )
        at.add_argument(
            "--at-hours",
            type=float,
            action="append",
            metavar="H",
            help="device-hours to predict at (repeatable), converted to x with the throughput (see --throughput)",
        )
    if command == "compare":
        p.add_argument("--baseline", metavar="LABEL", help="judge every other run/recipe against this one")
        p.add_argument("--margin", type=float, default=0.02, help="seed margin on A for single runs (ScaleRL: 0.02)")
    p.add_argument(
        "--budget",
        type=float,
        metavar="COMPUTE",
        help="fit only evals up to this x; later evals backtest the prediction",
    )
    p.add_argument(
        "--skip-below", type=float, metavar="COMPUTE", help="leave out evals below this x (default: --skip-fraction)"
    )
    p.add_argument(
        "--skip-fraction",
        type=float,
        default=0.1,
        help="leave out evals below this fraction of the last fitted x (default: %(default)s)",
    )
    p.add_argument(
        "--throughput",
        type=_positive,
        metavar="FLOPS_PER_DEVICE_HOUR",
        help="x units per device-hour, to speak of compute in device-hours (default: the run's median over its "
        "training iterations of d(x)/d(compute/device_hours))",
    )
    p.add_argument("--no-group", action="store_true", help="fit each run alone instead of pooling seeds of one recipe")
    p.add_argument(
        "--entropy-key", default="train/entropy", help="entropy metric for the entropy law (default: %(default)s)"
    )
    p.add_argument("--boot", type=int, default=400, help="bootstrap refits (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--out", help="folder for fit.json and PNGs")
    p.add_argument("--no-plots", action="store_true", help="write fit.json only")


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def analysis_main(argv: list[str]) -> int:
    """What ``asymptote fit|compare|predict ARGV...`` does (argv[0] the command): the demo fits its own
    run with it at the end, the sweep compares its finished arms."""
    parser = argparse.ArgumentParser(prog="asymptote")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------


def _fail(command: str, message: str) -> int:
    print(f"asymptote {command}: error: {message}", file=sys.stderr)
    return 2


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if len(args.runs) == 1:
        src = Path(args.runs[0])
        if (src / "metrics.jsonl").is_file() or (
            src.is_dir() and any((c / "metrics.jsonl").is_file() for c in src.iterdir() if c.is_dir())
        ):
            return src / "analysis"
    return Path("asymptote-analysis")


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "run"


def _load_groups(args: argparse.Namespace) -> dict[str, list]:
    """The runs, grouped; ``--x auto`` is resolved here (``args.x`` set), one axis for every run."""
    from analysis.readers import HOURS, check_y, default_x, group_runs, load_runs

    runs = load_runs(args.runs, format=args.format, gpus=args.gpus)
    if not runs:
        raise ValueError(f"no runs found in {', '.join(args.runs)}")
    check_y(runs, args.y)
    if args.x == "auto":
        args.x = default_x(runs, args.y)
    if args.throughput is not None and args.x == HOURS:
        raise ValueError(f"--throughput converts x to device-hours, and x is already {HOURS}: leave it out")
    return {r.name: [r] for r in runs} if args.no_group else group_runs(runs)


@dataclass(frozen=True)
class Throughput:
    """x units per device-hour for one fit, and where that number came from."""

    value: float
    source: str
    """"given" (--throughput), "median" (the runs' measured median) or "identity" (x is device-hours)."""
    n_iterations: int = 0
    """The iterations the median is over."""
    n_runs: int = 1

    def describe(self) -> str:
        if self.source == "given":
            return "given"
        whose = "the run's" if self.n_runs == 1 else f"the {self.n_runs} runs'"
        return f"{whose} median over {self.n_iterations} iterations; --throughput to set one"


def _throughputs(args: argparse.Namespace, fits: list, groups: dict[str, list]) -> dict[str, Throughput | None]:
    """Each fit's throughput: --throughput where given, else its runs' median; None where unknown."""
    from analysis.readers import HOURS, throughput, throughput_rates

    out: dict[str, Throughput | None] = {}
    for cf in fits:
        members = groups[cf.label]
        if cf.x_key == HOURS:
            out[cf.label] = Throughput(1.0, "identity")
        elif args.throughput is not None:
            out[cf.label] = Throughput(args.throughput, "given")
        else:
            value = throughput(members, cf.x_key)
            n = int(throughput_rates(members, cf.x_key).size)
            out[cf.label] = None if value is None else Throughput(value, "median", n, len(members))
    return out


def _hours_notes(groups: dict[str, list], labels: list[str]) -> str:
    """Why runs have no device-hours, where their reader said (a verl log without its GPU count)."""
    notes = {n for label in labels for r in groups[label] if (n := r.notes.get("compute/device_hours"))}
    return f" ({'; '.join(sorted(notes))})" if notes else ""


def _compute_lines(fits: list, tps: dict[str, Throughput | None]) -> list[str]:
    """Where x is not device-hours and a throughput is known: the fitted range and C_mid in hours."""
    from analysis.report import num

    lines = []
    for cf in fits:
        tp = tps.get(cf.label)
        if tp is None or tp.source == "identity":
            continue
        head = "compute:" if len(fits) == 1 else f"compute ({cf.label}):"
        line = (
            f"{head} x = {cf.x_key}; at {tp.value:.3g} {cf.x_key} per device-hour ({tp.describe()}) "
            f"the fitted range ends at {num(cf.fitted_range[1] / tp.value, 3)} device-hours"
        )
        if "C_mid" in cf.fit.params:
            line += f" and C_mid = {num(cf.fit.params['C_mid'] / tp.value, 3)} device-hours"
        lines.append(line)
    return lines


def _throughput_json(cf: Any, tp: Throughput | None) -> dict[str, Any] | None:
    if tp is None:
        return None
    out: dict[str, Any] = {"value": tp.value, "source": tp.source, "x_key": cf.x_key, "per": "device-hour"}
    if tp.source == "median":
        out |= {"n_iterations": tp.n_iterations, "n_runs": tp.n_runs}
    out["fitted_range_hours"] = [v / tp.value for v in cf.fitted_range]
    if "C_mid" in cf.fit.params:
        out["C_mid_hours"] = cf.fit.params["C_mid"] / tp.value
    return out


def _fits_json(fits: list, tps: dict[str, Throughput | None]) -> list[dict[str, Any]]:
    from analysis import report

    return [report.curve_json(cf) | {"throughput": _throughput_json(cf, tps.get(cf.label))} for cf in fits]


def _fit_groups(args: argparse.Namespace, law: str, budget: float | None) -> tuple[list, list[str], dict[str, list]]:
    """Fit every group; return the fits, the errors of groups that could not be fitted, and the groups."""
    from analysis.extrapolate import fit_runs
    from analysis.fit import FitError
    from analysis.readers import RunError

    groups = _load_groups(args)
    fits, errors = [], []
    for label, members in groups.items():
        try:
            fits.append(
                fit_runs(
                    members,
                    x_key=args.x,
                    y_key=args.y,
                    label=label,
                    law=law,
                    budget=budget,
                    skip_below=args.skip_below,
                    skip_fraction=args.skip_fraction,
                    n_boot=args.boot,
                    seed=args.seed,
                )
            )
        except (FitError, RunError) as e:
            errors.append(f"{label}: {e}")
    return fits, errors, groups


def _entropy_fit(args: argparse.Namespace, label: str, members: list) -> Any:
    """Cui et al.'s entropy law on the same runs, where eval lines carry the entropy metric; else None."""
    from analysis.extrapolate import fit_curve, runs_points
    from analysis.fit import FitError
    from analysis.readers import RunError

    try:
        H, R, g = runs_points(members, args.entropy_key, args.y, need_x=False)
        return fit_curve(
            H,
            R,
            g,
            law="entropy",
            label=label,
            n_boot=args.boot,
            seed=args.seed,
            x_key=args.entropy_key,
            y_key=args.y,
            runs=tuple(r.name for r in members),
        )
    except (FitError, RunError):
        return None


def _backtests(args: argparse.Namespace, fits: list, groups: dict[str, list]) -> list[dict]:
    """Backtest every fit whose run has evals after --budget; print them and return their json."""
    from analysis import report
    from analysis.extrapolate import backtest, fit_runs

    out = []
    for cf in fits:
        if args.budget is None or not (cf.x > args.budget).any():
            continue
        full = fit_runs(
            groups[cf.label],
            x_key=args.x,
            y_key=args.y,
            label=cf.label,
            law=cf.fit.law,
            skip_below=args.skip_below,
            skip_fraction=args.skip_fraction,
            n_boot=args.boot,
            seed=args.seed,
        )
        bt = backtest(cf, full)
        print("\n" + report.backtest_text(cf.label, bt))
        out.append(report.backtest_json(cf.label, bt))
    return out


def _write(out: Path, payload: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fit.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def _summary_lines(fits: list) -> list[str]:
    from analysis.report import iv

    return [
        f"predicted asymptote of {cf.y_key} for {cf.label}: {iv(cf.asymptote)} ({round(100 * cf.boot.level)}% interval)"
        + ("" if cf.identified else "; poorly identified, see the (!) notes above")
        for cf in fits
    ]


def _cmd_fit(args: argparse.Namespace) -> int:
    from analysis import report

    try:
        fits, errors, groups = _fit_groups(args, args.law, args.budget)
    except ValueError as e:
        return _fail("fit", str(e))
    for e in errors:
        print(f"asymptote fit: error: {e}", file=sys.stderr)
    if not fits:
        return 2
    tps = _throughputs(args, fits, groups)
    print(report.fits_table(fits))
    print(report.notes(fits))
    for line in _compute_lines(fits, tps):
        print(line)
    payload: dict[str, Any] = {
        "schema": report.SCHEMA,
        "command": "fit",
        "fits": _fits_json(fits, tps),
    }
    entropy = [e for e in (_entropy_fit(args, cf.label, groups[cf.label]) for cf in fits) if e is not None]
    if entropy:
        print("\nentropy-performance law R = -a exp(H) + b (Cui et al. 2025); asymptote = ceiling at H = 0:")
        print(report.fits_table(entropy))
        for e in entropy:
            for w in e.warnings:
                print(f"(!) {e.label}: {w}")
        payload["entropy"] = [report.curve_json(e) for e in entropy]
    if args.budget is not None:
        payload["backtests"] = _backtests(args, fits, groups)
    print()
    print("\n".join(_summary_lines(fits)))
    _finish(args, _out_dir(args), payload, fits, entropy=entropy)
    return 2 if errors else 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from analysis import report
    from analysis.extrapolate import predict_at

    try:
        fits, errors, groups = _fit_groups(args, args.law, args.budget)
    except ValueError as e:
        return _fail("predict", str(e))
    for e in errors:
        print(f"asymptote predict: error: {e}", file=sys.stderr)
    if not fits:
        return 2
    tps = _throughputs(args, fits, groups)
    if args.at_hours is not None:
        unknown = [cf.label for cf in fits if tps[cf.label] is None]
        if unknown:
            return _fail(
                "predict",
                f"--at-hours needs a throughput (x units per device-hour) to convert hours to {args.x}, and "
                f"{', '.join(unknown)} has no compute/device_hours to measure one{_hours_notes(groups, unknown)}: "
                "pass --throughput FLOPS_PER_DEVICE_HOUR, or --at in x units",
            )
        ats = [(cf, h * tps[cf.label].value, h) for cf in fits for h in args.at_hours]
    else:
        ats = [(cf, at, None if tps[cf.label] is None else at / tps[cf.label].value) for cf in fits for at in args.at]
    preds = [(cf.label, predict_at(cf, at)) for cf, at, _ in ats]
    hours = [h for _, _, h in ats]
    print(report.fits_table(fits))
    print(report.notes(fits))
    for line in _compute_lines(fits, tps):
        print(line)
    print()
    print(report.predictions_table(preds, hours=hours if any(h is not None for h in hours) else None))
    payload: dict[str, Any] = {
        "schema": report.SCHEMA,
        "command": "predict",
        "fits": _fits_json(fits, tps),
        "predictions": [report.prediction_json(label, p) | {"at_hours": h} for (label, p), h in zip(preds, hours)],
    }
    if args.budget is not None:
        payload["backtests"] = _backtests(args, fits, groups)
    _finish(args, _out_dir(args), payload, fits, predictions={label: p for label, p in preds})
    return 2 if errors else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from analysis import report
    from analysis.compare import compare

    try:
        fits, errors, groups = _fit_groups(args, "sigmoid", args.budget)
    except ValueError as e:
        return _fail("compare", str(e))
    for e in errors:
        print(f"asymptote compare: error: {e}", file=sys.stderr)
    if not fits:
        return 2
    try:
        cmp = compare(fits, baseline=args.baseline, margin=args.margin)
    except ValueError as e:
        return _fail("compare", str(e))
    tps = _throughputs(args, fits, groups)
    print(report.comparison_text(cmp))
    print(report.notes(fits))
    for line in _compute_lines(fits, tps):
        print(line)
    payload = {
        "schema": report.SCHEMA,
        "command": "compare",
        "fits": _fits_json(fits, tps),
        "comparison": report.comparison_json(cmp),
    }
    _finish(args, _out_dir(args), payload, cmp.rows, per_run=False)
    return 2 if errors else 0


def _finish(args, out: Path, payload: dict, fits: list, *, entropy=(), predictions=None, per_run: bool = True) -> None:
    path = _write(out, payload)
    written = [path]
    if not args.no_plots:
        from analysis import plots

        if per_run:
            for cf in fits:
                p = (predictions or {}).get(cf.label)
                written.append(plots.plot_fit(cf, out / f"{_slug(cf.label)}.png", prediction=p))
            for e in entropy:
                written.append(plots.plot_entropy(e, out / f"{_slug(e.label)}_entropy.png"))
        if len(fits) > 1 or not per_run:
            written.append(plots.plot_runs(fits, out / "runs.png"))
    print("wrote " + ", ".join(str(p) for p in written))


_COMMAND_FUNCS = {"fit": _cmd_fit, "compare": _cmd_compare, "predict": _cmd_predict}
