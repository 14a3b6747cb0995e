"""The rollout engine protocol: prompts in (as token ids), completions out.

Engines take token ids, not text, and return token ids: the trainer scores exactly the tokens that
were sampled, with no re-tokenisation in between. Every completion carries the engine's own
log-probs of its tokens (for importance-sampling corrections against the trainer's), its finish
reason and the policy version that produced each token (asynchronous engines may change weights in
the middle of a completion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    """Completions per prompt."""
    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k."""


@dataclass
class Completion:
    prompt_ids: list[int]
    token_ids: list[int]
    """Sampled tokens, including the end-of-sequence token when the completion stopped on it."""
    logprobs: list[float]
    """The engine's log-prob of each sampled token under the temperature-scaled distribution, i.e.
    the distribution the trainer computes. With top-p/top-k truncation on, the hf engine reports the
    untruncated distribution and the vllm engines the truncated one they sampled from
    (docs/engines.md)."""
    finish_reason: Literal["stop", "length"]
    text: str
    """The decoded completion without special tokens."""
    policy_versions: list[int]
    """The policy version that sampled each token."""
    # Multi-turn episodes (rl/rollout/multiturn.py): `token_ids` interleaves the model's turns with
    # the environment's observations; only the model's own tokens are trained on.
    loss_mask: list[int] | None = None
    """1 on tokens the model sampled, 0 on tokens the environment wrote (their logprobs are 0);
    None: every token is the model's (single-turn)."""
    env_info: dict[str, Any] | None = None
    """What a multi-turn environment reported at the end of the episode (the hidden tests'
    verdict, test output, turns), for rewards and samples.jsonl; None for single-turn."""


@runtime_checkable
class Engine(Protocol):
    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        """`params.n` completions for each prompt, in prompt order."""
        ...

    def update_weights(self, model: torch.nn.Module, version: int) -> None:
        """Make the engine sample from `model`'s current weights, labelled `version`."""
        ...

    def close(self) -> None: ...
