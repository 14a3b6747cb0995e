"""The trainer: config, loop, losses, advantages, filters, rollout engines, checkpointing, logging."""
