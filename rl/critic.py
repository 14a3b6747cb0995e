"""PPO's learned critic: a value model (or a value head on the policy's trunk), its clipped value
loss, explained variance, and its own optimizer.

The critic predicts V(s_t), the expected return from the state before each completion token t
(the prompt and the tokens before t); GAE (rl/advantages.py) turns values and rewards into
advantages and the critic's return targets. Values are read at the same positions as the logits
that predict each completion token.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from transformers import AutoModel

from rl.batch import layout
from rl.config.critic import CriticConfig
from rl.models import DTYPES
from rl.parallel.loss import backward


class ValueHead(torch.nn.Module):
    """V = w·h + b on a hidden state h; zero-initialised, so V starts at 0."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)


class ValueModel(torch.nn.Module):
    """A transformer trunk (AutoModel: no LM head) and a ValueHead on its last hidden state."""

    def __init__(self, path: str | Path, dtype: str, lora=None):
        super().__init__()
        from rl.models import resolve_model_path

        self.trunk = AutoModel.from_pretrained(resolve_model_path(path), dtype=DTYPES[dtype])
        hidden_size = self.trunk.config.hidden_size
        if lora is not None:  # model.lora: adapters on the trunk too; the head trains whole
            from rl.lora import apply_lora

            self.trunk = apply_lora(self.trunk, lora, task_type=None)
        self.head = ValueHead(hidden_size)

    def forward(self, input_ids, attention_mask, position_ids, num_completion_tokens: int) -> torch.Tensor:
        T = num_completion_tokens
        hidden = self.trunk(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        return self.head(hidden[:, -(T + 1) : -1])


def value_loss(values, old_values, returns, mask, value_clip: float | None) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token ½·max((V − R)², (V_clip − R)²), V_clip = V_old + clip(V − V_old, −c, c) (PPO2's
    value clipping, as TRL and verl); ½·(V − R)² without clipping. Metrics over the mask."""
    loss = (values - returns).square()
    clipped = torch.zeros_like(mask, dtype=torch.bool)
    if value_clip is not None:
        v_clip = old_values + torch.clamp(values - old_values, -value_clip, value_clip)
        loss_clip = (v_clip - returns).square()
        clipped = loss_clip > loss
        loss = torch.maximum(loss, loss_clip)
    n = mask.sum().clamp(min=1)
    metrics = {
        "critic/value_clip_frac": ((clipped.float() * mask).sum() / n).item(),
        "critic/value_mean": ((values.detach() * mask).sum() / n).item(),
    }
    return 0.5 * loss, metrics


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) over the masked tokens: 1 for a perfect critic, 0 for one that
    predicts the mean, negative for worse (NaN when the returns do not vary)."""
    on = mask > 0
    r, v = returns[on].double(), values[on].double()
    var_r = r.var(unbiased=False)
    return (1.0 - (r - v).var(unbiased=False) / var_r).item() if var_r > 0 else math.nan


class Critic:
    """The critic's module and optimizer, saved and restored with the policy's checkpoint. For a
    value head, `values` reads the policy's hidden states.

    DDP, and fsdp on CPU processes (the policy sharded by FSDP2, the critic under DDP): module and
    optimizer prepared by accelerate. DeepSpeed (zero2/zero3): a separate critic is an engine of its
    own, prepared under the "critic" plugin (rl.parallel.strategy.deepspeed_plugins: the policy's
    ZeRO config with the critic's gradient_clipping), so it keeps its own lr, betas and clipping;
    its backward and step go through rl.parallel.loss.backward. A value head (H + 1 parameters,
    trained through the policy's backward) is replicated on every rank outside DeepSpeed: its
    gradients are averaged over the ranks in step(), as DDP would, and it is checkpointed with
    register_for_checkpointing."""

    def __init__(self, cfg: CriticConfig, start_path: Path, dtype: str, hidden_size: int, accelerator: Accelerator,
                 lora=None):
        self.cfg = cfg
        self.accelerator = accelerator
        module = ValueHead(hidden_size) if cfg.model == "value_head" else ValueModel(cfg.path or start_path, dtype, lora)
        optimizer = torch.optim.AdamW(
            [p for p in module.parameters() if p.requires_grad], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
        if accelerator.distributed_type == DistributedType.FSDP:
            raise ValueError("algorithm.critic (PPO's critic) with distributed.strategy 'fsdp' is tested on CPU processes "
                             "only (FSDP2 applied by Asymptote, the critic under DDP); on GPUs use 'ddp', 'zero2' or 'zero3'")
        self.deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
        if self.deepspeed and self.shares_trunk:
            self.module, self.optimizer = module.to(accelerator.device), optimizer
            accelerator.register_for_checkpointing(self.module, self.optimizer)
        elif self.deepspeed:
            accelerator.state.select_deepspeed_plugin("critic")
            try:
                self.module, self.optimizer = accelerator.prepare(module, optimizer)
            finally:
                accelerator.state.select_deepspeed_plugin("policy")
        else:
            self.module, self.optimizer = accelerator.prepare(module, optimizer)

    @property
    def shares_trunk(self) -> bool:
        return self.cfg.model == "value_head"

    def values(self, prompt_ids, completion_ids, pad_id: int, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """V(s_t) [b, T] (zeros past each completion's end); `hidden` [b, T, H] for a value head."""
        if self.shares_trunk:
            v = self.module(hidden)
        else:
            device = next(self.module.parameters()).device
            input_ids, attention_mask, position_ids = layout(prompt_ids, completion_ids, pad_id)
            T = max(len(c) for c in completion_ids)
            v = self.module(input_ids.to(device), attention_mask.to(device), position_ids.to(device), T)
        lengths = torch.tensor([len(c) for c in completion_ids], device=v.device)
        return v * (torch.arange(v.shape[1], device=v.device) < lengths.unsqueeze(1))

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        """Backward of a separate critic's value loss on one micro-batch (`last`: it ends the
        mini-batch; under DeepSpeed the engine reduces, clips and steps there)."""
        backward(self.accelerator, self.module, loss, last)

    def step(self) -> float:
        """Clip the gradient norm, take an optimizer step, zero the gradients; returns the norm
        (before clipping). A DeepSpeed engine has stepped in its last backward: only the norm."""
        if self.deepspeed and not self.shares_trunk:
            return float(self.module.get_global_grad_norm())
        params = list(self.module.parameters())
        max_norm = self.cfg.max_grad_norm or math.inf
        if self.deepspeed:  # the replicated value head: average over ranks (the loss is scaled by the world size)
            world = self.accelerator.num_processes
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                if world > 1:
                    torch.distributed.all_reduce(p.grad)
                    p.grad.div_(world)
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            norm = self.accelerator.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)
