"""rewards/sharding.py: scoring a share per rank, with the ranks simulated by threads (the real
thing on 2 processes: tests/rl/test_distributed.py::test_rewards_are_scored_a_share_per_rank)."""

import subprocess
import sys
import threading
from pathlib import Path

from envs.base import Prompt
from rewards import RewardConfig, compute_rewards
from rewards.sharding import shard_scorer

ROOT = Path(__file__).resolve().parents[2]


def test_each_rank_scores_its_share_and_every_rank_gets_the_whole_batch():
    world, n = 3, 7
    cfg = RewardConfig(functions=[{"name": "math_verify"}, {"name": "format", "weight": 0.25}])
    completions = [f"\\boxed{{{i % 4}}}" if i % 3 else f"{i % 4}" for i in range(n)]
    prompts = [Prompt(id=f"p/{i}", messages=({"role": "user", "content": "q"},), answer="2") for i in range(n)]
    slots, barrier = [None] * world, threading.Barrier(world)
    seen, results = [[] for _ in range(world)], [None] * world

    def rank(r: int) -> None:
        def gather(objects: list) -> list:  # accelerate's gather_object, between threads
            slots[r] = objects[0]
            barrier.wait()
            return list(slots)

        def score(c, p, cfg):
            seen[r].extend(x.id for x in p)
            return compute_rewards(c, p, cfg)

        results[r] = shard_scorer(r, world, gather, score)(completions, prompts, cfg)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert seen == [["p/0", "p/1", "p/2"], ["p/3", "p/4"], ["p/5", "p/6"]]
    whole = compute_rewards(completions, prompts, cfg)
    for result in results:
        assert (result.total, result.per_function, result.metrics) == (whole.total, whole.per_function, whole.metrics)


def test_one_rank_scores_with_the_scorer_itself():
    assert shard_scorer(0, 1, lambda objects: objects) is compute_rewards


def test_sharding_imports_without_the_training_stack():
    code = "import sys, rewards.sharding; print(sorted(m for m in ('torch', 'accelerate') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
