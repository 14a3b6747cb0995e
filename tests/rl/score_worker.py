"""Run under torchrun by tests/rl/test_distributed.py: rl.parallel.rollouts.sharded_scorer on 2 CPU
processes; rank 0 writes to OUT (JSON) what each rank scored and whether the gathered result equals
scoring the whole batch on one rank.

    torchrun --nproc_per_node 2 tests/rl/score_worker.py OUT
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from accelerate.utils import gather_object  # noqa: E402

from envs.base import Prompt  # noqa: E402
from rewards import RewardConfig, compute_rewards  # noqa: E402
from rl.config import recipe_from_dict  # noqa: E402
from rl.parallel.exit import end_distributed  # noqa: E402
from rl.parallel.rollouts import sharded_scorer  # noqa: E402
from rl.parallel.strategy import make_accelerator  # noqa: E402


def main(out: str) -> None:
    recipe = recipe_from_dict({"name": "score", "model": {"path": "unused"}, "env": {"name": "math", "dataset": "unused.jsonl"}})
    acc = make_accelerator(recipe)
    cfg = RewardConfig(functions=[{"name": "math_verify"}, {"name": "format", "weight": 0.25}])
    completions = [f"\\boxed{{{i % 4}}}" if i % 3 else f"{i % 4}" for i in range(7)]
    prompts = [Prompt(id=f"p/{i}", messages=({"role": "user", "content": "q"},), answer="2") for i in range(7)]
    seen = []

    def recording(c, p, cfg):
        seen.extend(x.id for x in p)
        return compute_rewards(c, p, cfg)

    result = sharded_scorer(acc, recording)(completions, prompts, cfg)
    whole = compute_rewards(completions, prompts, cfg)
    per_rank = gather_object([seen])
    if acc.is_main_process:
        Path(out).write_text(json.dumps({
            "world": acc.num_processes, "per_rank": per_rank,
            "same": result.total == whole.total and result.per_function == whole.per_function
            and result.metrics == whole.metrics,
            "total": result.total,
        }))
    end_distributed()  # leaves the process (exit code 0) on every rank
    raise SystemExit(3)  # not reached: torchrun would report this rank's exit code 3


if __name__ == "__main__":
    main(sys.argv[1])
