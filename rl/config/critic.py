"""PPO's critic config (`algorithm.critic`). The value model, its loss and optimizer are in
rl/critic.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from envs.schema import Config


class CriticConfig(Config):
    """The critic of PPO (`advantage: {name: gae}`), with its own optimizer settings."""

    model: Literal["separate", "value_head"] = "separate"
    """separate: a transformer of its own (initialised from `path`) with a fresh linear head, as in
    verl, OpenRLHF and TRL's PPO. value_head: a linear head on the policy's last hidden state; the
    value loss (times `coef`) then also trains the shared trunk, through the policy's optimizer."""
    path: str | None = None
    """The separate critic's initial weights (a causal LM or base model directory, or a hub id); None: the
    policy's starting weights (after the warm start, if any)."""
    lr: float = Field(1e-5, gt=0.0)
    """The critic's learning rate. verl's critic default 1e-5 (policy 1e-6): critics learn faster."""
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    """Clip the critic's gradient norm; None disables clipping."""
    value_clip: float | None = Field(0.2, gt=0.0)
    """c of the clipped value loss: V is kept within c of its value at sampling time. 0.2 in TRL's
    PPO (cliprange_value), 0.5 in verl; None: plain squared error."""
    coef: float = Field(0.1, gt=0.0)
    """Weight of the value loss in the shared loss (value_head only; TRL's vf_coef 0.1). A separate
    critic minimises its own value loss with weight 1."""
