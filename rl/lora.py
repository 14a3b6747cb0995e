"""LoRA (Hu et al. 2021) through peft: adapters on a model, and the merged weights the engines load.

The trainer wraps its policy (and a separate critic's trunk) with `apply_lora`; only the adapters
train. The rollout engines never see adapters: the vLLM engines load merged weights
W + (alpha / r) B A under the Hugging Face checkpoint's names (`merged_weight`, used by
rl.weights.full_param_buckets, whose merge is also final_model: rl.weights.merged_state_dict),
computed out of place, so the training weights are never merged and unmerged (TRL's
`_move_model_to_vllm` and verl merge in place and unmerge after, which drifts in bf16). The hf
engine samples from the peft model itself, whose forward adds the adapters.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from rl.config import LoraConfig

ADAPTER_DIR = "adapter"
"""The adapter's directory inside a checkpoint and final_model (peft's save_pretrained layout)."""


def apply_lora(model: torch.nn.Module, cfg: "LoraConfig", task_type: str | None = "CAUSAL_LM") -> torch.nn.Module:
    """`model` with fresh LoRA adapters (B = 0, so its outputs are unchanged) and every other weight
    frozen. Returns the peft model."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                              target_modules=cfg.target_modules, task_type=task_type)
    try:
        return get_peft_model(model, peft_cfg)
    except ValueError as e:  # target modules that the model does not have
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(f"model.lora.target_modules {cfg.target_modules!r}: {e}; this model's linear layers are "
                         f"named {names} (or use all-linear)") from None


def lora_layers(model: torch.nn.Module) -> dict[int, torch.nn.Module]:
    """id(base weight) -> its peft LoRA layer, for every adapted layer of `model` (empty without LoRA)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    return {id(m.base_layer.weight): m for m in model.modules() if isinstance(m, LoraLayer)}


def merged_weight(layer: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """`weight` (the layer's base weight, full) plus the deltas of its active adapters, in the
    weight's dtype; the base weight itself is left alone."""
    if getattr(layer, "merged", False) or getattr(layer, "disable_adapters", False):
        return weight
    with torch.no_grad():
        out = weight.clone()
        for name in layer.active_adapters:
            if name in layer.lora_A:
                out += layer.get_delta_weight(name).to(out.dtype)
    return out


def is_lora_param(name: str) -> bool:
    """A parameter of the adapters themselves (not a weight the engines load)."""
    return ".lora_" in name


def save_adapter(model: torch.nn.Module, path: Path) -> None:
    """The adapter alone (adapter_config.json + adapter_model.safetensors), as peft saves it."""
    model.save_pretrained(path)

