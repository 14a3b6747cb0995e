"""The `train`, `optimizer` and `eval` sections: the shape of an iteration, the optimizer and its
schedule, and the held-out evaluation (run by rl/trainer.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from envs.schema import Config, KeyedValueError


class TrainConfig(Config):
    """The shape of one iteration: sample a batch of rollouts, then take optimizer steps on it."""

    iterations: int = Field(100, ge=1)
    """Rollout batches to collect and train on."""
    prompts_per_iteration: int = Field(16, ge=1)
    """Prompts per batch; the batch has prompts_per_iteration × group_size completions."""
    mini_batches: int = Field(1, ge=1)
    """Optimizer steps per pass over the batch (the batch is split into this many mini-batches, by
    whole groups). 1 is on-policy GRPO."""
    epochs: int = Field(1, ge=1)
    """Passes over each batch (PPO epochs)."""
    micro_batch_size: int = Field(64, ge=1)
    """Sequences per forward/backward; gradients accumulate over the mini-batch (no effect on the math)."""
    flops_budget: float | None = Field(None, gt=0.0)
    """Stop once compute/flops reaches this (after the iteration that crosses it), even before
    `iterations`: compares recipes at an equal compute budget. None: run all iterations."""

    @model_validator(mode="after")
    def _minibatches_divide_prompts(self) -> "TrainConfig":
        if self.prompts_per_iteration % self.mini_batches:
            raise KeyedValueError(("mini_batches", "prompts_per_iteration"), (
                f"mini_batches ({self.mini_batches}) must divide prompts_per_iteration ({self.prompts_per_iteration}): "
                "mini-batches are made of whole groups"
            ))
        return self


class OptimizerConfig(Config):
    """AdamW with a learning-rate schedule (transformers' get_scheduler)."""

    lr: float = Field(1e-6, gt=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up over this many optimizer steps."""
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    """Decay after warm-up, over all optimizer steps of the run."""
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    """Clip the global gradient norm; None disables clipping (the norm is still logged)."""


class EvalConfig(Config):
    """ScaleRL's y-axis: mean over held-out prompts of the mean verifiable reward of k samples."""

    every: int = Field(10, ge=1)
    """Evaluate every this many iterations (and after the last one)."""
    at_start: bool = True
    """Also evaluate before the first iteration (the starting point of the curve)."""
    num_prompts: int | None = Field(None, ge=1)
    """How many of the environment's validation prompts to use; None uses all."""
    k: int = Field(4, ge=1)
    """Samples per prompt."""
    temperature: float | None = Field(None, gt=0.0)
    """None samples at the engine's training temperature."""
    predict_asymptote: bool = True
    """Refit ScaleRL's sigmoid to val/accuracy against compute/flops at each eval and log
    pred/asymptote with its interval (pred/asymptote_low, pred/asymptote_high) once there are
    enough evals (analysis.live.LivePredictor). FLOPs, not device-hours: wall time depends on the
    machine's load, and a sweep's early stopping reads this prediction."""
    prior: str | None = None
    """A prior learned from finished runs (`asymptote prior build RUN... -o prior.json`): the live
    prediction then fits the creep law under it (analysis/prior.py), which names a ceiling from far
    fewer evals, and a sweep's early stopping reads that. None fits ScaleRL's sigmoid alone."""

    @field_validator("prior")
    @classmethod
    def _prior_file(cls, path: str | None) -> str | None:
        if path is None:
            return path
        import json
        from pathlib import Path

        try:
            schema = json.loads(Path(path).read_text()).get("schema", "")
        except FileNotFoundError:
            raise ValueError(f"prior file {path} does not exist; build one with `asymptote prior build RUN... "
                             "-o prior.json`") from None
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            raise ValueError(f"prior file {path} is not a JSON prior (asymptote prior build writes one)") from None
        if not str(schema).startswith("asymptote.prior/"):
            raise ValueError(f"{path} is not an Asymptote prior (schema {schema!r}); build one with "
                             "`asymptote prior build`")
        return path
