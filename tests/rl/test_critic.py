"""rl/critic.py: the clipped value loss and explained variance by hand, and the value model's shape."""

import math

import pytest
import torch

from rl.critic import Critic, CriticConfig, ValueHead, explained_variance, value_loss


def test_value_loss_by_hand():
    # R = 1 everywhere; V_old = 0.5; c = 0.2
    # V = 0.9: unclipped (0.1)² = .01, clipped V_clip = 0.7 → (0.3)² = .09: max .09 → ½·.09 = .045
    # V = 0.6: within the clip range, (0.4)² = .16 → .08
    # V = 0.1: moved away from R; V_clip = 0.3 → (0.7)² = .49 < (0.9)² = .81 → .405
    v = torch.tensor([[0.9, 0.6, 0.1]], requires_grad=True)
    old, ret, mask = torch.full((1, 3), 0.5), torch.ones(1, 3), torch.ones(1, 3)
    loss, m = value_loss(v, old, ret, mask, value_clip=0.2)
    assert loss.detach()[0].tolist() == pytest.approx([0.045, 0.08, 0.405])
    loss.sum().backward()
    assert v.grad[0].tolist() == pytest.approx([0.0, -0.4, -0.9])  # the clipped branch has no gradient in V
    assert m["critic/value_clip_frac"] == pytest.approx(1 / 3)
    loss, _ = value_loss(v, old, ret, mask, value_clip=None)
    assert loss.detach()[0].tolist() == pytest.approx([0.005, 0.08, 0.405])


def test_explained_variance_by_hand():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    returns = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 4), 2.0), returns, mask) == pytest.approx(0.0)
    # residuals R − V = 1, 0, −1 (var 2/3) against var(R) = 2/3 → 0; V = R/2: residuals .5, 1, 1.5, var 1/6 → .75
    assert explained_variance(returns / 2, returns, mask) == pytest.approx(0.75)
    assert math.isnan(explained_variance(returns, torch.ones(1, 4), mask))


def test_value_head_starts_at_zero():
    head = ValueHead(8)
    assert head(torch.randn(2, 5, 8)).abs().max().item() == 0.0


def test_separate_critic_reads_values_before_each_completion_token(tiny_model_dir):
    from accelerate import Accelerator

    critic = Critic(CriticConfig(), tiny_model_dir, "float32", 128, Accelerator())
    torch.nn.init.normal_(critic.module.head.linear.weight)  # non-zero values, to see the layout
    prompts, completions = [[5, 6, 7], [8]], [[9, 10], [11, 12, 13]]
    v = critic.values(prompts, completions, pad_id=0)
    assert v.shape == (2, 3) and v[0, 2].item() == 0.0  # past the first completion's end
    # left padding does not change a completion's values
    alone = critic.values([prompts[1]], [completions[1]], pad_id=0)
    assert torch.allclose(v[1], alone[0], atol=1e-5)
    # V(s_t) is read at the position of the token before completion token t: the state it follows
    with torch.no_grad():
        hidden = critic.module.trunk(input_ids=torch.tensor([[8, 11, 12, 13]])).last_hidden_state
        assert torch.allclose(alone[0], critic.module.head(hidden[:, :3])[0], atol=1e-5)


def test_a_separate_critic_learns_fixed_returns_through_its_own_step(tiny_model_dir):
    """Its value loss on a fixed batch falls under its own backward and step: returns 1 after one
    prompt and 0 after the other, the signal PPO's critic gets from rewards (the recipe-level
    learning check is tests/rl/test_vllm_learns.py, whose per-step value losses are too noisy to
    compare)."""
    from accelerate import Accelerator

    from rl.critic import value_loss

    critic = Critic(CriticConfig(lr=1e-3), tiny_model_dir, "float32", 128, Accelerator())
    prompts, completions = [[5, 6, 7], [8, 9]], [[10, 11, 12], [13, 14, 15]]
    returns = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    mask = torch.ones(2, 3)
    losses = []
    for _ in range(30):
        v = critic.values(prompts, completions, pad_id=0)
        per_token, _ = value_loss(v, v.detach(), returns, mask, value_clip=None)
        loss = (per_token * mask).sum() / mask.sum()
        critic.backward(loss, last=True)
        assert critic.step() > 0
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], losses
