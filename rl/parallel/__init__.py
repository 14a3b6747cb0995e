"""The trainer on N processes (accelerate): one module per concern, imported from where it is.

    strategy   the Accelerator a recipe's distributed.strategy names (DDP, DeepSpeed ZeRO-2/3,
               FSDP2), the policy and frozen reference prepared under it, the full state dict
    checks     what the global batch and the engine topology must satisfy on N processes
    rollouts   generation sharded over ranks and gathered (or on the main process and
               broadcast), scoring sharded over ranks (rewards.sharding)
    loss       mini-batches split over ranks, backward under DeepSpeed, sharded forward passes
    exit       end_distributed, the last call of a torchrun entry point

Metrics are reduced over ranks beside their accumulator (rl.logger.reduce_metrics); full weights
for the rollout engines are gathered bucket by bucket in rl.weights, which the engines import too.

The global batch is the recipe's: prompts_per_iteration × group_size completions, mini_batches
optimizer steps per epoch. Every rank holds the whole batch after generation (rollouts are
gathered, so group advantages see whole groups); for the loss, each mini-batch's sequences are split
evenly over the ranks and the per-token weights, computed over the whole mini-batch, sum to 1 over
all ranks.

Launched by torchrun (or `asymptote launch`), which sets RANK/WORLD_SIZE/MASTER_ADDR; on a machine
without a GPU the processes talk over gloo and DeepSpeed uses its CPU accelerator (FSDP2 on CPU:
rl.parallel.strategy).
"""
