"""Numerics: truncated importance sampling between the engine's and the trainer's log-probs.

Inference engines (vLLM, SGLang, or the same model in another precision) do not reproduce the
trainer's probabilities exactly, so "on-policy" samples are slightly off-policy. Truncated
importance sampling (Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy
RL Training") reweights each token's loss by the capped ratio of the two.

The other numerics switch, computing the LM head in FP32 while the model runs in bf16
(MiniMax-M1 §3.1, ScaleRL §3.2), is `model.fp32_lm_head`, applied when the model loads
(rl/models.py: `use_fp32_lm_head`).
"""

from __future__ import annotations

import torch

from rl.config.numerics import TISConfig


def tis_weights(trainer_logp: torch.Tensor, engine_logp: torch.Tensor, mask: torch.Tensor, cfg: TISConfig):
    """Per-token weights w = min(exp(log π_old − log π_engine), C) [B, T] (no gradient; 1 off the
    mask), where π_old is the trainer's log-prob of the sampling policy, and their metrics."""
    ratio = torch.exp(trainer_logp.detach() - engine_logp)
    w = torch.where(mask > 0, torch.clamp(ratio, max=cfg.cap), torch.ones_like(ratio))
    n = mask.sum().clamp(min=1)
    metrics = {
        "tis/weight_mean": ((w * mask).sum() / n).item(),
        "tis/capped_frac": (((ratio > cfg.cap) & (mask > 0)).float().sum() / n).item(),
        "tis/ratio_mean": ((ratio * mask).sum() / n).item(),
    }
    return w, metrics
