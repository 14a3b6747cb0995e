"""Policy losses, loss aggregation and the KL / entropy terms, as pure functions over tensors.

A policy loss has one signature:

    loss_fn(logp, old_logp, advantages, mask, cfg) -> (per_token_loss, metrics)

with `logp` the current policy's log-probs of the sampled tokens [B, T] (with grad), `old_logp`
those of the policy that sampled them [B, T] (no grad), `advantages` [B, T], `mask` [B, T] (1 on
completion tokens), `cfg` the loss's own small config. It returns the per-token loss [B, T] and a
dict of scalar metrics (masked means over this micro-batch).

How per-token losses become one number is a separate choice, the aggregation (`AGGREGATIONS`). It is
written as per-token *weights* computed once over the whole mini-batch, so that

    loss = sum(per_token_loss * weights)

is the same number whether the mini-batch is processed whole, in micro-batches (gradient
accumulation) or across ranks: each part adds its own sum, nothing is averaged twice.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over positions where `mask` is 1 (0 if the mask is empty)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


# --------------------------------------------------------------------------------------------
# Policy losses
# --------------------------------------------------------------------------------------------


class PPOClipConfig(_Config):
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7) with decoupled clip bounds."""

    name: Literal["ppo_clip"] = "ppo_clip"
    clip_low: float = Field(0.2, gt=0.0, lt=1.0)
    """ε_low: the ratio is clipped below at 1 − ε_low. 0.2 in PPO."""
    clip_high: float = Field(0.2, gt=0.0)
    """ε_high: the ratio is clipped above at 1 + ε_high. 0.2 in PPO; DAPO's clip-higher uses 0.28."""
    dual_clip: float | None = Field(None, gt=1.0)
    """Dual-clip constant c (Ye et al. 2020, "Mastering Complex Control in MOBA Games"): for negative
    advantages the loss is bounded by −c·A, so a huge ratio cannot blow up the update. Typical 3.0;
    None disables it."""


def ppo_clip(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cfg: PPOClipConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L = max(−A·r, −A·clip(r, 1 − ε_low, 1 + ε_high)),  r = exp(logp − old_logp)."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    pg_loss = torch.maximum(pg_loss1, pg_loss2)
    if cfg.dual_clip is not None:
        pg_loss3 = -advantages * cfg.dual_clip
        pg_loss = torch.where(advantages < 0, torch.minimum(pg_loss, pg_loss3), pg_loss)

    with torch.no_grad():
        clipped_low = (ratio < 1.0 - cfg.clip_low) & (advantages < 0)
        clipped_high = (ratio > 1.0 + cfg.clip_high) & (advantages > 0)
        metrics = {
            "clip_frac_low": masked_mean(clipped_low.float(), mask).item(),
            "clip_frac_high": masked_mean(clipped_high.float(), mask).item(),
            "ratio_mean": masked_mean(ratio, mask).item(),
            "ratio_max": (ratio * mask).max().item() if mask.any() else 1.0,
            # k3 estimate of KL(old || new), Schulman's "approximating KL divergence".
            "approx_kl": masked_mean(ratio - 1.0 - log_ratio, mask).item(),
        }
    return pg_loss, metrics


LossConfig = PPOClipConfig
LOSSES = {"ppo_clip": ppo_clip}


# --------------------------------------------------------------------------------------------
# Aggregation: per-token weights over the whole mini-batch
# --------------------------------------------------------------------------------------------


class AggregationConfig(_Config):
    """How per-token losses are averaged (see "Understanding R1-Zero-Like Training", Dr. GRPO, and
    DAPO §3.3 on why the choice matters for long completions)."""

    name: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "prompt_mean"] = "token_mean"
    """token_mean: every token of the batch counts the same (DAPO). seq_mean_token_mean: mean over
    each completion, then over completions (original GRPO). seq_mean_token_sum_norm: token sum of each
    completion divided by a constant, mean over completions (Dr. GRPO). prompt_mean: token mean within
    each prompt's group, then mean over prompts (ScaleRL's prompt-level averaging)."""
    norm_length: int | None = Field(None, gt=0)
    """The constant of seq_mean_token_sum_norm (Dr. GRPO uses the generation budget); None means the
    engine's max_new_tokens."""


def aggregation_weights(
    mask: torch.Tensor, group_ids: torch.Tensor, cfg: AggregationConfig, norm_length: int
) -> torch.Tensor:
    """Per-token weights [B, T] such that sum(per_token_loss * weights) is the aggregated loss.

    `mask` [B, T] marks completion tokens, `group_ids` [B] the prompt each completion answers,
    `norm_length` the constant used by seq_mean_token_sum_norm when cfg.norm_length is None."""
    mask = mask.float()
    lengths = mask.sum(dim=1, keepdim=True)  # [B, 1]
    num_seqs = mask.shape[0]
    if cfg.name == "token_mean":
        return mask / mask.sum().clamp(min=1)
    if cfg.name == "seq_mean_token_mean":
        return mask / lengths.clamp(min=1) / num_seqs
    if cfg.name == "seq_mean_token_sum_norm":
        return mask / float(cfg.norm_length or norm_length) / num_seqs
    # prompt_mean
    _, group_index = torch.unique(group_ids, return_inverse=True)
    num_groups = int(group_index.max().item()) + 1
    group_tokens = torch.zeros(num_groups, dtype=mask.dtype).index_add_(0, group_index, lengths.squeeze(1))
    return mask / group_tokens[group_index].clamp(min=1).unsqueeze(1) / num_groups


# --------------------------------------------------------------------------------------------
# Regularisers
# --------------------------------------------------------------------------------------------


class KLConfig(_Config):
    """A KL penalty towards the reference (initial) policy."""

    coef: float = Field(0.0, ge=0.0)
    """β. 0 disables the term and no reference model is loaded (DAPO and ScaleRL use none; GRPO's
    DeepSeekMath used 0.04)."""
    estimator: Literal["k1", "k2", "k3"] = "k3"
    """Schulman's estimators of KL(π‖π_ref) from samples of π: k1 = log r, k2 = (log r)²/2,
    k3 = exp(−log r) − 1 + log r with log r = logp − ref_logp. k3 (GRPO's choice) is unbiased and
    never negative."""


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(π‖π_ref) from tokens sampled from π (http://joschu.net/blog/kl-approx.html)."""
    log_r = logp - ref_logp
    if estimator == "k1":
        return log_r
    if estimator == "k2":
        return 0.5 * log_r.square()
    if estimator == "k3":
        return torch.exp(-log_r) - 1.0 + log_r
    raise ValueError(f"unknown KL estimator {estimator!r}; allowed: 'k1', 'k2', 'k3'")


class EntropyConfig(_Config):
    """An entropy bonus: the loss gets −coef · H per token."""

    coef: float = Field(0.0, ge=0.0)
    """0 disables the bonus (the policy's entropy is still measured and logged)."""


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position: H = logsumexp(z) − Σ softmax(z)·z."""
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(dim=-1)
