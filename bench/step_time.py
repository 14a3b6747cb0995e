"""Time split of one training iteration of the tiny demo recipe (generation, reward, forward/backward,
optimizer), averaged over a few iterations after a warm-up one.

    python bench/step_time.py [--iterations 10] [key.sub=value ...]
    torchrun --nproc_per_node 8 bench/step_time.py distributed.strategy=zero3 ...   (N processes)

Uses the demo's model (models/tiny-math, built if missing; the warm start is cached there) and writes
its run into a temporary directory. Prints one row per phase: mean seconds per iteration and share.
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
PHASES = ["gen", "reward", "adv", "forward_backward", "optimizer", "sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    import torch

    from rl.config import load_recipe
    from rl.models import build_tiny_model
    from rl.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(
            ROOT / "recipes/tiny/grpo_math.yaml",
            [f"logging.runs_dir={tmp}", "logging.progress=false", "eval.at_start=false", "name=bench", *args.overrides],
        )
        if not (Path(recipe.model.path) / "config.json").is_file():
            build_tiny_model(recipe.model.path, seed=recipe.seed)
        trainer = Trainer(recipe)
        trainer.train_iteration()  # warm-up: first-call overheads
        rows = []
        start = time.perf_counter()
        for _ in range(args.iterations):
            rows.append(trainer.train_iteration())
        wall = time.perf_counter() - start
        peaks = None
        if torch.cuda.is_available():  # peak memory per device (GiB), every rank's
            from accelerate.utils import gather_object

            peaks = gather_object([torch.cuda.max_memory_allocated() / 2**30])
        trainer.close()
        if not trainer.accelerator.is_main_process:  # every rank ran the iterations; one reports
            return

    total = statistics.mean(r["train/time/iteration"] for r in rows)
    print(f"{recipe.name}, {args.iterations} iterations, {trainer.accelerator.num_processes} process(es), "
          f"strategy {recipe.distributed.strategy}, {recipe.model.dtype}, torch threads={torch.get_num_threads()}")
    print(f"batch: {recipe.train.prompts_per_iteration} prompts x {recipe.algorithm.group_size} samples, "
          f"max_new_tokens={recipe.engine.max_new_tokens}, non-embedding params={trainer.n_params:,}")
    print(f"{'phase':<18}{'s/iter':>10}{'share':>9}")
    for phase in PHASES:
        t = statistics.mean(r.get(f"train/time/{phase}", 0.0) for r in rows)
        print(f"{phase:<18}{t:>10.4f}{t / total:>9.1%}")
    other = total - sum(statistics.mean(r.get(f"train/time/{p}", 0.0) for r in rows) for p in PHASES)
    print(f"{'other':<18}{other:>10.4f}{other / total:>9.1%}")
    print(f"{'iteration':<18}{total:>10.4f}{1:>9.0%}")
    gen_tokens = sum(r["train/response_length/mean"] * recipe.train.prompts_per_iteration * recipe.algorithm.group_size
                     for r in rows)
    trained = sum(r["train/trained_tokens"] for r in rows)
    print(f"generated tokens/s: {gen_tokens / sum(r['train/time/gen'] for r in rows):,.0f}   "
          f"trained tokens/s: {trained / sum(r['train/time/forward_backward'] for r in rows):,.0f}   "
          f"wall {wall:.1f}s")
    if peaks is not None:
        print(f"peak GPU memory allocated per device (GiB, by rank): {', '.join(f'{m:.1f}' for m in peaks)} "
              f"on {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
    from rl.parallel.exit import end_distributed

    end_distributed()  # under torchrun: every rank leaves through the process group's teardown
