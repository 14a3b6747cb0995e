"""rl/losses.py against values derived by hand."""

import math

import pytest
import torch

from rl.losses import (
    AggregationConfig,
    PPOClipConfig,
    aggregation_weights,
    entropy_from_logits,
    kl_estimate,
    ppo_clip,
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
    loss, _ = ppo_clip(logp, old, adv, mask, PPOClipConfig(clip_low=0.2, clip_high=0.2, dual_clip=3.0))
    assert loss.detach().squeeze(0).tolist() == pytest.approx([-1.2, 3.0, -1.2], abs=1e-6)


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


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    log_r = math.log(2.0)
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(log_r)
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * log_r**2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + log_r)
    with pytest.raises(ValueError, match="allowed: 'k1', 'k2', 'k3'"):
        kl_estimate(logp, ref, "k4")


def test_k3_is_unbiased_for_the_true_kl():
    torch.manual_seed(0)
    p = torch.tensor([0.7, 0.2, 0.1])
    q = torch.tensor([0.4, 0.4, 0.2])
    true_kl = (p * (p / q).log()).sum().item()
    x = torch.multinomial(p, 200_000, replacement=True)
    estimate = kl_estimate(p.log()[x], q.log()[x], "k3").mean().item()
    assert estimate == pytest.approx(true_kl, rel=0.03)


def test_entropy_from_logits():
    assert entropy_from_logits(torch.zeros(4)).item() == pytest.approx(math.log(4))
    assert entropy_from_logits(torch.tensor([0.0, -1e4])).item() == pytest.approx(0.0, abs=1e-6)
