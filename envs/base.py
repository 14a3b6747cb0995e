"""The environment protocol: where prompts come from and what a correct answer is.

An `Env` serves an endless, deterministic stream of training prompts addressed by position
(`train_prompts(position, count)`), and a fixed held-out validation set. Addressing by position
instead of iterating makes resume exact: a checkpoint stores one integer, and resuming at an epoch
boundary is no special case. Multi-turn environments (SWE) extend the same protocol with a
`step` that answers the model's tool calls; single-turn environments (math) have none.

A `MultiTurnEnv` runs episodes: `reset(prompt)` starts one (a sandbox with the task's repository),
`step(episode, assistant_text)` answers one assistant turn with observation messages (tool
results) or ends the episode, and `finish(episode, reason)` ends one the rollout stopped (token
budget). The rollout that drives them through an engine is rl/rollout/multiturn.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

import hashlib
import json

import numpy as np


def derive_seed(*parts: object) -> int:
    """A seed in [0, 2**31) from any tuple of ints and strings, stable across processes and runs
    (unlike hash()). Below 2**31 so that reasoning-gym's `seed + index` stays a valid 32-bit seed."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**31


def jsonl_objects(path: str | Path) -> Iterator[tuple[str, int, Any]]:
    """(where, line number, value) for every non-blank line of a JSONL file, `where` being
    "path:line" for error messages; a line that is not JSON raises ValueError naming it."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            yield f"{path}:{lineno}", lineno, value


@dataclass(frozen=True)
class Prompt:
    """One task instance.

    `messages` is the chat to render with the tokenizer's chat template (the trainer renders it);
    `answer` is the gold answer that verifiable rewards check against; `meta` carries what the
    environment knows about the task (family, difficulty, source index) and is logged with samples.
    """

    id: str
    messages: tuple[dict[str, str], ...]
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    """The environment's answer to one assistant turn."""

    observations: list[dict[str, str]]
    """Messages to append to the chat (role "tool" or "user"); empty when the episode is done."""
    done: bool
    info: dict[str, Any] = field(default_factory=dict)
    """When done: what the episode came to (for rewards and samples.jsonl), JSON values only."""


@runtime_checkable
class Env(Protocol):
    name: str

    def train_prompts(self, position: int, count: int) -> list[Prompt]:
        """Prompts at positions [position, position + count) of the training stream.

        The stream runs over the training split epoch after epoch, each epoch in its own seeded
        order, so the same position always gives the same prompt."""
        ...

    @property
    def epoch_size(self) -> int:
        """Number of distinct training prompts in one epoch."""
        ...

    def val_prompts(self) -> list[Prompt]:
        """The held-out validation prompts (never in the training stream), in a fixed order."""
        ...

    def gold_completion(self, prompt: Prompt) -> str:
        """A correct assistant reply for `prompt`, used by the supervised warm start."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MultiTurnEnv(Env, Protocol):
    """An environment that answers the model turn by turn (tool calls in, tool results out)."""

    max_episode_tokens: int
    """Budget of an episode in tokens, prompt and all turns and observations included."""

    def reset(self, prompt: Prompt) -> Any:
        """Start an episode for `prompt`; returns the env's episode handle."""
        ...

    def step(self, episode: Any, assistant_text: str) -> StepResult:
        """Answer one assistant turn. Never raises for anything the model wrote: malformed tool
        calls become error observations."""
        ...

    def finish(self, episode: Any, reason: str) -> dict[str, Any]:
        """End an episode that is not done (the rollout ran out of tokens); returns its info.
        Releases the episode's resources; harmless on an episode that already ended."""
        ...


def is_multi_turn(env: Env) -> bool:
    return isinstance(env, MultiTurnEnv)


class EpochOrder:
    """The order of an endless training stream over `size` items: position p is item perm_e[p mod
    size] of epoch e = p div size, perm_e a permutation seeded by (seed, "epoch", e). The last two
    epochs' permutations are cached (a batch touches at most two)."""

    def __init__(self, size: int, seed: int):
        if size < 1:
            raise ValueError(f"a training stream needs at least one item, got {size}")
        self.size, self.seed = size, seed
        self._perms: dict[int, np.ndarray] = {}

    def indices(self, position: int, count: int) -> list[int]:
        """Item indices at positions [position, position + count)."""
        if position < 0 or count < 0:
            raise ValueError(f"position and count must be non-negative, got position={position}, count={count}")
        return [int(self.permutation(p // self.size)[p % self.size]) for p in range(position, position + count)]

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) >= 2:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng(derive_seed(self.seed, "epoch", epoch)).permutation(self.size)
        return self._perms[epoch]
