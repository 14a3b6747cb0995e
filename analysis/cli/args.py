"""The arguments every analysis command shares, and each command's own (``add_arguments``).

Standard library only: ``asymptote --help`` stays fast."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser, command: str) -> None:
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
    _command_arguments(p, command)
    p.add_argument(
        "--prior",
        metavar="PRIOR.json",
        help="fit under a prior learned from finished runs (asymptote prior build): the shape of their curves "
        "(docs/analysis.md, 'Predict from a prefix with a prior')",
    )
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
        type=positive,
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


def _command_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """The arguments of one command: the law (fit, predict), where to predict, the baseline (compare)."""
    if command != "compare":
        p.add_argument(
            "--law",
            choices=["sigmoid", "creep", "power"],
            default="sigmoid",
            help="law to fit (default: ScaleRL's sigmoid; creep: the sigmoid with a tail exponent; --prior uses the "
            "prior's law)",
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


def positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


