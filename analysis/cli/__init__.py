"""``asymptote fit|compare|predict|prior``: fit runs, rank recipes, predict a run at more compute.

    asymptote fit runs/grpo                       fit ScaleRL's sigmoid; table, fit.json and PNGs
    asymptote fit runs/grpo --budget 1e14         fit up to 1e14 FLOPs, backtest on the rest
    asymptote compare runs/ --baseline grpo       rank runs/recipes by A; which ablations moved A
    asymptote predict runs/grpo --at 3e15         the curve at 3e15 FLOPs, with its interval
    asymptote predict runs/grpo --at-hours 1.0    ... at 1.0 device-hours of the run's throughput
    asymptote prior build done-runs/ -o prior.json  learn the shape of finished runs' curves
    asymptote fit runs/new --prior prior.json     fit a short run under that prior

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

This package imports only the standard library at import time, so ``asymptote --help`` stays fast:
one module per command (fit.py, compare.py, predict.py, prior.py), their arguments in args.py, what
they share in common.py.
"""

from __future__ import annotations

import argparse
from typing import Any

from analysis.cli import compare, fit, predict
from analysis.cli import prior as prior_command
from analysis.cli.args import add_arguments

COMMANDS = {
    "fit": "fit ScaleRL's sigmoid (and the entropy law) to runs, with intervals",
    "compare": "rank runs or recipes by asymptote; say which ablations moved A or only efficiency",
    "predict": "predict a run's performance at a larger compute, with an interval",
}


def register(subparsers: Any) -> None:
    """Add the ``fit``, ``compare``, ``predict`` and ``prior`` subcommands to an argparse subparsers object."""
    for name, help_text in COMMANDS.items():
        p = subparsers.add_parser(
            name,
            help=help_text,
            description=f"{help_text}.\n\n{__doc__.split(chr(10) + chr(10))[1]}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(p, name)
        p.set_defaults(func=_COMMAND_FUNCS[name])
    prior_command.register(subparsers)


def analysis_main(argv: list[str]) -> int:
    """What ``asymptote fit|compare|predict|prior ARGV...`` does (argv[0] the command): the demo fits its own
    run with it at the end, the sweep compares its finished arms."""
    parser = argparse.ArgumentParser(prog="asymptote")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


_COMMAND_FUNCS = {"fit": fit.run, "compare": compare.run, "predict": predict.run}
