"""rl/numerics.py (truncated importance sampling) and the FP32 LM head (rl/models.py)."""

import math

import pytest
import torch

from rl.models import load_model
from rl.numerics import TISConfig, tis_weights


def test_tis_weights_by_hand():
    trainer = torch.tensor([[math.log(0.5), math.log(0.9), math.log(0.9)]])
    engine = torch.tensor([[math.log(0.5), math.log(0.3), math.log(0.6)]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    w, m = tis_weights(trainer, engine, mask, TISConfig(cap=2.0))
    # ratios 1, 3 (capped at 2), and 1.5 off the mask (weight 1)
    assert w[0].tolist() == pytest.approx([1.0, 2.0, 1.0])
    assert m["tis/capped_frac"] == 0.5 and m["tis/weight_mean"] == pytest.approx(1.5)


def test_fp32_lm_head_removes_the_heads_rounding_from_bf16_log_probs(tiny_model_dir):
    """Same bf16 trunk, two heads. Against the exact (float64) head on the same hidden states, the
    bf16 head's log-probs are off by ~1e-3 on this tiny model; the FP32 head's by < 1e-5."""
    torch.manual_seed(0)
    ids = torch.randint(4, 100, (4, 30))
    bf16 = load_model(tiny_model_dir, "bfloat16")
    fp32_head = load_model(tiny_model_dir, "bfloat16", fp32_lm_head=True)
    assert fp32_head.lm_head.weight.dtype == torch.float32
    assert next(fp32_head.model.layers.parameters()).dtype == torch.bfloat16  # the trunk stays bf16
    a, b = bf16(input_ids=ids, output_hidden_states=True), fp32_head(input_ids=ids, output_hidden_states=True)
    assert torch.equal(a.hidden_states[-1], b.hidden_states[-1])  # identical trunks (tied embedding cast back)
    exact = torch.log_softmax(b.hidden_states[-1].double() @ bf16.lm_head.weight.double().T, dim=-1)

    def token_logp(logits):
        return torch.log_softmax(logits.double(), dim=-1)[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)

    err_bf16 = (token_logp(a.logits) - token_logp(exact)).abs().max().item()
    err_fp32 = (token_logp(b.logits) - token_logp(exact)).abs().max().item()
    assert a.logits.dtype == torch.bfloat16 and b.logits.dtype == torch.float32
    assert err_bf16 > 1e-4 and err_fp32 < 1e-5 and err_fp32 < err_bf16 / 100
