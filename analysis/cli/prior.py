"""``asymptote prior build|show``: learn a prior from finished runs, and read one.

    asymptote prior build runs/ -o prior.json                  every run under runs/ (any reader's format)
    asymptote prior build runs/ trl-out/ --family math=*gsm* --family code=*mbpp* -o prior.json
    asymptote prior show prior.json
    asymptote fit runs/new-run --budget 2e14 --prior prior.json

A run's family (runs of one task, whose curves are alike) decides how the prior weighs what it learned:
a new run is predicted as a run of a new family. It is, in order: the first --family LABEL=PATTERN
whose pattern (fnmatch) matches the run's name; for an Asymptote run, its recipe's tasks (the
reasoning-gym family names, with their operators) or its dataset; else the run's name without its seed.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from typing import Any

from analysis.cli.common import fail


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "prior",
        help="learn a prior over curve shapes from finished runs; show one",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="prior_command", required=True)
    b = sub.add_parser("build", help="learn a prior from finished runs")
    b.add_argument("runs", nargs="+", metavar="RUN", help="finished runs (any format `asymptote fit` reads)")
    b.add_argument("-o", "--out", required=True, metavar="PRIOR.json", help="where to write the prior")
    b.add_argument("--family", action="append", default=[], metavar="LABEL=PATTERN",
                   help="runs whose name matches PATTERN (fnmatch) are of family LABEL (repeatable)")
    b.add_argument("--format", choices=["auto", "asymptote", "csv", "trl", "verl", "tensorboard", "wandb"],
                   default="auto", help="reader of every RUN (default: auto)")
    b.add_argument("--x", default="auto", help="x-axis metric (default: auto, as for `asymptote fit`)")
    b.add_argument("--y", default="val/accuracy", help="y-axis metric (default: %(default)s)")
    b.add_argument("--law", choices=["creep", "sigmoid"], default="creep", help="law (default: %(default)s)")
    b.add_argument("--components", nargs="+", metavar="NAME",
                   help="the law's coordinates the prior holds (default: log_B log_tail log_C_mid_steps, the "
                   "shape; logit_gain adds how much of the headroom the runs took)")
    b.add_argument("--gpus", type=int, metavar="N", help="GPUs a verl or OpenRLHF run ran on")
    b.set_defaults(func=_build)
    s = sub.add_parser("show", help="print a prior: its distribution and the runs it was learned from")
    s.add_argument("prior", metavar="PRIOR.json")
    s.set_defaults(func=_show)


def family_of(run: Any, patterns: list[tuple[str, str]]) -> str:
    """A run's family (see the module doc)."""
    for label, pattern in patterns:
        if fnmatch.fnmatch(run.name, pattern):
            return label
    env = (run.recipe or {}).get("env") or {}
    tasks = env.get("tasks") or []
    if tasks:
        parts = []
        for t in tasks:
            ops = (t.get("config") or {}).get("operators")
            parts.append(t["name"] + (f"[{''.join(ops)}]" if ops else ""))
        return "+".join(sorted(parts))
    if env.get("dataset"):
        return str(env["dataset"]).rsplit("/", 1)[-1]
    return re.sub(r"([-_.]?(s|seed)\d+)$", "", run.name) or run.name


def _parse_families(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        label, sep, pattern = item.partition("=")
        if not sep or not label or not pattern:
            raise ValueError(f"--family {item!r}: expected LABEL=PATTERN, e.g. --family math='*gsm8k*'")
        out.append((label, pattern))
    return out


def _build(args: argparse.Namespace) -> int:
    from analysis.fit import FitError
    from analysis.prior import Curve, build_prior, step_compute
    from analysis.readers import RunError, check_y, default_x, load_runs, series

    try:
        patterns = _parse_families(args.family)
        runs = load_runs(args.runs, format=args.format, gpus=args.gpus)
        if not runs:
            raise ValueError(f"no runs found in {', '.join(args.runs)}")
        check_y(runs, args.y)
        x_key = default_x(runs, args.y) if args.x == "auto" else args.x
        curves = []
        for r in runs:
            x, y = series(r, x_key, args.y)
            curves.append(Curve(r.name, family_of(r, patterns), x, y, step_compute(r.records, x_key),
                                r.source or r.name))
        from analysis.prior import COMPONENTS, DEFAULT_COMPONENTS

        comps = tuple(args.components or DEFAULT_COMPONENTS)
        unknown = [c for c in comps if c not in COMPONENTS]
        if unknown:
            raise ValueError(f"unknown prior component(s) {unknown}; known: {', '.join(COMPONENTS)}")
        prior = build_prior(curves, law=args.law, components=comps, x_key=x_key, y_key=args.y)
    except (ValueError, FitError, RunError) as e:
        return fail("prior build", str(e))
    path = prior.save(args.out)
    print(describe(prior))
    print(f"wrote {path}")
    return 0


def describe(prior: Any) -> str:
    """The prior in words and a table: its components' means and sds, and its members by family."""
    import numpy as np

    from analysis.report import table

    rows = [[c, f"{m:+.3f}", f"{prior.sd[c]:.3f}", f"{np.sqrt(max(prior.within[i, i], 0)):.3f}",
             f"{np.sqrt(max(prior.between[i, i], 0)):.3f}"]
            for i, (c, m) in enumerate(zip(prior.components, prior.mean))]
    fams: dict[str, list[str]] = {}
    for m in prior.members:
        fams.setdefault(m.family, []).append(m.name)
    lines = [
        f"prior over the {prior.law} law of {prior.y_key} against {prior.x_key}, learned from {len(prior.members)} "
        f"run(s) of {len(fams)} famil{'y' if len(fams) == 1 else 'ies'}:",
        table(["component", "mean", "sd (a new family's run)", "sd within a family", "sd between families"], rows),
    ]
    lines += [f"  {f}: {', '.join(sorted(names))}" for f, names in sorted(fams.items())]
    if len(fams) == 1:
        lines.append("(!) one family: how families differ is unknown, and taken as large as how its runs differ")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from analysis.prior import Prior

    try:
        prior = Prior.load(args.prior)
    except ValueError as e:
        return fail("prior show", str(e))
    print(describe(prior))
    return 0
