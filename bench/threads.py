"""Seconds per training iteration against torch's thread count, alone and beside one busy process.

    python bench/threads.py [--iterations 8] [--threads 1,2] [--neighbour spin|torch] [key.sub=value ...]

Each configuration runs in a fresh process (torch's thread pool is set once per process): the demo
recipe (recipes/tiny/demo.yaml, its model and cached warm start), one warm-up iteration, then
--iterations timed ones, with `resources.cpu_threads` = N. "busy neighbour" runs the same beside one
other process that is busy the whole time: `spin`, a pure-Python loop on one core (a data loader,
an editor's indexer), or `torch`, a process multiplying matrices with torch's default thread pool
(another training run on the machine). Prints s/iteration and the slowdown that the neighbour
causes; rl/threads.py chooses the default from these figures (bench/README.md, "Threads").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NEIGHBOURS = {
    "spin": "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n",
    "torch": ("import time, torch\na = torch.randn(256, 256)\nend = time.time() + 3600\n"
              "while time.time() < end:\n    a = torch.tanh(a @ a)\n"),
}


def child(threads: int, iterations: int, overrides: list[str]) -> None:
    """One configuration, in this process: print a JSON line of per-iteration seconds."""
    import tempfile

    from launch.demo import DEMO_MODEL, DEMO_RECIPE
    from rl.config import load_recipe
    from rl.models import build_tiny_model
    from rl.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(DEMO_RECIPE,
                             [f"logging.runs_dir={tmp}", "logging.progress=false", "eval.at_start=false", "name=bench",
                              f"resources.cpu_threads={threads}", *overrides])
        if not (Path(recipe.model.path) / "config.json").is_file():
            build_tiny_model(recipe.model.path, seed=recipe.seed, **DEMO_MODEL)
        trainer = Trainer(recipe)
        trainer.train_iteration()
        times = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            trainer.train_iteration()
            times.append(time.perf_counter() - t0)
        trainer.close()
    print("RESULT " + json.dumps({"threads": threads, "times": times}), flush=True)


def measure(threads: int, iterations: int, overrides: list[str], neighbour: str | None) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    spinner = subprocess.Popen([sys.executable, "-c", NEIGHBOURS[neighbour]], env=env) if neighbour else None
    try:
        out = subprocess.run([sys.executable, __file__, "--child", str(threads), "--iterations", str(iterations),
                              *overrides], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))["times"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--threads", default=None, help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--neighbour", choices=sorted(NEIGHBOURS), default="spin",
                   help="what the busy neighbour does (default: %(default)s)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    if args.child is not None:
        child(args.child, args.iterations, args.overrides)
        return
    from rl.threads import auto_threads, available_cores

    cores = available_cores()
    counts = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    print(f"demo recipe, {args.iterations} timed iterations after 1 warm-up, {cores} cores available, "
          f"auto choice: {auto_threads()} thread(s), neighbour: {args.neighbour}; overrides {args.overrides or 'none'}")
    print(f"{'threads':>7}  {'alone s/iter':>12}  {'busy neighbour s/iter':>21}  {'slowdown':>8}  {'worst iter':>10}")
    for n in counts:
        alone = measure(n, args.iterations, args.overrides, None)
        busy = measure(n, args.iterations, args.overrides, args.neighbour)
        a, b = statistics.median(alone), statistics.median(busy)
        print(f"{n:>7}  {a:>12.2f}  {b:>21.2f}  {b / a:>7.1f}x  {max(busy):>9.2f}s", flush=True)


if __name__ == "__main__":
    main()
