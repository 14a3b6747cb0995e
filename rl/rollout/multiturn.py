"""Multi-turn rollouts: drive any Engine through a MultiTurnEnv's episodes, turn by turn.

    prompt ids ─► engine: assistant turn ─► env.step: tool results ─► chat template: observation
        tokens ─► engine: next turn ─► ... ─► episode done (submit, turns, time, tokens)

Token in, token out: each turn's prompt is the previous prompt plus exactly the tokens the engine
sampled plus the observation's tokens, never a re-tokenisation of text, so the trainer scores the
very tokens that were sampled. Observations are rendered through the tokenizer's chat template
with SkyRL's fixed-base method: render a fixed conversation ending with an assistant turn, render
it again with the observation messages and the next assistant header, and take the difference;
the template's text between the assistant's end-of-turn token and the next message (Qwen's "\\n")
is not sampled by the model, so it is part of the observation.

The result is one Completion per episode whose `token_ids` interleave model and environment
tokens, with `loss_mask` 1 on the model's tokens only (their engine log-probs kept, 0 elsewhere)
and `env_info` the environment's final report (the hidden tests' verdict). An episode ends when
the env says so, when a turn stops without an end-of-turn token (the per-turn budget,
engine.max_new_tokens), or when the next observation would not fit in env.max_episode_tokens;
the env then grades what the workspace holds (env.finish).
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from envs.base import MultiTurnEnv, Prompt, StepResult
from rl.rollout.base import Completion, Engine, SamplingParams


class ObservationTokenizer:
    """Token ids of observation messages as the chat template renders them after an assistant turn."""

    BASE = ({"role": "user", "content": "U"}, {"role": "assistant", "content": "A"})

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        base = self._render(list(self.BASE), generation_prompt=False)
        eos = tokenizer.eos_token_id
        if eos not in base:
            raise ValueError("the chat template does not end an assistant turn with the tokenizer's EOS token; "
                             "multi-turn rollouts need one to know where the model's turn ends")
        last_eos = len(base) - 1 - base[::-1].index(eos)
        self.base = base
        self.tail = base[last_eos + 1 :]  # e.g. Qwen's "\n" after <|im_end|>

    def _render(self, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True,
                                                       return_dict=False))

    def __call__(self, messages: list[dict[str, str]]) -> list[int]:
        full = self._render(list(self.BASE) + list(messages), generation_prompt=True)
        if full[: len(self.base)] != self.base:
            raise ValueError("the chat template renders the earlier turns differently once messages follow them "
                             "(e.g. it strips reasoning from past turns); token-in-token-out multi-turn rollouts need "
                             "a template whose renderings extend each other")
        return self.tail + full[len(self.base) :]


@dataclass
class _Trajectory:
    prompt: Prompt
    prompt_ids: list[int]
    episode: Any = None
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    turn_text: str = ""
    cut: bool = False
    done: bool = False
    finish_reason: str = "stop"
    info: dict[str, Any] = field(default_factory=dict)
    turns: int = 0

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.tokens)


def multiturn_rollout(
    engine: Engine,
    env: MultiTurnEnv,
    tokenizer,
    prompts: list[Prompt],
    prompt_ids: list[list[int]],
    params: SamplingParams,
    observation_tokens: ObservationTokenizer | None = None,
) -> tuple[list[list[Completion]], dict[str, float]]:
    """`params.n` episodes per prompt; returns their completions grouped by prompt, and metrics
    (rollout/...) about turns, tool use, endings and time spent in the environment."""
    observe = observation_tokens or ObservationTokenizer(tokenizer)
    budget = env.max_episode_tokens
    trajs = [_Trajectory(p, list(ids)) for p, ids in zip(prompts, prompt_ids) for _ in range(params.n)]
    env_seconds = 0.0
    pool = ThreadPoolExecutor(max_workers=max(1, getattr(env, "parallel_episodes", 8)))
    try:
        t0 = time.perf_counter()
        for t, episode in zip(trajs, pool.map(lambda t: env.reset(t.prompt), trajs)):
            t.episode = episode
        env_seconds += time.perf_counter() - t0
        for t in trajs:
            if t.length >= budget:  # the prompt alone fills the budget
                _end(env, t, "max_tokens")
        while active := [t for t in trajs if not t.done]:
            # one assistant turn for every live episode, batched through the engine
            room = [budget - t.length for t in active]
            turn = dataclasses.replace(params, n=1, max_new_tokens=min(params.max_new_tokens, max(room)))
            outputs = engine.generate([t.prompt_ids + t.tokens for t in active], turn)
            for t, out, r in zip(active, outputs, room):
                c = out[0]
                ids = c.token_ids[:r]
                t.tokens += ids
                t.logprobs += c.logprobs[: len(ids)]
                t.mask += [1] * len(ids)
                t.versions += c.policy_versions[: len(ids)]
                t.turn_text = tokenizer.decode(ids, skip_special_tokens=True)
                t.cut = c.finish_reason == "length" or len(c.token_ids) > r
                t.turns += 1
            # the environment answers every turn that ended properly, in parallel
            t0 = time.perf_counter()
            results = list(pool.map(lambda t: None if t.cut else _step(env, t), active))
            env_seconds += time.perf_counter() - t0
            for t, result in zip(active, results):
                if t.cut:
                    _end(env, t, "max_tokens")
                elif result.done:
                    t.done, t.info = True, result.info
                else:
                    obs = observe(result.observations)
                    if t.length + len(obs) >= budget:  # no room for the observation and a reply
                        _end(env, t, "max_tokens")
                        continue
                    t.tokens += obs
                    t.logprobs += [0.0] * len(obs)
                    t.mask += [0] * len(obs)
                    t.versions += [t.versions[-1] if t.versions else 0] * len(obs)
    finally:
        for t in trajs:  # an exception above must not leave sandboxes behind
            if not t.done and t.episode is not None:
                try:
                    env.finish(t.episode, "error")
                except Exception:  # noqa: BLE001
                    pass
        pool.shutdown(wait=True)

    completions = [
        Completion(
            prompt_ids=t.prompt_ids, token_ids=t.tokens, logprobs=t.logprobs, finish_reason=t.finish_reason,
            text=tokenizer.decode(t.tokens, skip_special_tokens=True), policy_versions=t.versions,
            loss_mask=t.mask, env_info=t.info,
        )
        for t in trajs
    ]
    groups = [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
    return groups, _metrics(trajs, env_seconds)


def _step(env: MultiTurnEnv, t: _Trajectory) -> StepResult:
    try:
        return env.step(t.episode, t.turn_text)
    except Exception as e:  # noqa: BLE001  (the env promises not to raise; if it does, end the episode)
        info = env.finish(t.episode, "error")
        return StepResult([], True, {**info, "error": info.get("error") or f"{type(e).__name__}: {e}"})


def _end(env: MultiTurnEnv, t: _Trajectory, reason: str) -> None:
    t.done, t.finish_reason = True, "length"
    t.info = env.finish(t.episode, reason)


def episode_prompt(prompt: Prompt, completion: Completion) -> Prompt:
    """The prompt as reward functions see a completion: with a multi-turn episode's report in
    meta["env_info"] (rewards/swe.py reads the verdict there); unchanged for single-turn."""
    if completion.env_info is None:
        return prompt
    return dataclasses.replace(prompt, meta={**prompt.meta, "env_info": completion.env_info})


def _metrics(trajs: list[_Trajectory], env_seconds: float) -> dict[str, float]:
    n = max(len(trajs), 1)
    mean = lambda key: sum(float(t.info.get(key) or 0) for t in trajs) / n  # noqa: E731
    m = {
        "rollout/turns": sum(t.turns for t in trajs) / n,
        "rollout/tool_calls": mean("tool_calls"),
        "rollout/tool_errors": mean("tool_errors"),
        "rollout/submitted_frac": mean("submitted"),
        "rollout/resolved_frac": sum(bool((t.info.get("verdict") or {}).get("resolved")) for t in trajs) / n,
        "rollout/env_errors": float(sum(bool(t.info.get("error")) for t in trajs)),
        "rollout/episode_tokens": sum(t.length for t in trajs) / n,
        "rollout/observation_tokens": sum(len(t.mask) - sum(t.mask) for t in trajs) / n,
        "rollout/env_seconds": env_seconds,
    }
    for reason in sorted({str(t.info.get("end_reason")) for t in trajs}):
        m[f"rollout/end/{reason}"] = sum(str(t.info.get("end_reason")) == reason for t in trajs) / n
    return m
