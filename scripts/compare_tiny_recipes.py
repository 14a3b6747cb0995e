"""Run the tiny CPU variant of every baseline recipe at an equal compute budget, print a table, and
hand the runs to `asymptote compare` for fitted asymptotes.

    python scripts/compare_tiny_recipes.py                       # all ten, 60 GRPO iterations' worth of FLOPs each
    python scripts/compare_tiny_recipes.py --iterations 10 --recipes grpo,cispo,ppo   # a quick check

The budget is the FLOPs (compute/flops: generation, training and forward-only passes) that the GRPO
baseline spends in --iterations iterations; every other recipe runs until it has spent as much
(train.flops_budget), however many iterations that takes. Runs go to --runs-dir; rerunning
continues unfinished runs from their checkpoints and reuses finished ones (--fresh starts over).
The curves are compared against compute/flops, not device-hours: on a shared CPU box wall time is noise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECIPES = ["grpo", "dr_grpo", "dapo", "gspo", "cispo", "clip_cov", "kl_cov", "ppo", "scalerl", "sapo"]


def run(name: str, overrides: list[str], fresh: bool) -> Path:
    from rl.config import load_recipe
    from rl.trainer import train

    recipe = load_recipe(ROOT / "recipes" / "tiny" / f"{name}.yaml", overrides)
    if fresh and recipe.run_dir.exists():
        shutil.rmtree(recipe.run_dir)
    if (recipe.run_dir / "final_model").is_dir():
        print(f"[compare] {recipe.name}: finished run found in {recipe.run_dir}, reused")
        return recipe.run_dir
    print(f"[compare] {recipe.name}: training")
    return train(recipe, resume=recipe.run_dir.exists())


def summary(run_dir: Path) -> dict:
    from rl.logger import read_jsonl

    lines = read_jsonl(run_dir / "metrics.jsonl")
    evals = [m for m in lines if m.get("val/accuracy") is not None]
    trained = [m for m in lines if "train/entropy" in m]
    seconds = sum(m.get("train/time/iteration", 0.0) for m in lines)
    last = lines[-1]
    return {
        "iterations": last["iteration"],
        "start": evals[0]["val/accuracy"],
        "final": evals[-1]["val/accuracy"],
        "best": max(m["val/accuracy"] for m in evals),
        "entropy": trained[-1]["train/entropy"] if trained else float("nan"),
        "tokens_per_s": last["compute/tokens"] / seconds if seconds else float("nan"),
        "flops": last["compute/flops"],
        "minutes": seconds / 60,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=60, help="GRPO iterations that set the FLOP budget")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated tiny recipes (grpo always runs)")
    parser.add_argument("--runs-dir", default="runs/compare-tiny")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="delete existing runs first")
    args = parser.parse_args(argv)

    from launch.cli import main as asymptote
    from rl.logger import read_jsonl
    from rl.models import build_tiny_model

    model_dir = ROOT / "models" / "tiny-math"
    if not (model_dir / "config.json").is_file():
        build_tiny_model(model_dir, seed=0)
    names = [n for n in args.recipes.split(",") if n]
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipes {unknown}; allowed: {', '.join(RECIPES)}")
    common = [f"logging.runs_dir={args.runs_dir}", "logging.progress=false", f"eval.every={args.eval_every}",
              f"seed={args.seed}", f"model.path={model_dir}"]

    # the baseline sets the budget: the FLOPs GRPO spends in --iterations iterations
    baseline = run("grpo", common + [f"train.iterations={args.iterations}"], args.fresh)
    budget = read_jsonl(baseline / "metrics.jsonl")[-1]["compute/flops"]
    run_dirs = {"grpo": baseline}
    for name in names:
        if name != "grpo":  # at most 20x the baseline's iterations: a cap, the budget stops them first
            run_dirs[name] = run(name, common + [f"train.flops_budget={budget}", f"train.iterations={20 * args.iterations}"],
                                 args.fresh)

    print(f"\nTiny recipes at an equal budget of {budget:.3g} FLOPs ({args.iterations} GRPO iterations), seed {args.seed}\n")
    header = f"{'recipe':<10} {'iters':>5} {'val/acc start':>13} {'final':>6} {'best':>6} {'entropy':>8} {'tokens/s':>9} {'minutes':>8}"
    print(header)
    print("-" * len(header))
    for name, run_dir in run_dirs.items():
        s = summary(run_dir)
        print(f"{name:<10} {s['iterations']:>5} {s['start']:>13.3f} {s['final']:>6.3f} {s['best']:>6.3f} "
              f"{s['entropy']:>8.3f} {s['tokens_per_s']:>9.0f} {s['minutes']:>8.1f}")
    print("\nval/acc: mean verifiable reward over the held-out prompts (k samples each); entropy: the last "
          "iteration's mean token entropy; tokens/s: generated tokens per second of training wall time.\n")
    return asymptote(["compare", *map(str, run_dirs.values()), "--x", "compute/flops", "--baseline", "tiny-grpo",
                      "--out", str(Path(args.runs_dir) / "analysis")])


if __name__ == "__main__":
    sys.exit(main())
