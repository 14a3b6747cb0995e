"""Policy losses and loss aggregation, as pure functions over tensors.

A policy loss has one signature:

    loss_fn(logp, old_logp, advantages, mask, cfg, ctx=None) -> (per_token_loss, metrics)

with `logp` the current policy's log-probs of the sampled tokens [B, T] (with grad), `old_logp`
those of the policy that sampled them [B, T] (no grad), `advantages` [B, T], `mask` [B, T] (1 on
completion tokens), `cfg` the loss's own small config. It returns the per-token loss [B, T] and a
dict of scalar metrics over this micro-batch. Rows are completions, so a sequence-level loss (GSPO)
needs nothing more. `ctx` (a LossContext) carries what two losses need beyond tensors: Clip-Cov's
random generator, and the tokens that Clip-Cov/KL-Cov selected over the whole mini-batch in a
pre-pass (`cov_selection`, called by the trainer when cfg.scope == "global").

Metric names say how the trainer combines them over micro-batches: names ending in `max` by max,
in `min` by min, in `tokens` by sum (counts), everything else by a token-weighted mean.

How per-token losses become one number is a separate choice, the aggregation (`aggregation_weights`).
It is written as per-token *weights* computed once over the whole mini-batch, so that

    loss = sum(per_token_loss * weights)

is the same number whether the mini-batch is processed whole, in micro-batches (gradient
accumulation) or across ranks: each part adds its own sum, nothing is averaged twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl.config.losses import (AggregationConfig, CISPOConfig, ClipCovConfig, DAPOConfig, GSPOConfig, KLCovConfig,
                              PPOClipConfig, ReinforceConfig, SAPOConfig)


@dataclass
class LossContext:
    generator: torch.Generator | None = None
    """Randomness of Clip-Cov's token selection (seeded by the trainer from the recipe seed and the
    step, so a resumed run draws the same tokens)."""
    selected: torch.Tensor | None = None
    """[B, T] bool: the tokens Clip-Cov/KL-Cov chose over the whole mini-batch (scope "global");
    None makes the loss select within its own micro-batch."""


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `x` over positions where `mask` is 1 (0 if the mask is empty)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)


def _ratio_metrics(ratio: torch.Tensor, log_ratio: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Importance-ratio statistics and the k3 estimate of KL(π_old ‖ π_θ) ("approximating KL")."""
    on = mask > 0
    if not on.any():
        return {"ratio_mean": 1.0, "ratio_max": 1.0, "ratio_min": 1.0, "approx_kl": 0.0}
    return {
        "ratio_mean": masked_mean(ratio, mask).item(),
        "ratio_max": ratio[on].max().item(),
        "ratio_min": ratio[on].min().item(),
        "approx_kl": masked_mean(ratio - 1.0 - log_ratio, mask).item(),
    }


def _clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """PPO's pessimistic surrogate max(−A·r, −A·clip(r, 1 − low, 1 + high))."""
    return torch.maximum(-advantages * ratio, -advantages * torch.clamp(ratio, 1.0 - low, 1.0 + high))


def _clip_fracs(ratio, advantages, mask, low: float, high: float) -> dict[str, float]:
    """Fractions of tokens whose gradient the clip removed: r < 1 − low with A < 0, r > 1 + high with A > 0."""
    return {
        "clip_frac_low": masked_mean(((ratio < 1.0 - low) & (advantages < 0)).float(), mask).item(),
        "clip_frac_high": masked_mean(((ratio > 1.0 + high) & (advantages > 0)).float(), mask).item(),
    }


# --------------------------------------------------------------------------------------------
# PPO-clip, DAPO, REINFORCE
# --------------------------------------------------------------------------------------------


def ppo_clip(logp, old_logp, advantages, mask, cfg: PPOClipConfig | DAPOConfig, ctx: LossContext | None = None):
    """L = max(−A·r, −A·clip(r, 1 − ε_low, 1 + ε_high)),  r = exp(logp − old_logp);
    with dual clip, L = min(L, −c·A) where A < 0. Metrics: clip_frac_low/high (`_clip_fracs`), and
    clip_frac_dual, the fraction of tokens whose loss the dual clip replaced by −c·A (A < 0 and
    r > c; they lose their gradient too), verl 0.9.1's actor/pg_clipfrac_lower; 0 without it."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    pg_loss = _clipped_surrogate(ratio, advantages, cfg.clip_low, cfg.clip_high)
    dual_hit = torch.zeros_like(mask, dtype=torch.bool)
    if cfg.dual_clip is not None:
        dual_hit = (advantages < 0) & (pg_loss.detach() > -advantages * cfg.dual_clip)
        pg_loss = torch.where(advantages < 0, torch.minimum(pg_loss, -advantages * cfg.dual_clip), pg_loss)
    with torch.no_grad():
        metrics = _clip_fracs(ratio, advantages, mask, cfg.clip_low, cfg.clip_high) | _ratio_metrics(ratio, log_ratio, mask)
        metrics["clip_frac_dual"] = masked_mean(dual_hit.float(), mask).item()
    return pg_loss, metrics


def reinforce(logp, old_logp, advantages, mask, cfg: ReinforceConfig, ctx: LossContext | None = None):
    """L = −A·r, r = exp(logp − old_logp). On policy r = 1 and ∇L = −A·∇log π: REINFORCE itself;
    off policy (several updates per batch) the unclipped ratio is the importance weight."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    with torch.no_grad():
        metrics = _ratio_metrics(ratio, log_ratio, mask)
    return -advantages * ratio, metrics


# --------------------------------------------------------------------------------------------
# GSPO: a sequence-level ratio
# --------------------------------------------------------------------------------------------


def gspo(logp, old_logp, advantages, mask, cfg: GSPOConfig, ctx: LossContext | None = None):
    """GSPO-token (eq. 13): s_i = exp(Σ_t log r_i,t / |y_i|) is the sequence ratio, and each token
    carries s_i,t = sg[s_i] · π_θ(y_i,t) / sg[π_θ(y_i,t)], whose value is s_i and whose gradient is
    s_i · ∇log π_θ(y_i,t). L_i,t = max(−A_i,t·s_i,t, −A_i,t·clip(s_i,t, 1 − ε_low, 1 + ε_high)).
    With one advantage per sequence this is GSPO's sequence-level objective, token by token."""
    log_ratio = (logp - old_logp) * mask
    lengths = mask.sum(dim=1, keepdim=True).clamp(min=1)
    log_s = log_ratio.sum(dim=1, keepdim=True) / lengths  # [B, 1]
    log_s_token = log_s.detach() + logp - logp.detach()
    s = torch.exp(log_s_token.clamp(max=10.0))  # clamp as verl does: exp(10) is already far outside any clip
    pg_loss = _clipped_surrogate(s, advantages, cfg.clip_low, cfg.clip_high)
    with torch.no_grad():
        s_seq = torch.exp(log_s).expand_as(mask)
        metrics = _clip_fracs(s_seq, advantages, mask, cfg.clip_low, cfg.clip_high)
        token_ratio = torch.exp(logp - old_logp)
        metrics |= _ratio_metrics(token_ratio, logp - old_logp, mask)
        on = mask.sum(dim=1) > 0
        metrics["seq_ratio_max"] = torch.exp(log_s.squeeze(1)[on]).max().item() if on.any() else 1.0
        metrics["seq_ratio_min"] = torch.exp(log_s.squeeze(1)[on]).min().item() if on.any() else 1.0
    return pg_loss, metrics


# --------------------------------------------------------------------------------------------
# CISPO: a clipped, stop-gradient importance weight
# --------------------------------------------------------------------------------------------


def cispo(logp, old_logp, advantages, mask, cfg: CISPOConfig, ctx: LossContext | None = None):
    """L = −sg(clip(r, floor, ε_max)) · A · log π_θ,  r = exp(logp − old_logp)."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio.detach())
    weight = torch.clamp(ratio, min=cfg.floor, max=cfg.cap)
    pg_loss = -weight * advantages * logp
    with torch.no_grad():
        metrics = _ratio_metrics(ratio, log_ratio.detach(), mask)
        metrics["clip_frac_high"] = masked_mean((ratio > cfg.cap).float(), mask).item()
        metrics["clip_frac_low"] = masked_mean((ratio < cfg.floor).float(), mask).item() if cfg.floor else 0.0
        metrics["is_weight_mean"] = masked_mean(weight, mask).item()
    return pg_loss, metrics


# --------------------------------------------------------------------------------------------
# SAPO: a soft, temperature-controlled gate instead of a hard clip
# --------------------------------------------------------------------------------------------


# verl clamps log r to ±20 before exp (compute_policy_loss_vanilla, _sapo, ...). SAPO needs a clamp:
# past it σ(τ(r − 1)) is exactly 1 or its gradient factor r is 0, but an unclamped exp overflows to inf
# at log r ≈ 89 in float32 and the backward pass turns 0·inf into NaN. TRL does not clamp.
SAPO_LOG_RATIO_CLAMP = 20.0


def sapo_gate(ratio: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """SAPO's gate f(r) = σ(τ·(r − 1))·4/τ: f(1) = 2/τ, f'(1) = 1."""
    return torch.sigmoid(tau * (ratio - 1.0)) * (4.0 / tau)


def sapo(logp, old_logp, advantages, mask, cfg: SAPOConfig, ctx: LossContext | None = None):
    """L = −f_τ(r)·A, τ = τ_pos if A > 0 else τ_neg, r = exp(clamp(logp − old_logp, ±20)) (verl
    0.9.1's compute_policy_loss_sapo; TRL 1.16's "sapo" without the clamp). Metrics: the ratio
    statistics, and `is_weight_mean`, the mean factor 4·σ·(1 − σ)·r that multiplies −A·∇log π
    (1 on policy; CISPO logs its clipped weight under the same name). Nothing is clipped, so no
    clip fractions (verl and TRL log 0)."""
    log_ratio = torch.clamp(logp - old_logp, -SAPO_LOG_RATIO_CLAMP, SAPO_LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    tau = torch.where(advantages > 0, cfg.tau_pos, cfg.tau_neg).to(ratio.dtype)
    pg_loss = -sapo_gate(ratio, tau) * advantages
    with torch.no_grad():
        metrics = _ratio_metrics(ratio, log_ratio, mask)
        gate = torch.sigmoid(tau * (ratio - 1.0))
        metrics["is_weight_mean"] = masked_mean(4.0 * gate * (1.0 - gate) * ratio, mask).item()
    return pg_loss, metrics


# --------------------------------------------------------------------------------------------
# Clip-Cov and KL-Cov (Cui et al. 2025, "The Entropy Mechanism of RL for Reasoning LMs", §5)
# --------------------------------------------------------------------------------------------


def token_covariance(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cov(y_i) = (log π(y_i) − mean_j log π(y_j)) · (A(y_i) − mean_j A(y_j)) (eq. 11), means over
    the masked tokens of the tensors given; zero off the mask. Its mean is Cov(log π, A), the term
    that drives the change of entropy under policy gradient (eq. 9-10)."""
    logp, advantages = logp.detach().double(), advantages.detach().double()
    cov = (logp - masked_mean(logp, mask)) * (advantages - masked_mean(advantages, mask))
    return (cov * mask).float()


def _has_ppo_clip(cfg: ClipCovConfig) -> bool:
    return cfg.clip_low is not None or cfg.clip_high is not None


def _ppo_bounds(cfg: ClipCovConfig) -> tuple[float, float]:
    """(ε_low, ε_high) of Clip-Cov's optional PPO clip; a missing side does not clip (1 − 1 = 0 ≤ r)."""
    return (cfg.clip_low if cfg.clip_low is not None else 1.0, cfg.clip_high if cfg.clip_high is not None else float("inf"))


def cov_selection(logp, old_logp, advantages, mask, cfg: ClipCovConfig | KLCovConfig, generator=None):
    """The tokens Clip-Cov detaches or KL-Cov penalises [B, T] bool, and covariance metrics.

    Clip-Cov: candidates are the tokens with ω_low < Cov < ω_high (strict, as in the reference) that
    an optional PPO clip has not already clipped; max(1, ⌊r·N⌋) of them are drawn uniformly at
    random (all of them if fewer). KL-Cov: the max(1, ⌊k·N⌋) tokens of largest Cov."""
    cov = token_covariance(logp, advantages, mask)
    on = mask > 0
    n_tokens = int(on.sum().item())
    selected = torch.zeros_like(on)
    if n_tokens > 0:
        count = max(1, int(cfg.ratio * n_tokens))
        if cfg.name == "clip_cov":
            eligible = on & (cov > cfg.cov_low) & (cov < cfg.cov_high)
            if _has_ppo_clip(cfg):  # tokens PPO's clip already removed are not candidates
                ratio = torch.exp(logp.detach() - old_logp)
                eligible &= _clipped_surrogate(ratio, advantages, *_ppo_bounds(cfg)) <= -advantages * ratio
            candidates = torch.nonzero(eligible.flatten()).squeeze(1)
            perm = torch.randperm(len(candidates), generator=generator)
            chosen = candidates[perm[: min(count, len(candidates))]]
        else:
            flat = torch.where(on, cov, torch.full_like(cov, -torch.inf)).flatten()
            chosen = torch.topk(flat, min(count, n_tokens)).indices
        selected.view(-1)[chosen] = True
    metrics = {
        "cov/mean": cov.sum().item() / max(n_tokens, 1),
        "cov/max": cov[on].max().item() if n_tokens else 0.0,
        "cov/min": cov[on].min().item() if n_tokens else 0.0,
        "cov/selected_cov_mean": cov[selected].mean().item() if selected.any() else 0.0,
    }
    return selected, metrics


def clip_cov(logp, old_logp, advantages, mask, cfg: ClipCovConfig, ctx: LossContext | None = None):
    """L = −A·r, with the selected tokens' loss detached (value kept, gradient removed; the reference
    code multiplies them by 0, which has the same gradient). With clip_low/clip_high set, the base
    loss is PPO's clipped surrogate instead."""
    ctx = ctx or LossContext()
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    pg_loss = _clipped_surrogate(ratio, advantages, *_ppo_bounds(cfg)) if _has_ppo_clip(cfg) else -advantages * ratio
    metrics: dict[str, float] = {}
    selected = ctx.selected
    if selected is None:
        selected, metrics = cov_selection(logp, old_logp, advantages, mask, cfg, ctx.generator)
    pg_loss = torch.where(selected, pg_loss.detach(), pg_loss)
    with torch.no_grad():
        metrics |= _ratio_metrics(ratio, log_ratio, mask)
        metrics["clip_cov/detached_tokens"] = float((selected & (mask > 0)).sum().item())
        if _has_ppo_clip(cfg):
            metrics |= _clip_fracs(ratio, advantages, mask, *_ppo_bounds(cfg))
    return pg_loss, metrics


def kl_cov(logp, old_logp, advantages, mask, cfg: KLCovConfig, ctx: LossContext | None = None):
    """L = −A·r + β·|log r|·1[token selected]."""
    ctx = ctx or LossContext()
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    metrics: dict[str, float] = {}
    selected = ctx.selected
    if selected is None:
        selected, metrics = cov_selection(logp, old_logp, advantages, mask, cfg)
    pg_loss = -advantages * ratio + cfg.coef * log_ratio.abs() * selected
    with torch.no_grad():
        metrics |= _ratio_metrics(ratio, log_ratio, mask)
        sel = selected & (mask > 0)
        metrics["kl_cov/penalised_tokens"] = float(sel.sum().item())
        metrics["kl_cov/abs_log_ratio"] = log_ratio[sel].abs().mean().item() if sel.any() else 0.0
    return pg_loss, metrics


# --------------------------------------------------------------------------------------------
# Aggregation: per-token weights over the whole mini-batch
# --------------------------------------------------------------------------------------------


def aggregation_weights(
    mask: torch.Tensor, group_ids: torch.Tensor, cfg: AggregationConfig, norm_length: int
) -> torch.Tensor:
    """Per-token weights [B, T] such that sum(per_token_loss * weights) is the aggregated loss.

    `mask` [B, T] marks completion tokens, `group_ids` [B] the prompt each completion answers,
    `norm_length` the constant used by seq_mean_token_sum_norm when cfg.norm_length is None."""
    mask = mask.float()
    lengths = mask.sum(dim=1, keepdim=True)  # [B, 1]
    num_seqs = (lengths > 0).sum().clamp(min=1)
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
    num_prompts = (group_tokens > 0).sum().clamp(min=1)
    return mask / group_tokens[group_index].clamp(min=1).unsqueeze(1) / num_prompts


LOSSES = {
    "ppo_clip": ppo_clip,
    "dapo": ppo_clip,
    "reinforce": reinforce,
    "gspo": gspo,
    "cispo": cispo,
    "clip_cov": clip_cov,
    "kl_cov": kl_cov,
    "sapo": sapo,
}
# Losses that select tokens by covariance; with scope "global" the trainer selects in a pre-pass.
COV_LOSSES = {"clip_cov", "kl_cov"}
