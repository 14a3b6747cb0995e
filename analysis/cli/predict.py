"""``asymptote predict``: a run's performance at a larger compute, with its interval."""

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
    hours_notes,
    out_dir,
    throughputs,
)


def run(args: argparse.Namespace) -> int:
    from analysis import report
    from analysis.extrapolate import predict_at

    try:
        fits, errors, groups = fit_groups(args, args.law, args.budget)
    except ValueError as e:
        return fail("predict", str(e))
    for e in errors:
        print(f"asymptote predict: error: {e}", file=sys.stderr)
    if not fits:
        return 2
    tps = throughputs(args, fits, groups)
    if args.at_hours is not None:
        unknown = [cf.label for cf in fits if tps[cf.label] is None]
        if unknown:
            return fail(
                "predict",
                f"--at-hours needs a throughput (x units per device-hour) to convert hours to {args.x}, and "
                f"{', '.join(unknown)} has no compute/device_hours to measure one{hours_notes(groups, unknown)}: "
                "pass --throughput FLOPS_PER_DEVICE_HOUR, or --at in x units",
            )
        ats = [(cf, h * tps[cf.label].value, h) for cf in fits for h in args.at_hours]
    else:
        ats = [(cf, at, None if tps[cf.label] is None else at / tps[cf.label].value) for cf in fits for at in args.at]
    preds = [(cf.label, predict_at(cf, at)) for cf, at, _ in ats]
    hours = [h for _, _, h in ats]
    print(report.fits_table(fits))
    print(report.notes(fits))
    for line in compute_lines(fits, tps):
        print(line)
    print()
    print(report.predictions_table(preds, hours=hours if any(h is not None for h in hours) else None))
    payload: dict[str, Any] = {
        "schema": report.SCHEMA,
        "command": "predict",
        "fits": fits_json(fits, tps),
        "predictions": [report.prediction_json(label, p) | {"at_hours": h} for (label, p), h in zip(preds, hours)],
    }
    if args.budget is not None:
        payload["backtests"] = backtests(args, fits, groups)
    finish(args, out_dir(args), payload, fits, predictions={label: p for label, p in preds})
    return 2 if errors else 0


