"""Run under torchrun by tests/rl/test_distributed.py: ZeRO-3 on 2 CPU processes, then
rl.distributed.iter_full_params; rank 0 writes what it saw to OUT (JSON).

    torchrun --nproc_per_node 2 tests/rl/sync_worker.py MODEL_DIR BUCKET_BYTES OUT
"""

import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rl.config import recipe_from_dict  # noqa: E402
from rl.distributed import iter_full_params, make_accelerator  # noqa: E402
from rl.models import load_model  # noqa: E402


def main(model_dir: str, bucket_bytes: int, out: str) -> None:
    recipe = recipe_from_dict({
        "name": "sync", "model": {"path": model_dir}, "env": {"name": "math", "dataset": "unused.jsonl"},
        "distributed": {"strategy": "zero3"},
    })
    acc = make_accelerator(recipe)
    model = load_model(model_dir, "float32")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = acc.prepare(model, optimizer)
    module = acc.unwrap_model(model)
    params = list(module.parameters())
    # partitioned: each rank holds a shard, the module's tensors are empty placeholders
    partitioned_before = all(p.numel() == 0 for p in params)

    seen, max_live_bytes = {}, 0
    for name, tensor in iter_full_params(model, bucket_bytes):
        live = sum(p.ds_numel * p.element_size() for p in params if p.numel() > 0)  # gathered right now
        max_live_bytes = max(max_live_bytes, live)
        seen[name] = {"shape": list(tensor.shape), "sha": hashlib.sha256(tensor.detach().cpu().numpy().tobytes()).hexdigest()}
    partitioned_after = all(p.numel() == 0 for p in params)
    if acc.is_main_process:
        Path(out).write_text(json.dumps({
            "world": acc.num_processes, "params": seen, "max_live_bytes": max_live_bytes,
            "largest_param_bytes": max(p.ds_numel * p.element_size() for p in params),
            "partitioned_before": partitioned_before, "partitioned_after": partitioned_after,
        }))
    acc.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
