"""Time per training step, synchronous against asynchronous (PipelineRL-style), on the tiny demo
recipe with the colocated vLLM engine: recipes/tiny/grpo_math_vllm.yaml (sync) against
recipes/tiny/grpo_math_vllm_async.yaml (async.max_off_policy_steps 1: the engine generates the next
batch while the trainer updates; rl/async_sampler.py).

    python bench/async_step.py [--iterations 8] [--engines vllm,vllm-server,hf] [key.sub=value ...]

`vllm-server` runs the same pair with the rollouts on one vLLM server process the trainer starts
(grpo_math_vllm_server.yaml, grpo_math_vllm_server_async.yaml): generation and training then run in
separate processes, which is where asynchronous training can overlap them.

Each run trains the same model (models/tiny-math, built and warm-started if missing) for one warm-up
iteration and then `--iterations` timed ones, its run directory in a temporary directory; the
overrides apply to every run. `--engines hf` adds a synchronous hf-engine run (async needs a vLLM
engine). Prints per run: mean seconds per iteration, generated tokens per wall second, the mean
time split per iteration (train/time/*: gen and reward are the producer thread's time in the async
run, overlapping the update; wait is the trainer waiting for the next batch) and, for the async
run, the staleness metrics.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing
RUNS = {  # engine -> [(label, recipe)]
    "vllm": [("sync vllm", "grpo_math_vllm.yaml"), ("async vllm k=1", "grpo_math_vllm_async.yaml")],
    "vllm-server": [("sync vllm-server", "grpo_math_vllm_server.yaml"),
                    ("async vllm-server k=1", "grpo_math_vllm_server_async.yaml")],
    "hf": [("sync hf", "grpo_math.yaml")],
}
PHASES = ["gen", "reward", "adv", "update", "sync", "wait"]
STALENESS = ["train/staleness/max", "train/staleness/token_mean", "train/staleness/mixed_frac",
             "train/async/dropped_groups_total", "train/mismatch_kl"]


def run(recipe_file: str, iterations: int, overrides: list[str]) -> tuple[list[dict], float, float]:
    """Rows of the timed iterations, their wall seconds and generated tokens."""
    from rl.config import load_recipe
    from rl.models import build_tiny_model
    from rl.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(
            ROOT / "recipes/tiny" / recipe_file,
            [f"logging.runs_dir={tmp}", "logging.progress=false", "eval.at_start=false", "name=bench",
             "engine.vllm.gpu_memory_utilization=0.1", *overrides],
        )
        if not (Path(recipe.model.path) / "config.json").is_file():
            build_tiny_model(recipe.model.path, seed=recipe.seed)
        trainer = Trainer(recipe)
        try:
            first = trainer.train_iteration()  # warm-up: first-call overheads, the async thread's start
            start = time.perf_counter()
            rows = [trainer.train_iteration() for _ in range(iterations)]
            wall = time.perf_counter() - start
        finally:
            trainer.close()
    return rows, wall, rows[-1]["compute/tokens"] - first["compute/tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=8, help="timed iterations after one warm-up")
    parser.add_argument("--engines", default="vllm", help="comma-separated: vllm, vllm-server (sync and async each), hf (sync)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    import torch

    results = {}
    for engine in args.engines.split(","):
        for label, recipe_file in RUNS[engine]:
            results[label] = run(recipe_file, args.iterations, args.overrides)
            print(f"{label}: done", flush=True)

    print(f"tiny demo recipe, {args.iterations} timed iterations after 1 warm-up, torch threads "
          f"{torch.get_num_threads()}, overrides {args.overrides or 'none'}")
    width = max(len(label) for label in results) + 2
    print(f"{'run':<{width}}{'s/iter':>8}{'gen tok/s':>11}" + "".join(f"{p:>9}" for p in PHASES))
    for label, (rows, wall, tokens) in results.items():
        phases = "".join(f"{statistics.mean(r.get(f'train/time/{p}', 0.0) for r in rows):>9.3f}" for p in PHASES)
        print(f"{label:<{width}}{wall / len(rows):>8.3f}{tokens / wall:>11,.0f}{phases}")
    for label, (rows, _, _) in results.items():
        if "train/staleness/max" in rows[0]:
            print(f"{label} staleness (mean over iterations): "
                  + ", ".join(f"{k.removeprefix('train/')} {statistics.mean(r[k] for r in rows):.3g}"
                              for k in STALENESS if k in rows[0]))


if __name__ == "__main__":
    main()
