"""What a run writes: the `logging` section (run directory, samples, progress bar, wandb; rl/logger.py)
and the `checkpoint` section (rl/checkpoint.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from envs.schema import Config


class WandbConfig(Config):
    mode: Literal["disabled", "offline", "online"] = "disabled"
    """offline writes a wandb run inside the run directory, to `wandb sync` later."""
    project: str = "asymptote"
    entity: str | None = None
    group: str | None = None
    """Runs of one sweep or recipe share a group."""


class LoggingConfig(Config):
    runs_dir: str = "runs"
    """The run directory is <runs_dir>/<name>."""
    samples_per_iteration: int = Field(4, ge=0)
    """Prompts/completions/rewards written to samples.jsonl each iteration."""
    progress: bool = True
    """Show a progress bar with the live reward and accuracy."""
    wandb: WandbConfig = WandbConfig()


class CheckpointConfig(Config):
    every: int = Field(50, ge=1)
    """Save every this many iterations (and after the last one)."""
    keep_last: int = Field(2, ge=1)
    """Older checkpoints are deleted once a newer one is complete."""
