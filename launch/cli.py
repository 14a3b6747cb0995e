"""The `asymptote` command line.

    asymptote tiny-model PATH          build a tiny Qwen2-architecture model with a character tokenizer
    asymptote train RECIPE [k.s=v ...] train (add --resume to continue from the last checkpoint)
    asymptote demo                     the CPU demo: tiny model, GRPO on arithmetic, fitted curve
    asymptote fit|compare|predict ...  analysis of run directories (see `asymptote fit --help`)

Each subcommand imports what it needs when it runs, so `asymptote --help` is instant.
"""

from __future__ import annotations

import argparse
import sys


def _tiny_model(args: argparse.Namespace) -> int:
    from rl.models import build_tiny_model

    path = build_tiny_model(args.path, seed=args.seed)
    print(f"tiny model written to {path}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from rl.config import load_recipe
    from rl.trainer import train

    recipe = load_recipe(args.recipe, args.overrides)
    train(recipe, resume=args.resume)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from launch.demo import run_demo

    return run_demo(overrides=args.overrides, fresh=args.fresh)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asymptote", description="RL scaling testbed: run small, predict big.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tiny-model", help="build a tiny Qwen2 model with a character-level tokenizer")
    p.add_argument("path", help="directory to write the model and tokenizer to")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tiny_model)

    p = sub.add_parser("train", help="train a recipe")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.set_defaults(func=_train)

    p = sub.add_parser("demo", help="CPU demo: a tiny model learns arithmetic with GRPO, then its curve is fitted")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides of recipes/tiny/grpo_math.yaml")
    p.add_argument("--fresh", action="store_true", help="delete an existing demo run directory first")
    p.set_defaults(func=_demo)

    from analysis.cli import register

    register(sub)  # fit, compare, predict
    return parser


def main(argv: list[str] | None = None) -> int:
    from rl.config import RecipeError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RecipeError as e:
        print(f"asymptote: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
