"""Run under torchrun by tests/rl/test_distributed.py: ZeRO-3 or FSDP2 on 2 CPU processes, then
rl.weights.iter_full_params; rank 0 writes what it saw to OUT (JSON).

    torchrun --nproc_per_node 2 tests/rl/sync_worker.py MODEL_DIR BUCKET_BYTES OUT [zero3|fsdp]

With fsdp the weights are gathered twice: as loaded, and after one AdamW step on a batch that
every rank also applies to an unsharded copy of the model (the 1-process model), whose weights
the gathered ones are compared with.
"""

import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rl.config import recipe_from_dict  # noqa: E402
from rl.models import load_model  # noqa: E402
from rl.parallel.exit import end_distributed  # noqa: E402
from rl.parallel.strategy import make_accelerator, prepare_policy, shard_fsdp2  # noqa: E402
from rl.weights import iter_full_params  # noqa: E402


def _sha(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.detach().cpu().numpy().tobytes()).hexdigest()


def main(model_dir: str, bucket_bytes: int, out: str, strategy: str = "zero3") -> None:
    if strategy == "fsdp":
        return fsdp(model_dir, out)
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
        seen[name] = {"shape": list(tensor.shape), "sha": _sha(tensor)}
    partitioned_after = all(p.numel() == 0 for p in params)
    if acc.is_main_process:
        Path(out).write_text(json.dumps({
            "world": acc.num_processes, "params": seen, "max_live_bytes": max_live_bytes,
            "largest_param_bytes": max(p.ds_numel * p.element_size() for p in params),
            "partitioned_before": partitioned_before, "partitioned_after": partitioned_after,
        }))
    acc.wait_for_everyone()


def fsdp(model_dir: str, out: str) -> None:
    from torch.distributed.tensor import DTensor

    recipe = recipe_from_dict({
        "name": "sync", "model": {"path": model_dir}, "env": {"name": "math", "dataset": "unused.jsonl"},
        "distributed": {"strategy": "fsdp"},
    })
    acc = make_accelerator(recipe)
    reference = load_model(model_dir, "float32")  # the 1-process model
    model = shard_fsdp2(load_model(model_dir, "float32"), acc, recipe)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model, optimizer = prepare_policy(acc, recipe, model, optimizer)
    params = list(acc.unwrap_model(model).parameters())

    def sharded() -> bool:  # every parameter a DTensor whose local shard is smaller than the whole
        return all(isinstance(p, DTensor) and p.to_local().numel() < p.numel() for p in params)

    def gather() -> tuple[dict, bool]:
        seen, sharded_throughout = {}, True
        for name, tensor in iter_full_params(model):
            # the model stays sharded: the yielded tensor is the only full one on this rank
            sharded_throughout &= sharded() and not isinstance(tensor, DTensor)
            seen[name] = tensor.clone()
        return seen, sharded_throughout

    sharded_before = sharded()
    loaded, sharded_1 = gather()
    torch.manual_seed(0)
    ids = torch.randint(0, reference.config.vocab_size, (4, 12))
    ref_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3)
    for m, opt in ((model, optimizer), (reference, ref_optimizer)):  # the same full batch on every rank
        m(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    trained, sharded_2 = gather()
    expected = dict(reference.named_parameters())
    if acc.is_main_process:
        Path(out).write_text(json.dumps({
            "world": acc.num_processes,
            "params": {name: {"shape": list(t.shape), "sha": _sha(t)} for name, t in loaded.items()},
            "trained_max_diff": max((t - expected[name]).abs().max().item() for name, t in trained.items()),
            "trained_names": sorted(trained) == sorted(expected),
            "sharded_before": sharded_before, "sharded_while_gathering": sharded_1 and sharded_2,
            "sharded_after": sharded(),
        }))
    acc.wait_for_everyone()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:])
    end_distributed()  # every rank leaves through the process group's teardown
