"""The `distributed` section: how the trainer is spread over processes (rl/distributed.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from envs.schema import Config


class DistributedConfig(Config):
    """How the trainer is spread over processes (docs/distributed.md). The global batch
    (train.prompts_per_iteration × algorithm.group_size, in train.mini_batches optimizer steps) means
    the same at any world size: each mini-batch's sequences are split evenly over the ranks, and the
    per-token weights are computed over the whole mini-batch before the split."""

    strategy: Literal["ddp", "zero2", "zero3", "fsdp"] = "ddp"
    """ddp: full model and optimizer on every rank, gradients all-reduced (torch DDP).
    zero2: DeepSpeed ZeRO stage 2, optimizer states and gradients partitioned (Rajbhandari et al. 2020).
    zero3: DeepSpeed ZeRO stage 3, parameters partitioned too (gathered per layer in forward/backward).
    fsdp: torch FSDP2 (fully_shard), parameters, gradients and optimizer states sharded."""
    offload: Literal["none", "optimizer", "all"] = "none"
    """ZeRO-Offload / ZeRO-Infinity to CPU memory: optimizer states (zero2, zero3) or also the
    parameters (zero3 only). Slower steps, much less accelerator memory."""
    rollouts: Literal["sharded", "replicated"] = "sharded"
    """sharded: each rank generates its share of the prompts and the completions are gathered on
    every rank before rewards and group advantages. replicated: every rank generates the whole batch
    from the same seed (world-size-independent samples: 1 and N processes train on the same rollouts,
    the equivalence the tests check; N times the generation work)."""
    @model_validator(mode="after")
    def _offload_fits_strategy(self) -> "DistributedConfig":
        allowed = {"ddp": ("none",), "fsdp": ("none",), "zero2": ("none", "optimizer"), "zero3": ("none", "optimizer", "all")}
        if self.offload not in allowed[self.strategy]:
            raise ValueError(f"offload '{self.offload}' is not available with strategy '{self.strategy}'; "
                             f"allowed: {', '.join(allowed[self.strategy])}")
        return self
