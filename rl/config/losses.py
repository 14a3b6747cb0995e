"""The policy losses' configs (`algorithm.loss`, one per loss, selected by `name`) and the loss
aggregation's (`algorithm.aggregation`). The losses themselves, over tensors, are in rl/losses.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from envs.schema import Config


class PPOClipConfig(Config):
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


class DAPOConfig(Config):
    """DAPO's policy loss (Yu et al. 2025, eq. 8): PPO-clip with decoupled, asymmetric bounds
    ("clip-higher", §3.1) so that low-probability tokens can grow. DAPO also aggregates by token
    mean (§3.3, `aggregation: token_mean`), filters groups by dynamic sampling (§3.2,
    `dynamic_sampling`) and shapes overlong rewards (§3.4, `length`): those are separate components."""

    name: Literal["dapo"] = "dapo"
    clip_low: float = Field(0.2, gt=0.0, lt=1.0)
    """ε_low. 0.2 in DAPO."""
    clip_high: float = Field(0.28, gt=0.0)
    """ε_high. 0.28 in DAPO."""
    dual_clip: float | None = Field(None, gt=1.0)
    """As in ppo_clip; DAPO's paper uses none (verl's DAPO scripts pass clip_ratio_c=10)."""


class ReinforceConfig(Config):
    """Vanilla policy gradient (REINFORCE, Williams 1992) with an importance ratio and no clipping."""

    name: Literal["reinforce"] = "reinforce"


class GSPOConfig(Config):
    """Group Sequence Policy Optimization (Zheng et al. 2025, Qwen3): one importance ratio per
    sequence, the geometric mean of its token ratios, clipped per sequence. Use with
    `aggregation: seq_mean_token_mean` (the paper's objective averages over sequences)."""

    name: Literal["gspo"] = "gspo"
    clip_low: float = Field(3e-4, gt=0.0, lt=1.0)
    """ε_low on the sequence ratio. 3e-4 in the paper (§5.1): a length-normalised ratio stays close
    to 1, so its clip range is orders of magnitude below a token ratio's."""
    clip_high: float = Field(4e-4, gt=0.0)
    """ε_high on the sequence ratio. 4e-4 in the paper."""


class CISPOConfig(Config):
    """Clipped IS-weight Policy Optimization (MiniMax-M1, 2025, eq. 4; ScaleRL's loss, Khatri et al.
    2025, §3.2). The importance weight is clipped and detached, so every token keeps a gradient
    (PPO's clip drops the gradient of clipped tokens entirely)."""

    name: Literal["cispo"] = "cispo"
    cap: float = Field(5.0, gt=1.0)
    """ε_max: the weight is min(r, ε_max), an ABSOLUTE cap on the ratio. ScaleRL uses a lower bound
    of 0 (none) and an upper bound of 5. Conventions differ: TRL's `epsilon_high` is this absolute
    cap (ScaleRL: 5.0); verl's and SkyRL's CISPO clip at 1 + clip_ratio_high (so 4.0 there)."""
    floor: float | None = Field(None, ge=0.0, lt=1.0)
    """An absolute lower bound on the weight; None (MiniMax-M1 and ScaleRL: no lower bound). verl
    clips below at 1 − clip_ratio_low (0.8 by default), which this does not."""


class SAPOConfig(Config):
    """Soft Adaptive Policy Optimization (Gao et al. 2025, Qwen, arXiv:2511.20347): the ratio enters
    through a sigmoid gate f(r) = σ(τ·(r − 1))·4/τ instead of PPO's hard clip. Its gradient,
    4·σ(1 − σ)·r·∇log π, is exactly the policy gradient on policy (r = 1) and fades smoothly as r
    leaves 1, so off-policy tokens are attenuated, never cut off. The temperature is τ_pos on
    tokens with A > 0 and τ_neg on the others; τ_neg > τ_pos damps negative updates faster (they
    raise the logits of every unsampled token, the paper's argument for the asymmetry). verl 0.9.1
    (`loss_mode: sapo`, `tau_pos`, `tau_neg`) and TRL 1.16 (`loss_type="sapo"`,
    `sapo_temperature_pos`, `sapo_temperature_neg`) implement the same formula. Use with
    `aggregation: seq_mean_token_mean` (the paper's objective; verl forces it, TRL's "sapo" uses it)."""

    name: Literal["sapo"] = "sapo"
    tau_pos: float = Field(1.0, gt=0.0)
    """τ_pos, the gate's temperature where A > 0. 1.0 in the paper, verl and TRL."""
    tau_neg: float = Field(1.05, gt=0.0)
    """τ_neg, the gate's temperature where A ≤ 0. 1.05 in the paper, verl and TRL."""


class ClipCovConfig(Config):
    """Clip-Cov (eq. 12): detach the gradient of a random r·N of the tokens whose covariance lies in
    (ω_low, ω_high), N the number of tokens. The base loss is the unclipped −A·r: the paper's
    objective has no PPO clip (the authors' scripts pass clip ratios of 1 to verl; verl's own
    clip_cov keeps PPO's 0.2 clip unless told otherwise)."""

    name: Literal["clip_cov"] = "clip_cov"
    ratio: float = Field(2e-4, gt=0.0, le=1.0)
    """r, the fraction of tokens detached. 2e-4 in the paper (7B and 32B)."""
    cov_low: float = 1.0
    """ω_low. 1 in the paper."""
    cov_high: float = 5.0
    """ω_high. 5 in the paper."""
    clip_low: float | None = Field(None, gt=0.0)
    """Optional PPO clip ε_low on top (tokens clipped by it are not candidates, as in the reference
    code); None: no PPO clip, as in the paper."""
    clip_high: float | None = Field(None, gt=0.0)
    """Optional PPO clip ε_high on top; None: no PPO clip."""
    scope: Literal["global", "micro_batch"] = "global"
    """Where N and the means of eq. 11 are taken. global: over the whole mini-batch (the paper's
    definition, and independent of micro_batch_size; costs one extra forward pass per optimizer
    step). micro_batch: within each micro-batch, as the reference code and verl do."""


class KLCovConfig(Config):
    """KL-Cov (eq. 13): add β·KL to the loss of the top k·N tokens by covariance. The base loss is
    the unclipped −A·r (no PPO clip, as in the paper and its code). The KL term is |log r| =
    |log π_θ − log π_old| per token, as in the authors' code and verl. On policy (one update per
    batch) every ratio is 1 and the term has no gradient: KL-Cov then equals REINFORCE."""

    name: Literal["kl_cov"] = "kl_cov"
    ratio: float = Field(2e-3, gt=0.0, le=1.0)
    """k, the FRACTION of tokens penalised. The paper uses 2e-3 for 7B and 2e-4 for 32B; its code
    takes a percentage and divides by 100 (k_percent 0.2 and 0.02), verl's kl_cov_ratio default is
    2e-4 (the 32B value) and SkyRL's kl_cov_frac default is 0.2 (20%, a hundred times the 7B value)."""
    coef: float = Field(1.0, ge=0.0)
    """β. 1 in the paper (ppo_kl_coef in its code)."""
    scope: Literal["global", "micro_batch"] = "global"
    """As for clip_cov."""


LossConfig = (
    PPOClipConfig | DAPOConfig | ReinforceConfig | GSPOConfig | CISPOConfig | ClipCovConfig | KLCovConfig | SAPOConfig
)


class AggregationConfig(Config):
    """How per-token losses are averaged (see "Understanding R1-Zero-Like Training", Dr. GRPO, and
    DAPO §3.3 on why the choice matters for long completions)."""

    name: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm", "prompt_mean"] = "token_mean"
    """token_mean: every token of the batch counts the same (DAPO). seq_mean_token_mean: mean over
    each completion, then over completions (original GRPO). seq_mean_token_sum_norm: token sum of each
    completion divided by a constant, mean over completions (Dr. GRPO). prompt_mean: token mean within
    each prompt's group, then mean over prompts (ScaleRL's prompt-level averaging). Completions
    with no token in the loss (fully masked rows) count in no denominator."""
    norm_length: int | None = Field(None, gt=0)
    """The constant of seq_mean_token_sum_norm (Dr. GRPO uses the generation budget); None means the
    engine's max_new_tokens."""
