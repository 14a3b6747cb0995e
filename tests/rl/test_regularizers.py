"""rl/regularizers.py against values derived by hand."""

import math

import pytest
import torch

from rl.regularizers import EntropyConfig, adapt_entropy_coef, entropy_bonus_coef, entropy_from_logits, kl_estimate


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    log_r = math.log(2.0)
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(log_r)
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * log_r**2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + log_r)
    with pytest.raises(ValueError, match="allowed: 'k1', 'k2', 'k3'"):
        kl_estimate(logp, ref, "k4")


def test_k3_is_not_clamped_as_verl_does():
    # verl 0.9.1's low_var_kl clamps k3 to ±10 (and its log-ratio to ±20); ours keeps the value and the
    # gradient: at log π − log π_ref = −3, k3 = e³ − 1 − 3 = 16.0855 (verl: 10, with no gradient)
    logp = torch.tensor([-3.0], requires_grad=True)
    k3 = kl_estimate(logp, torch.zeros(1), "k3")
    assert k3.item() == pytest.approx(math.exp(3) - 4)
    k3.sum().backward()
    assert logp.grad.item() == pytest.approx(1 - math.exp(3))  # d/dx (e^{−x} − 1 + x)


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


def test_adaptive_entropy_coefficient_follows_skywork():
    cfg = EntropyConfig(coef=0.01, target=0.5, delta=0.005, coef_max=0.02)
    # applied only once the last measured entropy is at or below the target (none yet: 0)
    assert entropy_bonus_coef(0.01, None, cfg) == 0.0
    assert entropy_bonus_coef(0.01, 0.6, cfg) == 0.0
    assert entropy_bonus_coef(0.01, 0.5, cfg) == 0.01
    # c ← c + Δ below the target, c − Δ above, clipped to [coef_min, coef_max]
    assert adapt_entropy_coef(0.01, 0.4, cfg) == pytest.approx(0.015)
    assert adapt_entropy_coef(0.018, 0.4, cfg) == pytest.approx(0.02)
    assert adapt_entropy_coef(0.01, 0.6, cfg) == pytest.approx(0.005)
    assert adapt_entropy_coef(0.002, 0.6, cfg) == 0.0
    fixed = EntropyConfig(coef=0.003)
    assert entropy_bonus_coef(0.5, None, fixed) == 0.003 and adapt_entropy_coef(0.5, 0.1, fixed) == 0.5
    with pytest.raises(ValueError, match="coef_min"):
        EntropyConfig(coef_min=0.5, coef_max=0.1)
