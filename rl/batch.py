"""Rollouts as tensors, and the policy's per-token log-probs of them.

A batch keeps prompts and completions apart: per-token tensors are [B, T] over completion tokens
only (T = the longest completion), which is all that losses, advantages and masks ever index. For a
forward pass a micro-batch is laid out as left-padded prompts followed by right-padded completions,
so every completion starts at the same column and the logits that predict it are one slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rl.regularizers import entropy_from_logits
from rl.rollout.base import Completion


@dataclass
class RolloutBatch:
    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    group_ids: torch.Tensor  # [B] index of the prompt each completion answers
    rewards: torch.Tensor  # [B]
    mask: torch.Tensor  # [B, T] 1 on completion tokens the policy sampled (0 on padding, forced text and env tokens)
    engine_logp: torch.Tensor  # [B, T] the engine's log-probs of the sampled tokens
    truncated: torch.Tensor  # [B] bool: the completion stopped on the token budget
    advantages: torch.Tensor | None = None  # [B, T]
    old_logp: torch.Tensor | None = None  # [B, T] the sampling policy's log-probs, as the trainer computes them
    ref_logp: torch.Tensor | None = None  # [B, T] the reference policy's log-probs
    values: torch.Tensor | None = None  # [B, T] the critic's V(s_t) when the batch was sampled
    returns: torch.Tensor | None = None  # [B, T] the critic's targets (GAE)

    def __len__(self) -> int:
        return len(self.completion_ids)

    def select(self, index: torch.Tensor | list[int]) -> "RolloutBatch":
        """The sub-batch of the given sequences (per-token tensors cut to its longest completion)."""
        index = torch.as_tensor(index, dtype=torch.long)
        width = max((len(self.completion_ids[i]) for i in index.tolist()), default=0)
        pick = lambda t: None if t is None else t[index][:, :width] if t.dim() == 2 else t[index]  # noqa: E731
        return RolloutBatch(
            prompt_ids=[self.prompt_ids[i] for i in index.tolist()],
            completion_ids=[self.completion_ids[i] for i in index.tolist()],
            group_ids=pick(self.group_ids),
            rewards=pick(self.rewards),
            mask=pick(self.mask),
            engine_logp=pick(self.engine_logp),
            truncated=pick(self.truncated),
            advantages=pick(self.advantages),
            old_logp=pick(self.old_logp),
            ref_logp=pick(self.ref_logp),
            values=pick(self.values),
            returns=pick(self.returns),
        )


def make_batch(
    groups: list[list[Completion]], rewards: list[float], forced: list[list[list[bool]]] | None = None
) -> RolloutBatch:
    """Flatten groups of completions (one group per prompt) into a RolloutBatch. `forced` marks, per
    completion, tokens the policy did not sample (e.g. an interruption text); they leave the mask."""
    flat = [c for g in groups for c in g]
    forced_flat = [f for g in forced for f in g] if forced is not None else None
    group_ids = torch.tensor([gi for gi, g in enumerate(groups) for _ in g], dtype=torch.long)
    width = max((len(c.token_ids) for c in flat), default=0)
    mask = torch.zeros(len(flat), width)
    engine_logp = torch.zeros(len(flat), width)
    for i, c in enumerate(flat):
        # multi-turn episodes: 0 on the environment's tokens (its observations)
        mask[i, : len(c.token_ids)] = 1.0 if c.loss_mask is None else torch.tensor(c.loss_mask, dtype=torch.float32)
        if forced_flat is not None and any(forced_flat[i]):
            mask[i, : len(c.token_ids)] *= 1.0 - torch.tensor(forced_flat[i], dtype=torch.float32)
        engine_logp[i, : len(c.token_ids)] = torch.tensor(c.logprobs, dtype=torch.float32)
    return RolloutBatch(
        prompt_ids=[c.prompt_ids for c in flat],
        completion_ids=[c.token_ids for c in flat],
        group_ids=group_ids,
        rewards=torch.tensor(rewards, dtype=torch.float32),
        mask=mask,
        engine_logp=engine_logp,
        truncated=torch.tensor([c.finish_reason == "length" for c in flat], dtype=torch.bool),
    )


def layout(prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int):
    """Left-padded prompts then right-padded completions: (input_ids, attention_mask, position_ids)
    [b, P + T], with T the longest completion; every completion starts at column P."""
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
    return input_ids, attention_mask, position_ids


@dataclass
class ForwardOutput:
    logp: torch.Tensor  # [b, T] log π of each completion token (0 past its end)
    entropy: torch.Tensor | None  # [b, T] entropy of π at each completion position
    hidden: torch.Tensor | None  # [b, T, H] the last hidden state at the positions that predict completion tokens


def sequence_forward(
    model: torch.nn.Module,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    pad_id: int,
    temperature: float,
    with_entropy: bool = False,
    entropy_grad: bool = False,
    with_hidden: bool = False,
) -> ForwardOutput:
    """One forward pass over prompts + completions: the log-probs of the completion tokens at
    `temperature`, the entropy if asked (with its gradient only if `entropy_grad`, for an entropy
    bonus), and the final hidden states if asked (for a value head on the policy's trunk)."""
    device = next(model.parameters()).device
    input_ids, attention_mask, position_ids = layout(prompt_ids, completion_ids, pad_id)
    T = max(len(c) for c in completion_ids)
    P = input_ids.shape[1] - T
    targets = input_ids[:, P:]
    # logits_to_keep=T+1: the LM head runs only over the positions that predict completion tokens
    out = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=T + 1,
        output_hidden_states=with_hidden,
    )
    logits = out.logits[:, :-1].float() / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.to(device).unsqueeze(-1)).squeeze(-1)
    completion_mask = attention_mask[:, P:].to(device)
    logp = logp * completion_mask
    entropy = None
    if with_entropy:
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            entropy = entropy_from_logits(logits) * completion_mask
    hidden = out.hidden_states[-1][:, P - 1 : P + T - 1] if with_hidden else None
    return ForwardOutput(logp=logp, entropy=entropy, hidden=hidden)


def sequence_logprobs(
    model: torch.nn.Module,
    prompt_ids: list[list[int]],
    completion_ids: list[list[int]],
    pad_id: int,
    temperature: float,
    with_entropy: bool = False,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log-probs [b, T], entropy [b, T] or None) of `sequence_forward`."""
    out = sequence_forward(model, prompt_ids, completion_ids, pad_id, temperature, with_entropy, entropy_grad)
    return out.logp, out.entropy


def forward_pass(model, batch: RolloutBatch, pad_id: int, temperature: float, micro_batch_size: int,
                 value_fn=None, with_hidden: bool = False):
    """A forward-only pass over the batch in micro-batches (call under torch.no_grad): the log-probs
    of `model` [B, T] (None if model is None), the values `value_fn(prompt_ids, completion_ids,
    pad_id, hidden)` [B, T] (None if value_fn is None; `hidden` is the model's last hidden state
    when with_hidden), and the number of tokens that went through."""
    logp = torch.zeros_like(batch.mask) if model is not None else None
    values = torch.zeros_like(batch.mask) if value_fn is not None else None
    tokens = 0
    for idx in torch.split(torch.arange(len(batch)), micro_batch_size):
        micro = batch.select(idx)
        width = micro.mask.shape[1]
        hidden = None
        if model is not None:
            out = sequence_forward(model, micro.prompt_ids, micro.completion_ids, pad_id, temperature, with_hidden=with_hidden)
            logp[idx, :width], hidden = out.logp.float().cpu(), out.hidden
        if value_fn is not None:
            values[idx, :width] = value_fn(micro.prompt_ids, micro.completion_ids, pad_id, hidden).float().cpu()
        tokens += sum(len(p) + len(c) for p, c in zip(micro.prompt_ids, micro.completion_ids))
    return logp, values, tokens
