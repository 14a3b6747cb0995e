"""What the analysis commands share: loading and grouping runs, fitting each group, throughputs
(compute in device-hours), backtests, and writing fit.json and the plots.

Standard library only at import time; numpy, scipy and matplotlib load inside the functions."""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def fail(command: str, message: str) -> int:
    print(f"asymptote {command}: error: {message}", file=sys.stderr)
    return 2


def out_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if len(args.runs) == 1:
        src = Path(args.runs[0])
        if (src / "metrics.jsonl").is_file() or (
            src.is_dir() and any((c / "metrics.jsonl").is_file() for c in src.iterdir() if c.is_dir())
        ):
            return src / "analysis"
    return Path("asymptote-analysis")


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "run"


def load_groups(args: argparse.Namespace) -> dict[str, list]:
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


def throughputs(args: argparse.Namespace, fits: list, groups: dict[str, list]) -> dict[str, Throughput | None]:
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


def hours_notes(groups: dict[str, list], labels: list[str]) -> str:
    """Why runs have no device-hours, where their reader said (a verl log without its GPU count)."""
    notes = {n for label in labels for r in groups[label] if (n := r.notes.get("compute/device_hours"))}
    return f" ({'; '.join(sorted(notes))})" if notes else ""


def compute_lines(fits: list, tps: dict[str, Throughput | None]) -> list[str]:
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


def fits_json(fits: list, tps: dict[str, Throughput | None]) -> list[dict[str, Any]]:
    from analysis import report

    return [report.curve_json(cf) | {"throughput": _throughput_json(cf, tps.get(cf.label))} for cf in fits]


def fit_members(args: argparse.Namespace, members: list, label: str, law: str, budget: float | None) -> Any:
    """One group's fit: the law of ``law``, or, with ``--prior``, the prior's law under the prior."""
    from analysis.extrapolate import fit_runs

    kw = dict(budget=budget, skip_fraction=args.skip_fraction, n_boot=args.boot, seed=args.seed)
    prior = getattr(args, "prior_loaded", None)
    if prior is None:
        return fit_runs(members, x_key=args.x, y_key=args.y, label=label, law=law, skip_below=args.skip_below, **kw)
    from analysis.extrapolate import runs_points
    from analysis.prior import prior_fit, step_compute

    x, y, g = runs_points(members, args.x, args.y)
    step = step_compute(members[0].records, args.x, budget)
    return prior_fit(x, y, prior, step=step, groups=g, skip_below=args.skip_below, x_key=args.x, y_key=args.y,
                     label=label, runs=tuple(r.name for r in members), **kw)


def load_prior(args: argparse.Namespace) -> None:
    """Read ``--prior`` into ``args.prior_loaded`` (None without one); its axes must be the fit's."""
    args.prior_loaded = None
    if getattr(args, "prior", None) is None:
        return
    from analysis.prior import Prior

    prior = Prior.load(args.prior)
    if (prior.x_key, prior.y_key) != (args.x, args.y):
        raise ValueError(
            f"the prior {args.prior} was learned on {prior.y_key} against {prior.x_key}; this fit is {args.y} "
            f"against {args.x}: build a prior on the same axes (asymptote prior build ... --x {args.x} --y {args.y})"
        )
    args.prior_loaded = prior


def fit_groups(args: argparse.Namespace, law: str, budget: float | None) -> tuple[list, list[str], dict[str, list]]:
    """Fit every group; return the fits, the errors of groups that could not be fitted, and the groups."""
    from analysis.fit import FitError
    from analysis.readers import RunError

    groups = load_groups(args)
    load_prior(args)
    fits, errors = [], []
    for label, members in groups.items():
        try:
            fits.append(fit_members(args, members, label, law, budget))
        except (FitError, RunError) as e:
            errors.append(f"{label}: {e}")
    return fits, errors, groups


def backtests(args: argparse.Namespace, fits: list, groups: dict[str, list]) -> list[dict]:
    """Backtest every fit whose run has evals after --budget; print them and return their json."""
    from analysis import report
    from analysis.extrapolate import backtest

    out = []
    for cf in fits:
        if args.budget is None or not (cf.x > args.budget).any():
            continue
        full = fit_members(args, groups[cf.label], cf.label, cf.fit.law, None)
        bt = backtest(cf, full)
        print("\n" + report.backtest_text(cf.label, bt))
        out.append(report.backtest_json(cf.label, bt))
    return out


def write(out: Path, payload: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fit.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def summary_lines(fits: list) -> list[str]:
    """Each fit's verdict (analysis/verdict.py): an identified asymptote, or the value it promises at a
    stated compute instead."""
    from analysis.verdict import verdict, verdict_text

    out = []
    for cf in fits:
        v = verdict(cf)
        out.append(verdict_text(v, cf.label, cf.y_key, cf.x_key))
        out += [f"  (!) {r}" for r in v.reasons if r not in cf.warnings]
    return out


def finish(args, out: Path, payload: dict, fits: list, *, entropy=(), predictions=None, per_run: bool = True) -> None:
    path = write(out, payload)
    written = [path]
    if not args.no_plots:
        from analysis import plots

        if per_run:
            for cf in fits:
                p = (predictions or {}).get(cf.label)
                written.append(plots.plot_fit(cf, out / f"{slug(cf.label)}.png", prediction=p))
            for e in entropy:
                written.append(plots.plot_entropy(e, out / f"{slug(e.label)}_entropy.png"))
        if len(fits) > 1 or not per_run:
            written.append(plots.plot_runs(fits, out / "runs.png"))
    print("wrote " + ", ".join(str(p) for p in written))
