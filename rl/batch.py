"""Rollouts as tensors, and the policy's per-token log-probs of them.

A batch keeps prompts and completions apart: per-token tensors are [B, T] over completion tokens
only (T = the longest completion), which is all that losses, advantages and masks ever index. For a
forward pass a micro-batch is laid out as left-padded prompts followed by right-padded completions,
so every completion starts at the same column and the logits that predict it are one slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl.losses import entropy_from_logits
from rl.rollout.base import Completion


@dataclass
class RolloutBatch:
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    group_ids: torch.Tensor  # [B] index of the prompt each completion answers
    rewards: torch.Tensor  # [B]
    mask: torch.Tensor  # [B, T] 1 on completion tokens the model sampled (0 on env tokens of multi-turn episodes)
    engine_logp: torch.Tensor  # [B, T] the engine's log-probs of the sampled tokens
    advantages: torch.Tensor | None = None  # [B, T]
    old_logp: torch.Tensor | None = None  # [B, T] the sampling policy's log-probs, as the trainer computes them
    ref_logp: torch.Tensor | None = None  # [B, T] the reference policy's log-probs

    def __len__(self) -> int:
        return len(self.completion_ids)

    def select(self, index: torch.Tensor | list[int]) -> "RolloutBatch":
        """The sub-batch of the given sequences (per-token tensors cut to its longest completion)."""
        index = torch.as_tensor(index, dtype=torch.long)
        # the longest completion, not the mask's sum: multi-turn masks have zeros inside
        width = max((len(self.completion_ids[i]) for i in index.tolist()), default=0)
        pick = lambda t: None if t is None else t[index][:, :width] if t.dim() == 2 else t[index]  # noqa: E731
        return RolloutBatch(
            prompt_ids=[self.prompt_ids[i] for i in index.tolist()],
            completion_ids=[self.completion_ids[i] for i in index.tolist()],
            group_ids=pick(self.group_ids),
            rewards=pick(self.rewards),
            mask=pick(self.mask),
            engine_logp=pick(self.engine_logp),
            advantages=pick(self.advantages),
            old_logp=pick(self.old_logp),
            ref_logp=pick(self.ref_logp),
        )


def make_batch(groups: list[list[Completion]], rewards: list[float]) -> RolloutBatch:
    """Flatten groups of completions (one group per prompt) into a RolloutBatch."""
    flat = [c for g in groups for c in g]
    group_ids = torch.tensor([gi for gi, g in enumerate(groups) for _ in g], dtype=torch.long)
    width = max((len(c.token_ids) for c in flat), default=0)
    mask = torch.zeros(len(flat), width)
    engine_logp = torch.zeros(len(flat), width)
    for i, c in enumerate(flat):
        mask[i, : len(c.token_ids)] = 1.0 if c.loss_mask is None else torch.tensor(c.loss_mask, dtype=torch.float32)
        engine_logp[i, : len(c.token_ids)] = torch.tensor(c.logprobs, dtype=torch.float32)
    return RolloutBatch(
        prompt_ids=[c.prompt_ids for c in flat],
        completion_ids=[c.token_ids for c in flat],
        group_ids=group_ids,
        rewards=torch.tensor(rewards, dtype=torch.float32),
        mask=mask,
        engine_logp=engine_logp,
    )


def sequence_logprobs(
    model: torch.nn.Module,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    pad_id: int,
    temperature: float,
    with_entropy: bool = False,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(token) of each completion token under `model` at `temperature` [b, T], and the
    entropy of π at each completion position [b, T] if asked (with its gradient only if
    `entropy_grad`, for an entropy bonus); zeros past each completion's end."""
    device = next(model.parameters()).device
    P = max(len(p) for p in prompt_ids)
    T = max(len(c) for c in completion_ids)
    input_ids = torch.full((len(prompt_ids), P + T), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        input_ids[i, P - len(p) : P] = torch.tensor(p)
        input_ids[i, P : P + len(c)] = torch.tensor(c)
        attention_mask[i, P - len(p) : P + len(c)] = 1
    # positions count real tokens only, as generate() does for left-padded prompts
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    targets = input_ids[:, P:]
    # logits_to_keep=T+1: the LM head runs only over the positions that predict completion tokens
    logits = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=T + 1,
    ).logits[:, :-1]
    logits = logits.float() / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1)
    completion_mask = attention_mask[:, P:].to(device)
    logp = logp * completion_mask
    entropy = None
    if with_entropy:
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            entropy = entropy_from_logits(logits) * completion_mask
    return logp, entropy
