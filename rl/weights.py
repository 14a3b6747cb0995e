"""The full weights of a training model, bucket by bucket, as a rollout engine loads them: gathered
from their shards (DeepSpeed ZeRO-3, FSDP2), LoRA adapters merged into their base weights, under the
Hugging Face checkpoint's names. The vLLM engines (rl/rollout/) load or push these buckets; the
trainer's ranks walk the same buckets beside them (rl.parallel.rollouts.MainProcessEngine) and
final_model of a LoRA run is their merge (merged_state_dict).

Imports torch and rl.lora only (deepspeed when a model is partitioned), so the engines and the
trainer's parallel layer both use it without importing each other.
"""

from __future__ import annotations

from typing import Iterator

import torch

from rl.lora import is_lora_param, lora_layers, merged_weight


def full_param_buckets(model: torch.nn.Module, bucket_bytes: int = 256 * 2**20) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """The parameters of `model` (unwrapped, or wrapped by DDP/DeepSpeed/FSDP) as buckets of
    (name, full tensor) of at most `bucket_bytes` each (a parameter larger than that goes alone),
    for a rollout engine's weight load: vLLM's load_weights, or a push to vLLM servers. Names are
    the Hugging Face checkpoint's (wrapper prefixes off).

    Sharded parameters are gathered one bucket at a time: under DeepSpeed ZeRO-3 with
    `GatheredParameters` and released when the generator advances, so a rank never holds more than
    one bucket beyond its shard; under FSDP2 each DTensor is materialised with `full_tensor()`.
    A yielded bucket is valid until the generator advances: consume (load, send or copy) it first.
    The gathers are collective: every rank must iterate to the end, ranks whose engine does not
    take the weights included (they discard the buckets)."""
    # with LoRA (rl/lora.py) the adapters are merged into their base weights here; the adapters' own
    # parameters are not the engines' (LoRA is refused with ZeRO-3/FSDP at recipe load)
    lora = lora_layers(model)
    named = [(hf_name(n), p) for n, p in model.named_parameters() if not is_lora_param(n)]
    zero3 = any(hasattr(p, "ds_id") for _, p in named)
    size = (lambda p: p.ds_numel * p.element_size()) if zero3 else (lambda p: p.numel() * p.element_size())
    for bucket in _buckets(named, bucket_bytes, size):
        if zero3:
            import deepspeed

            with deepspeed.zero.GatheredParameters([p for _, p in bucket], modifier_rank=None):
                yield [(name, p.data) for name, p in bucket]
        else:
            yield [(name, merged_weight(lora[id(p)], p.data) if id(p) in lora else _full(p.data)) for name, p in bucket]


def weight_buckets(model: torch.nn.Module, bucket_mb: float = 256.0) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """full_param_buckets in buckets of at most `bucket_mb` MB (engine.vllm.bucket_mb): what the vLLM
    engines load or push, and what the other ranks walk beside them (the same buckets, so the same
    collective gathers)."""
    return full_param_buckets(model, int(bucket_mb * 2**20))


def iter_full_params(model: torch.nn.Module, bucket_bytes: int = 256 * 2**20) -> Iterator[tuple[str, torch.Tensor]]:
    """full_param_buckets, one (name, full tensor) at a time (same lifetime and collective rules)."""
    for bucket in full_param_buckets(model, bucket_bytes):
        yield from bucket


def merged_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights with the adapters merged, under the base model's own names: what
    final_model holds, loadable without peft."""
    return {name: t.detach().clone() for name, t in iter_full_params(model)}


def _full(t: torch.Tensor) -> torch.Tensor:
    full_tensor = getattr(t, "full_tensor", None)  # FSDP2 DTensor shard -> all-gather
    return full_tensor() if full_tensor is not None else t


def hf_name(name: str) -> str:
    """A parameter's name as the Hugging Face checkpoint has it (DDP's `module.`, FSDP's and
    activation checkpointing's wrapper prefixes off; peft's `base_model.model.` and `.base_layer`)."""
    for prefix in ("module.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module."):
        name = name.replace(prefix, "")
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    return name.replace(".base_layer.", ".")


def _buckets(named: list[tuple[str, torch.nn.Parameter]], bucket_bytes: int, size) -> Iterator[list]:
    bucket, used = [], 0
    for name, p in named:
        n = size(p)
        if bucket and used + n > bucket_bytes:
            yield bucket
            bucket, used = [], 0
        bucket.append((name, p))
        used += n
    if bucket:
        yield bucket
