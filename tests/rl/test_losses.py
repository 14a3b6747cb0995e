"""rl/losses.py against values derived by hand."""

import math

import pytest
import torch

from rl.losses import (
    LOSSES,
    AggregationConfig,
    CISPOConfig,
    ClipCovConfig,
    DAPOConfig,
    GSPOConfig,
    KLCovConfig,
    LossContext,
    PPOClipConfig,
    ReinforceConfig,
    SAPOConfig,
    aggregation_weights,
    cispo,
    clip_cov,
    cov_selection,
    gspo,
    kl_cov,
    ppo_clip,
    reinforce,
    sapo,
    token_covariance,
)


def _ppo_inputs(ratios, advantages):
    old = torch.zeros(1, len(ratios))
    logp = torch.log(torch.tensor([ratios], dtype=torch.float32)).requires_grad_(True)
    return logp, old, torch.tensor([advantages], dtype=torch.float32), torch.ones(1, len(ratios))


def test_ppo_clip_values_and_gradients_by_hand():
    # ε_low = 0.2, ε_high = 0.28 (clip-higher)
    cfg = PPOClipConfig(clip_low=0.2, clip_high=0.28)
    logp, old, adv, mask = _ppo_inputs([1.5, 1.5, 0.5, 0.5, 1.0], [1.0, -1.0, 1.0, -1.0, 2.0])
    loss, metrics = ppo_clip(logp, old, adv, mask, cfg)
    # r=1.5,A=+1: max(-1.5, -1.28) = -1.28 (clipped above)
    # r=1.5,A=-1: max( 1.5,  1.28) =  1.5  (pessimistic side, unclipped)
    # r=0.5,A=+1: max(-0.5, -0.8)  = -0.5
    # r=0.5,A=-1: max( 0.5,  0.8)  =  0.8  (clipped below)
    # r=1.0,A=+2: -2
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-1.28, 1.5, -0.5, 0.8, -2.0], abs=1e-6)
    loss.sum().backward()
    # d(-A·r)/dlogp = -A·r where unclipped, 0 where the clipped branch is taken
    assert logp.grad.squeeze(0).tolist() == pytest.approx([0.0, 1.5, -0.5, 0.0, -2.0], abs=1e-6)
    assert metrics["clip_frac_high"] == pytest.approx(1 / 5)
    assert metrics["clip_frac_low"] == pytest.approx(1 / 5)
    assert metrics["ratio_mean"] == pytest.approx((1.5 + 1.5 + 0.5 + 0.5 + 1.0) / 5)


def test_ppo_symmetric_clip_and_dual_clip():
    logp, old, adv, mask = _ppo_inputs([1.25, 5.0, 5.0], [1.0, -1.0, 1.0])
    loss, _ = ppo_clip(logp, old, adv, mask, PPOClipConfig(clip_low=0.2, clip_high=0.2))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-1.2, 5.0, -1.2], abs=1e-6)
    # dual clip c=3 bounds the negative-advantage loss at -c·A = 3
    loss, metrics = ppo_clip(logp, old, adv, mask, PPOClipConfig(clip_low=0.2, clip_high=0.2, dual_clip=3.0))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-1.2, 3.0, -1.2], abs=1e-6)
    assert metrics["clip_frac_dual"] == pytest.approx(1 / 3)  # the r = 5, A = −1 token


def test_dual_clip_fraction_counts_the_tokens_it_hit_as_verl():
    # A < 0 everywhere, c = 3: r = 2.5 (under c: PPO's loss 2.5 kept), 3.5 and 10 (hit), 0.5 (clipped
    # low, not dual); A > 0 with r = 10 is never dual-clipped. verl's pg_clipfrac_lower counts the same.
    logp, old, adv, mask = _ppo_inputs([2.5, 3.5, 10.0, 0.5, 10.0], [-1.0, -1.0, -2.0, -1.0, 1.0])
    loss, metrics = ppo_clip(logp, old, adv, mask, PPOClipConfig(dual_clip=3.0))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([2.5, 3.0, 6.0, 0.8, -1.2], abs=1e-6)
    assert metrics["clip_frac_dual"] == pytest.approx(2 / 5)
    ratio, a = torch.exp(logp.detach()), adv
    pg1, pg2 = -a * ratio, -a * torch.clamp(ratio, 0.8, 1.2)
    clip1 = torch.maximum(pg1, pg2)
    verl_lower = (torch.gt(clip1, -a * 3.0) * (a < 0).float()).mean().item()
    assert metrics["clip_frac_dual"] == pytest.approx(verl_lower)
    loss.sum().backward()
    assert logp.grad.squeeze(0).tolist() == pytest.approx([2.5, 0.0, 0.0, 0.0, 0.0], abs=1e-6)
    _, metrics = ppo_clip(logp, old, adv, mask, PPOClipConfig())
    assert metrics["clip_frac_dual"] == 0.0


def test_metrics_ignore_masked_tokens():
    logp, old, adv, _ = _ppo_inputs([2.0, 1.0], [1.0, 1.0])
    mask = torch.tensor([[0.0, 1.0]])
    _, metrics = ppo_clip(logp, old, adv, mask, PPOClipConfig())
    assert metrics["clip_frac_high"] == 0.0
    assert metrics["ratio_mean"] == pytest.approx(1.0)


def test_aggregation_weights_by_hand():
    # completion lengths 2, 4, 3; the first two answer prompt 0, the third prompt 1
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.float32)
    groups = torch.tensor([0, 0, 1])
    w = aggregation_weights(mask, groups, AggregationConfig(name="token_mean"), norm_length=8)
    assert torch.allclose(w, mask / 9)
    w = aggregation_weights(mask, groups, AggregationConfig(name="seq_mean_token_mean"), norm_length=8)
    assert w[0, 0] == pytest.approx(1 / (2 * 3)) and w[1, 0] == pytest.approx(1 / (4 * 3)) and w[2, 0] == pytest.approx(1 / (3 * 3))
    w = aggregation_weights(mask, groups, AggregationConfig(name="seq_mean_token_sum_norm"), norm_length=8)
    assert torch.allclose(w, mask / (8 * 3))
    w = aggregation_weights(mask, groups, AggregationConfig(name="seq_mean_token_sum_norm", norm_length=4), norm_length=8)
    assert torch.allclose(w, mask / (4 * 3))
    # prompt_mean: prompt 0 has 6 tokens, prompt 1 has 3; mean over 2 prompts
    w = aggregation_weights(mask, groups, AggregationConfig(name="prompt_mean"), norm_length=8)
    assert w[0, 0] == pytest.approx(1 / 12) and w[1, 3] == pytest.approx(1 / 12) and w[2, 0] == pytest.approx(1 / 6)
    assert w[0, 2] == 0 and w[2, 3] == 0
    for name in ("token_mean", "seq_mean_token_mean", "prompt_mean"):
        assert aggregation_weights(mask, groups, AggregationConfig(name=name), 8).sum().item() == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# PPO-clip far outside the clip range, DAPO, REINFORCE
# --------------------------------------------------------------------------------------------


def test_ppo_ratio_far_outside_the_clip_range():
    # r = 50: with A > 0 the clip caps the gain at 1 + ε_high (no gradient); with A < 0 PPO keeps the
    # pessimistic unclipped −A·r = 50, which dual clip c = 3 bounds at 3. r = 0.001 with A < 0: clipped at 0.8.
    logp, old, adv, mask = _ppo_inputs([50.0, 50.0, 0.001], [1.0, -1.0, -1.0])
    loss, m = ppo_clip(logp, old, adv, mask, PPOClipConfig(clip_low=0.2, clip_high=0.28))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-1.28, 50.0, 0.8], rel=1e-5)
    loss.sum().backward()
    assert logp.grad.squeeze(0).tolist() == pytest.approx([0.0, 50.0, 0.0], rel=1e-5)
    assert m["ratio_max"] == pytest.approx(50.0) and m["ratio_min"] == pytest.approx(0.001)
    loss, _ = ppo_clip(logp, old, adv, mask, PPOClipConfig(dual_clip=3.0))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-1.2, 3.0, 0.8], rel=1e-5)


def test_dapo_is_ppo_clip_with_clip_higher():
    cfg = DAPOConfig()
    assert (cfg.clip_low, cfg.clip_high) == (0.2, 0.28)
    assert LOSSES["dapo"] is ppo_clip
    logp, old, adv, mask = _ppo_inputs([1.5], [1.0])
    loss, _ = LOSSES["dapo"](logp, old, adv, mask, cfg)
    assert loss.item() == pytest.approx(-1.28)


def test_reinforce_is_the_unclipped_importance_weighted_gradient():
    logp, old, adv, mask = _ppo_inputs([1.0, 3.0], [2.0, -1.0])
    loss, _ = reinforce(logp, old, adv, mask, ReinforceConfig())
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-2.0, 3.0])
    loss.sum().backward()
    # d(−A·r)/dlogp = −A·r: on policy (r = 1) this is REINFORCE's −A·∇log π
    assert logp.grad.squeeze(0).tolist() == pytest.approx([-2.0, 3.0])


# --------------------------------------------------------------------------------------------
# GSPO
# --------------------------------------------------------------------------------------------


def test_gspo_sequence_ratio_and_gradients_by_hand():
    # row 0: log r = (0.2, 0, −0.05) → s = exp(0.05) = 1.0513 > 1 + 4e-4 with A = +1: clipped, no gradient.
    # row 1: log r = (1e-4, −1e-4) on its 2 masked tokens → s = 1 (the masked third token's log r = 5
    #        must not count); A = −0.5 → loss −A·s = 0.5 per token, gradient −A·s = 0.5 per token.
    old = torch.zeros(2, 3)
    logp = torch.tensor([[0.2, 0.0, -0.05], [1e-4, -1e-4, 5.0]], requires_grad=True)
    adv = torch.tensor([[1.0] * 3, [-0.5] * 3])
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    loss, m = gspo(logp, old, adv, mask, GSPOConfig())
    assert (loss.detach() * mask).flatten().tolist() == pytest.approx([-1.0004] * 3 + [0.5, 0.5, 0.0], abs=1e-6)
    (loss * mask).sum().backward()
    assert logp.grad.flatten().tolist() == pytest.approx([0.0] * 3 + [0.5, 0.5, 0.0], abs=1e-6)
    assert m["clip_frac_high"] == pytest.approx(3 / 5)
    assert m["seq_ratio_max"] == pytest.approx(math.exp(0.05), rel=1e-5)
    assert m["seq_ratio_min"] == pytest.approx(1.0, abs=1e-6)


def test_gspo_on_policy_gradient_is_a_over_the_sequence():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    loss, _ = gspo(logp, logp.detach(), torch.full((1, 2), 3.0), torch.ones(1, 2), GSPOConfig())
    loss.sum().backward()
    assert logp.grad.tolist() == [[-3.0, -3.0]]  # s = 1, ∇s_t = ∇log π_t


# --------------------------------------------------------------------------------------------
# CISPO
# --------------------------------------------------------------------------------------------


def test_cispo_by_hand_with_an_absolute_cap():
    # r = 0.5, 3, 8 (old log-probs 0, so log π = log r); A = 1, 1, −2; ε_max = 5 is an ABSOLUTE cap:
    # weights 0.5, 3, 5 (verl's 1 + ε convention would give 6 for clip_ratio_high = 5)
    logp, old, adv, mask = _ppo_inputs([0.5, 3.0, 8.0], [1.0, 1.0, -2.0])
    loss, m = cispo(logp, old, adv, mask, CISPOConfig())
    expected = [-0.5 * 1 * math.log(0.5), -3.0 * 1 * math.log(3.0), -5.0 * -2 * math.log(8.0)]
    assert loss.detach().squeeze(0).tolist() == pytest.approx(expected, rel=1e-5)
    loss.sum().backward()
    # the weight is detached: ∂L/∂log π = −w·A, even for the capped token (PPO would give it 0)
    assert logp.grad.squeeze(0).tolist() == pytest.approx([-0.5, -3.0, 10.0], rel=1e-5)
    assert m["clip_frac_high"] == pytest.approx(1 / 3) and m["clip_frac_low"] == 0.0
    assert CISPOConfig().cap == 5.0 and CISPOConfig().floor is None  # ScaleRL: bounds 0 and 5


def test_cispo_floor_and_cap_between():
    logp, old, adv, mask = _ppo_inputs([0.5, 5.5], [1.0, 1.0])
    loss, m = cispo(logp, old, adv, mask, CISPOConfig(cap=4.0, floor=0.8))
    loss.sum().backward()
    assert logp.grad.squeeze(0).tolist() == pytest.approx([-0.8, -4.0])
    # clip fractions count the tokens whose weight a bound changed, whatever A's sign (docs/components.md;
    # verl counts ratio != clipped_ratio); the gradient is kept
    assert (m["clip_frac_low"], m["clip_frac_high"]) == (pytest.approx(0.5), pytest.approx(0.5))
    _, m = cispo(logp, old, -adv, mask, CISPOConfig(cap=4.0, floor=0.8))
    assert (m["clip_frac_low"], m["clip_frac_high"]) == (pytest.approx(0.5), pytest.approx(0.5))


# --------------------------------------------------------------------------------------------
# Clip-Cov and KL-Cov
# --------------------------------------------------------------------------------------------


def _cov_inputs():
    # one row of 6 tokens: log π = −1..−6 (mean −3.5), A = 2, 2, 2, −2, −2, −2 (mean 0)
    # Cov_i = (log π_i + 3.5)·A_i = 5, 3, 1, 1, 3, 5
    logp = torch.tensor([[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]], requires_grad=True)
    adv = torch.tensor([[2.0, 2.0, 2.0, -2.0, -2.0, -2.0]])
    return logp, adv, torch.ones(1, 6)


def test_token_covariance_by_hand():
    logp, adv, mask = _cov_inputs()
    cov = token_covariance(logp, adv, mask)
    assert cov.tolist() == [[5.0, 3.0, 1.0, 1.0, 3.0, 5.0]]
    assert cov.mean().item() == pytest.approx(3.0)  # Cov(log π, A) = E[log π·A] − E[log π]·E[A]


def test_clip_cov_detaches_random_tokens_strictly_inside_the_bounds():
    logp, adv, mask = _cov_inputs()
    # ω = (1, 5), strict: only the tokens with Cov = 3 (positions 1 and 4) are candidates.
    # r = 0.5: ⌊0.5·6⌋ = 3 wanted, 2 candidates: both detached
    cfg = ClipCovConfig(ratio=0.5)
    loss, m = clip_cov(logp, logp.detach(), adv, mask, cfg)
    assert m["clip_cov/detached_tokens"] == 2.0
    loss.sum().backward()
    assert logp.grad.tolist() == [[-2.0, 0.0, -2.0, 2.0, 0.0, 2.0]]  # −A·r elsewhere (r = 1)
    assert loss.detach().tolist() == [[-2.0, -2.0, -2.0, 2.0, 2.0, 2.0]]  # detached, value kept
    # the paper's r = 2e-4: max(1, ⌊2e-4·6⌋) = 1 token, drawn at random from the candidates
    seen = set()
    for seed in range(20):
        selected, _ = cov_selection(logp, logp.detach(), adv, mask, ClipCovConfig(), torch.Generator().manual_seed(seed))
        assert selected.sum().item() == 1
        seen |= set(torch.nonzero(selected)[:, 1].tolist())
    assert seen == {1, 4}


def test_clip_cov_with_a_ppo_clip_skips_tokens_it_already_clipped():
    logp, adv, mask = _cov_inputs()
    old = logp.detach().clone()
    old[0, 1] -= math.log(1.5)  # token 1: r = 1.5 with A = 2 > 0, clipped by ε_high = 0.2
    selected, _ = cov_selection(logp, old, adv, mask, ClipCovConfig(ratio=0.5, clip_low=0.2, clip_high=0.2))
    assert torch.nonzero(selected)[:, 1].tolist() == [4]


def test_kl_cov_penalises_the_top_fraction_by_covariance():
    logp, adv, mask = _cov_inputs()
    old = logp.detach() - 0.1  # off policy: r = e^0.1 on every token
    cfg = KLCovConfig(ratio=0.34, coef=1.0)  # ⌊0.34·6⌋ = 2 tokens: the two with Cov = 5 (positions 0 and 5)
    loss, m = kl_cov(logp, old, adv, mask, cfg)
    r = math.exp(0.1)
    assert loss.detach()[0].tolist() == pytest.approx([-2 * r + 0.1, -2 * r, -2 * r, 2 * r, 2 * r, 2 * r + 0.1], rel=1e-5)
    loss.sum().backward()
    # ∂/∂log π of −A·r + β·|log r| = −A·r + β·sign(log r)
    assert logp.grad[0].tolist() == pytest.approx([-2 * r + 1, -2 * r, -2 * r, 2 * r, 2 * r, 2 * r + 1], rel=1e-5)
    assert m["kl_cov/penalised_tokens"] == 2.0


def test_kl_cov_ratio_is_a_fraction_not_a_percentage():
    torch.manual_seed(0)
    logp, adv, mask = torch.randn(10, 100), torch.randn(10, 100), torch.ones(10, 100)
    # k = 2e-3 of N = 1000 tokens is 2 tokens (the reference code's percentage 2e-3 would be 1: max(1, 0.02))
    selected, _ = cov_selection(logp, logp, adv, mask, KLCovConfig(ratio=2e-3))
    assert selected.sum().item() == 2
    cov = token_covariance(logp, adv, mask)
    assert set(cov[selected].tolist()) == set(cov.flatten().topk(2).values.tolist())


def test_kl_cov_on_policy_has_the_gradient_of_reinforce():
    logp, adv, mask = _cov_inputs()
    loss, _ = kl_cov(logp, logp.detach(), adv, mask, KLCovConfig(ratio=0.5))
    loss.sum().backward()
    assert logp.grad.tolist() == [[-2.0, -2.0, -2.0, 2.0, 2.0, 2.0]]  # |log r| = 0 has no gradient at r = 1


def test_cov_selection_global_differs_from_per_micro_batch_and_context_is_used():
    # two micro-batches whose token means differ: the covariance of a token depends on the scope
    logp = torch.tensor([[-1.0, -2.0], [-5.0, -6.0]])
    adv = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    mask = torch.ones(2, 2)
    cfg = KLCovConfig(ratio=0.25)  # 1 token of 4 globally; 1 of 2 per micro-batch
    whole, _ = cov_selection(logp, logp, adv, mask, cfg)
    # global means: log π −3.5, A 0 → Cov = 2.5, 1.5, 1.5, 2.5: one of the two 2.5s
    assert whole.sum().item() == 1
    per_row = [cov_selection(logp[i : i + 1], logp[i : i + 1], adv[i : i + 1], mask[i : i + 1], cfg)[0] for i in range(2)]
    assert sum(s.sum().item() for s in per_row) == 2  # within a row every Cov is 0, and one token each is still taken
    # a loss given the global selection uses it instead of selecting again
    chosen = torch.tensor([[False, True], [False, False]])
    lp = logp.clone().requires_grad_(True)
    _, m = kl_cov(lp, logp - 0.1, adv, mask, cfg, LossContext(selected=chosen))
    assert m["kl_cov/penalised_tokens"] == 1.0


def test_cov_losses_leave_a_fully_masked_row_alone():
    logp, adv, _ = _cov_inputs()
    mask = torch.zeros(1, 6)
    for fn, cfg in ((clip_cov, ClipCovConfig(ratio=0.5)), (kl_cov, KLCovConfig(ratio=0.5))):
        _, m = fn(logp, logp.detach(), adv, mask, cfg)
        assert m.get("clip_cov/detached_tokens", m.get("kl_cov/penalised_tokens")) == 0.0


def test_aggregation_ignores_fully_masked_rows():
    # row 1 is fully masked (e.g. a truncated completion left out of the loss): it counts in no denominator
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.float32)
    groups = torch.tensor([0, 1, 2])
    w = aggregation_weights(mask, groups, AggregationConfig(name="seq_mean_token_mean"), norm_length=3)
    assert w[0, 0] == pytest.approx(1 / (2 * 2)) and w[2, 0] == pytest.approx(1 / (3 * 2)) and w[1].sum() == 0
    w = aggregation_weights(mask, groups, AggregationConfig(name="seq_mean_token_sum_norm"), norm_length=3)
    assert w[0, 0] == pytest.approx(1 / (3 * 2))
    w = aggregation_weights(mask, groups, AggregationConfig(name="prompt_mean"), norm_length=3)
    assert w[0, 0] == pytest.approx(1 / (2 * 2)) and w[2, 0] == pytest.approx(1 / (3 * 2))
    assert w.sum().item() == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# SAPO
# --------------------------------------------------------------------------------------------


def test_sapo_values_gradients_and_weight_by_hand():
    # f(r) = σ(τ(r − 1))·4/τ, L = −f·A, τ = τ_pos = 1 where A > 0, τ_neg = 1.05 where A ≤ 0;
    # dL/dlogp = −4σ(1 − σ)·r·A.
    # r=1,   A=+1, τ=1:    σ(0) = .5: L = −2;                           grad −1 (REINFORCE's)
    # r=1.5, A=+1, τ=1:    σ(.5) = .62245933: L = −2.48983732;          grad −4·.62245933·.37754067·1.5 = −1.41002227
    # r=.5,  A=−1, τ=1.05: σ(−.525) = .37168381: L = .37168381·4/1.05 = 1.41593833; grad 4·.37168381·.62831619·.5 = .46706991
    # r=1,   A=−1, τ=1.05: L = .5·4/1.05 = 1.90476190;                  grad +1
    # r=1,   A=0:          L = 0, grad 0 (τ_neg's gate times 0)
    logp, old, adv, mask = _ppo_inputs([1.0, 1.5, 0.5, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0, 0.0])
    loss, metrics = sapo(logp, old, adv, mask, SAPOConfig())
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-2.0, -2.48983732, 1.41593833, 1.90476190, 0.0], abs=1e-6)
    loss.sum().backward()
    assert logp.grad.squeeze(0).tolist() == pytest.approx([-1.0, -1.41002227, 0.46706991, 1.0, 0.0], abs=1e-6)
    # is_weight_mean: the factor 4σ(1 − σ)·r on −A·∇log π, averaged over tokens (the A = 0 token: τ_neg, r = 1 → 1)
    assert metrics["is_weight_mean"] == pytest.approx((1.0 + 1.41002227 + 0.46706991 + 1.0 + 1.0) / 5, abs=1e-6)
    assert "clip_frac_low" not in metrics and metrics["ratio_max"] == pytest.approx(1.5)


def test_sapo_temperatures_are_the_configs():
    # τ_neg = 2 for the negative token: f(1) = 4/2·.5 = 1, so L = +1; τ_pos = 0.5 for the positive one: L = −4
    logp, old, adv, mask = _ppo_inputs([1.0, 1.0], [1.0, -1.0])
    loss, _ = sapo(logp, old, adv, mask, SAPOConfig(tau_pos=0.5, tau_neg=2.0))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-4.0, 1.0])
    assert LOSSES["sapo"] is sapo


def _verl_sapo(old_log_prob, log_prob, advantages, response_mask, tau_pos, tau_neg):
    """verl 0.9.1 core_algos.compute_policy_loss_sapo, reproduced from its source: the per-token
    loss, then agg_loss(..., "seq-mean-token-mean") (the mode SAPO forces), dp_size 1."""
    tau_pos = torch.as_tensor(tau_pos, dtype=advantages.dtype)
    tau_neg = torch.as_tensor(tau_neg, dtype=advantages.dtype)
    negative_approx_kl = torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0)
    ratio = torch.exp(negative_approx_kl)
    taus = torch.where(advantages > 0, tau_pos, tau_neg)
    gates = torch.sigmoid(taus * (ratio - 1.0)) * (4.0 / taus)
    pg_losses = -gates * advantages
    seq_mask = torch.sum(response_mask, dim=-1)
    seq_losses = torch.sum(pg_losses * response_mask, dim=-1) / (seq_mask + 1e-8)
    seq_mask = (seq_mask > 0).float()
    return pg_losses, (seq_losses * seq_mask).sum() / seq_mask.sum()


def _trl_sapo(per_token_logps, old_per_token_logps, advantages, mask, pos, neg):
    """TRL 1.16 GRPOTrainer._compute_loss with loss_type="sapo", reproduced from its source (token-level
    importance sampling, beta = 0): per-token loss and the "grpo" aggregation it shares."""
    coef_1 = torch.exp(per_token_logps - old_per_token_logps)
    temperatures = torch.where(advantages > 0, pos, neg)
    per_token_loss = -(torch.sigmoid(temperatures * (coef_1 - 1)) * 4 / temperatures) * advantages
    return per_token_loss, ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def test_sapo_matches_verl_and_trl_on_identical_tensors():
    torch.manual_seed(0)
    B, T = 6, 7
    old = torch.randn(B, T) - 2.0
    mask = torch.ones(B, T)
    mask[1, 4:] = 0
    mask[3, 1:] = 0
    mask[5, 2] = 0  # a hole mid-sequence
    adv = torch.randn(B, 1).expand(B, T).contiguous() * mask
    adv[2] = 0.0  # A = 0 takes τ_neg
    cfg = SAPOConfig(tau_pos=1.0, tau_neg=1.05)
    weights = aggregation_weights(mask, torch.arange(B), AggregationConfig(name="seq_mean_token_mean"), norm_length=T)
    grads = {}
    for name in ("ours", "verl", "trl"):
        logp = (old + 0.3 * torch.randn(B, T, generator=torch.Generator().manual_seed(1))).requires_grad_(True)
        if name == "ours":
            per_token, _ = sapo(logp, old, adv, mask, cfg)
            total = (per_token * weights).sum()
        elif name == "verl":
            per_token, total = _verl_sapo(old, logp, adv, mask, 1.0, 1.05)
        else:
            per_token, total = _trl_sapo(logp, old, adv, mask, 1.0, 1.05)
        total.backward()
        grads[name] = (per_token.detach() * mask, total.detach(), logp.grad.clone())
    for other in ("verl", "trl"):
        assert torch.allclose(grads["ours"][0], grads[other][0], atol=5e-7, rtol=0)
        assert grads["ours"][1].item() == pytest.approx(grads[other][1].item(), abs=5e-7)
        assert torch.allclose(grads["ours"][2], grads[other][2], atol=5e-7, rtol=0)


def test_sapo_ratio_far_off_policy_stays_finite():
    # log r = ±100: exp overflows in float32 without verl's ±20 clamp (TRL has none) and 0·inf would be NaN
    logp, old, adv, mask = _ppo_inputs([1.0, 1.0], [1.0, -1.0])
    logp = torch.tensor([[100.0, -100.0]], requires_grad=True)
    loss, metrics = sapo(logp, old, adv, mask, SAPOConfig())
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logp.grad).all()
    # r = e^20: σ(τ(r − 1)) = 1, L = −4/τ_pos·A = −4; r = e^−20 ≈ 0: L = σ(−τ_neg)·4/τ_neg = .98752
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-4.0, 4 / 1.05 / (1 + math.exp(1.05))], abs=1e-5)
    assert logp.grad.abs().max().item() == 0.0  # outside the clamp: no gradient (the gate is flat there anyway)
