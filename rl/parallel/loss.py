"""The loss on N processes: each mini-batch's sequences split evenly over the ranks, the same number
of micro-batches on every rank, and forward-only passes (reference, old log-probs, values) sharded
and gathered.

The per-token weights, computed over the whole mini-batch, sum to 1 over all ranks. The trainer
multiplies the loss by the world size because DDP and DeepSpeed average gradients over ranks; the
sum is what the weights mean.
"""

from __future__ import annotations

import math

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType

from rewards.sharding import shard_bounds


def backward(accelerator: Accelerator, model, loss: torch.Tensor, last: bool) -> None:
    """Backward of one micro-batch. DeepSpeed is told which backward ends the mini-batch: its
    gradient reduction and its step (with clipping) happen there, and optimizer.step() is a no-op."""
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        model.set_gradient_accumulation_boundary(last)
        model.backward(loss)
        if last:
            model.step()
    else:
        accelerator.backward(loss)


def rank_micro_batches(n: int, rank: int, world: int, micro_batch_size: int) -> list[torch.Tensor]:
    """Row indices of this rank's micro-batches of a mini-batch of n rows. Every rank gets the same
    number of micro-batches (DDP and ZeRO collectives run per backward/forward); a rank whose share
    runs out gets an empty index tensor, which the trainer replaces by a zero-weight row."""
    lo, hi = shard_bounds(n, rank, world)
    most = math.ceil(n / world)
    count = max(1, math.ceil(most / micro_batch_size))
    mine = torch.arange(lo, hi)
    return [mine[i * micro_batch_size : (i + 1) * micro_batch_size] for i in range(count)]


def sharded_forward(accelerator: Accelerator, batch, run):
    """A forward-only pass split over the ranks: `run(sub_batch) -> (logp | None, values | None,
    tokens)` on this rank's share of the batch's rows, padded with copies of row 0 to the largest
    share (every rank runs the same forwards: ZeRO-3 gathers and DDP syncs buffers per forward);
    the shares are gathered into [B, T] tensors on every rank. Returns what `run(batch)` would."""
    n, rank, world = len(batch), accelerator.process_index, accelerator.num_processes
    if world == 1:
        return run(batch)
    from accelerate.utils import gather_object

    lo, hi = shard_bounds(n, rank, world)
    most = math.ceil(n / world)
    logp, values, _ = run(batch.select(list(range(lo, hi)) + [0] * (most - (hi - lo))))
    real = hi - lo
    tokens = sum(len(batch.prompt_ids[i]) + len(batch.completion_ids[i]) for i in range(lo, hi))
    cut = lambda t: None if t is None else t[:real]  # noqa: E731
    full_logp = torch.zeros_like(batch.mask) if logp is not None else None
    full_values = torch.zeros_like(batch.mask) if values is not None else None
    total = 0
    for r_lo, r_hi, r_logp, r_values, r_tokens in gather_object([(lo, hi, cut(logp), cut(values), tokens)]):
        for full, part in ((full_logp, r_logp), (full_values, r_values)):
            if full is not None and r_hi > r_lo:
                full[r_lo:r_hi, : part.shape[1]] = part
        total += r_tokens
    return full_logp, full_values, total
