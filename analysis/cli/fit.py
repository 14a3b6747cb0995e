"""``asymptote fit``: fit ScaleRL's sigmoid (and the entropy law) to runs, with intervals."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from analysis.cli.common import (
    backtests,
    compute_lines,
    fail,
    finish,
    fit_groups,
    fits_json,
    out_dir,
    summary_lines,
    throughputs,
)


def run(args: argparse.Namespace) -> int:
    from analysis import report

    try:
        fits, errors, groups = fit_groups(args, args.law, args.budget)
    except ValueError as e:
        return fail("fit", str(e))
    for e in errors:
        print(f"asymptote fit: error: {e}", file=sys.stderr)
    if not fits:
        return 2
    tps = throughputs(args, fits, groups)
    print(report.fits_table(fits))
    print(report.notes(fits))
    for line in compute_lines(fits, tps):
        print(line)
    payload: dict[str, Any] = {
        "schema": report.SCHEMA,
        "command": "fit",
        "fits": fits_json(fits, tps),
    }
    entropy = [e for e in (entropy_fit(args, cf.label, groups[cf.label]) for cf in fits) if e is not None]
    if entropy:
        print("\nentropy-performance law R = -a exp(H) + b (Cui et al. 2025); asymptote = ceiling at H = 0:")
        print(report.fits_table(entropy))
        for e in entropy:
            for w in e.warnings:
                print(f"(!) {e.label}: {w}")
        payload["entropy"] = [report.curve_json(e) for e in entropy]
    if args.budget is not None:
        payload["backtests"] = backtests(args, fits, groups)
    print()
    print("\n".join(summary_lines(fits)))
    finish(args, out_dir(args), payload, fits, entropy=entropy)
    return 2 if errors else 0


def entropy_fit(args: argparse.Namespace, label: str, members: list) -> Any:
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


