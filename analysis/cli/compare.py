"""``asymptote compare``: rank runs or recipes by asymptote; which ablations moved A or only efficiency."""

from __future__ import annotations

import argparse
import sys

from analysis.cli.common import (
    compute_lines,
    fail,
    finish,
    fit_groups,
    fits_json,
    out_dir,
    throughputs,
)


def run(args: argparse.Namespace) -> int:
    from analysis import report
    from analysis.compare import compare

    try:
        fits, errors, groups = fit_groups(args, "sigmoid", args.budget)
    except ValueError as e:
        return fail("compare", str(e))
    for e in errors:
        print(f"asymptote compare: error: {e}", file=sys.stderr)
    if not fits:
        return 2
    try:
        cmp = compare(fits, baseline=args.baseline, margin=args.margin)
    except ValueError as e:
        return fail("compare", str(e))
    tps = throughputs(args, fits, groups)
    print(report.comparison_text(cmp))
    print(report.notes(fits))
    for line in compute_lines(fits, tps):
        print(line)
    payload = {
        "schema": report.SCHEMA,
        "command": "compare",
        "fits": fits_json(fits, tps),
        "comparison": report.comparison_json(cmp),
    }
    finish(args, out_dir(args), payload, cmp.rows, per_run=False)
    return 2 if errors else 0


