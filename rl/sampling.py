"""Steps 1-3 of the loop, prompts, rollouts and rewards, with the components that change what is
sampled: No-Positive-Resampling's curriculum (which prompts), a thinking budget (how completions
end), DAPO's overlong shaping (their reward) and DAPO's dynamic sampling (how many rounds).

`Sampler.sample` returns a `Rollouts` holding everything sampled in an iteration; the metrics and
samples logged about it are pure functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from envs.base import Env, Prompt, is_multi_turn
from rewards import RewardResult, compute_rewards, concat_rewards
from rl.checkpoint import TrainerState
from rl.config import Recipe
from rl.filters import informative_groups, retired_prompts, take_active_prompts, update_pass_rates
from rl.length import generate_with_thinking_budget, shape_rewards
from rl.logger import timer
from rl.models import render_prompt
from rl.rollout.base import Completion, Engine, SamplingParams
from rl.rollout.judge import EngineJudge
from rl.rollout.multiturn import episode_prompt, multiturn_rollout


@dataclass
class Rollouts:
    """Everything sampled in one iteration (all rounds of dynamic sampling), prompt by prompt."""

    prompts: list[Prompt]
    groups: list[list[Completion]]
    forced: list[list[list[bool]]]
    """Per completion, the tokens the policy did not sample (the interruption text)."""
    rewards: RewardResult
    """As the reward functions scored them."""
    shaped: list[float]
    """rewards.total plus the overlong penalty, per completion: what the advantages see."""
    train: list[int]
    """The groups to train on (dynamic sampling keeps the informative ones)."""
    rounds: int = 1
    """Generation rounds (dynamic sampling)."""
    dynamic: bool = False
    """Whether dynamic sampling chose `train`."""
    skipped: int = 0
    """Prompts skipped because No-Positive-Resampling retired them."""
    episode_metrics: dict[str, float] | None = None
    """A multi-turn env's episode statistics (turns, tool errors, budgets hit; last round)."""

    def training_groups(self) -> tuple[list[list[Completion]], list[float], list[list[list[bool]]]]:
        """(groups, their shaped rewards flat, their forced-token marks) of the groups to train on:
        the arguments of rl.batch.make_batch."""
        G = len(self.groups[0]) if self.groups else 0
        groups = [self.groups[i] for i in self.train]
        rewards = [self.shaped[i * G + j] for i in self.train for j in range(G)]
        return groups, rewards, [self.forced[i] for i in self.train]


class Sampler:
    """Samples the rollouts of an iteration from an environment and an engine (steps 1-3)."""

    def __init__(self, recipe: Recipe, env: Env, engine: Engine, tokenizer):
        self.recipe, self.env, self.engine, self.tokenizer = recipe, env, engine, tokenizer
        e = recipe.engine
        self.params = SamplingParams(n=recipe.algorithm.group_size, max_new_tokens=e.max_new_tokens,
                                     temperature=e.temperature, top_p=e.top_p, top_k=e.top_k)
        length = recipe.algorithm.length
        self.interruption = tokenizer(length.interruption, add_special_tokens=False).input_ids
        self.score = partial(compute_rewards, local_judge=EngineJudge)
        """(completions, prompts, RewardConfig) -> RewardResult, a local judge model (llm_judge with
        backend hf or vllm) served by rl/rollout/judge.py; on N processes the trainer shards it
        (rl.parallel.rollouts.sharded_scorer: each rank scores its share)."""

    def sample(self, state: TrainerState, timings: dict[str, float]) -> Rollouts:
        """prompts_per_iteration prompts with group_size completions each, scored. With DAPO's dynamic
        sampling, repeated (up to max_rounds) until that many groups have differing rewards; the
        surplus of the last round is not trained on. Advances state.data_position."""
        r, algo = self.recipe, self.recipe.algorithm
        n, ds = r.train.prompts_per_iteration, algo.dynamic_sampling
        out = Rollouts([], [], [], None, [], [], rounds=0, dynamic=ds is not None)
        results = []
        while out.rounds < (ds.max_rounds if ds else 1) and len(out.train) < n:
            prompts, skipped = self._next_prompts(state, n)  # 1. prompts
            with timer(timings, "gen"):  # 2. rollouts
                groups, forced, out.episode_metrics = self.generate(prompts, self.params)
            with timer(timings, "reward"):  # 3. rewards (a multi-turn episode's report rides on its prompt)
                result = self.score([c.text for g in groups for c in g],
                                    [episode_prompt(p, c) for p, g in zip(prompts, groups) for c in g], r.reward)
            shaped = shape_rewards(result.total, groups, algo.length, r.engine.max_new_tokens)
            keep = informative_groups(torch.tensor(shaped), algo.group_size) if ds else torch.ones(len(groups), dtype=torch.bool)
            out.train += [len(out.groups) + i for i in torch.nonzero(keep).squeeze(1).tolist()]
            out.prompts += prompts
            out.groups += groups
            out.forced += forced
            out.shaped += shaped
            out.skipped += skipped
            out.rounds += 1
            results.append(result)
        out.train = out.train[:n]
        out.rewards = concat_rewards(results)
        return out

    def generate(self, prompts: list[Prompt], params: SamplingParams, prompt_ids: list[list[int]] | None = None):
        """The engine's completions; per completion, which tokens were forced (a thinking budget's
        interruption text, continued in a second engine call); and a multi-turn env's episode
        metrics (None for single-turn). A multi-turn env (SWE) answers each assistant turn with
        tool results until its episode ends (rl/rollout/multiturn.py); its completions mask the
        env's tokens out of the loss themselves (Completion.loss_mask) and carry its report."""
        if prompt_ids is None:
            prompt_ids = [render_prompt(self.tokenizer, p.messages) for p in prompts]
        if is_multi_turn(self.env):
            groups, metrics = multiturn_rollout(self.engine, self.env, self.tokenizer, prompts, prompt_ids, params)
            return groups, [[[False] * len(c.token_ids) for c in g] for g in groups], metrics
        length = self.recipe.algorithm.length
        if length.thinking_budget is None:
            groups = self.engine.generate(prompt_ids, params)
            return groups, [[[False] * len(c.token_ids) for c in g] for g in groups], None
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        groups, forced = generate_with_thinking_budget(
            self.engine, prompt_ids, params, length.thinking_budget, self.interruption, length.answer_budget, decode
        )
        return groups, forced, None

    def record_pass_rates(self, state: TrainerState, rollouts: Rollouts) -> dict[str, float]:
        """No-Positive-Resampling: store the pass rate of every prompt sampled (state.extra, so it
        survives a resume)."""
        npr = self.recipe.algorithm.no_positive_resampling
        correct = torch.tensor(rollouts.rewards.per_function[self.recipe.reward.verifiable]).view(len(rollouts.groups), -1)
        rates = update_pass_rates(state.extra.get("npr_pass_rates", {}), [p.id for p in rollouts.prompts], correct)
        state.extra["npr_pass_rates"] = rates
        return {"train/npr/retired_prompts": float(len(retired_prompts(rates, npr))),
                "train/npr/skipped_prompts": float(rollouts.skipped)}

    def _next_prompts(self, state: TrainerState, n: int) -> tuple[list[Prompt], int]:
        """The next n training prompts, skipping those No-Positive-Resampling retired; and how many it skipped."""
        npr = self.recipe.algorithm.no_positive_resampling
        if npr is None:
            prompts = self.env.train_prompts(state.data_position, n)
            state.data_position += n
            return prompts, 0
        retired = retired_prompts(state.extra.get("npr_pass_rates", {}), npr)
        prompts, state.data_position, skipped = take_active_prompts(
            self.env.train_prompts, state.data_position, n, retired, self.env.epoch_size
        )
        return prompts, skipped


def rollout_metrics(rollouts: Rollouts, step: int, verifiable: str, group_size: int) -> dict[str, float]:
    """train/ metrics of everything sampled: rewards, lengths, truncation, staleness, solve rates,
    dynamic sampling and No-Positive-Resampling counts. `train/response_length/sum` (completion
    tokens, every one through the engine's forward passes) and `train/generated_tokens/sum` (those
    the policy sampled: a multi-turn episode's observation tokens are not) are popped by the
    trainer for the compute counters."""
    flat = [c for g in rollouts.groups for c in g]
    lengths = torch.tensor([len(c.token_ids) for c in flat], dtype=torch.float32)
    shaped = torch.tensor(rollouts.shaped)
    versions = [v for c in flat for v in c.policy_versions]
    correct = torch.tensor(rollouts.rewards.per_function[verifiable]).view(-1, group_size)
    m = {
        "train/reward": shaped.mean().item(),
        "train/reward_std": shaped.std().item() if len(flat) > 1 else 0.0,
        "train/reward_errors": float(rollouts.rewards.errors),
        "train/response_length/mean": lengths.mean().item(),
        "train/response_length/max": lengths.max().item(),
        "train/response_length/min": lengths.min().item(),
        "train/response_length/sum": lengths.sum().item(),
        "train/generated_tokens/sum": float(sum(len(c.token_ids) if c.loss_mask is None else sum(c.loss_mask)
                                                for c in flat)),
        "train/truncated_frac": sum(c.finish_reason == "length" for c in flat) / len(flat),
        "train/prompt_length": sum(len(c.prompt_ids) for c in flat) / len(flat),
        "train/staleness": step - sum(versions) / max(len(versions), 1),
        "train/solve_all_frac": (correct.min(dim=1).values > 0.5).float().mean().item(),
        "train/solve_none_frac": (correct.max(dim=1).values < 0.5).float().mean().item(),
    }
    m |= {f"train/{k}": v for k, v in rollouts.rewards.metrics.items() if k != "reward/errors"}
    if rollouts.shaped != rollouts.rewards.total:
        m["train/overlong_penalty"] = (shaped - torch.tensor(rollouts.rewards.total)).mean().item()
    if any(any(f) for g in rollouts.forced for f in g):
        m["train/interrupted_frac"] = sum(any(f) for g in rollouts.forced for f in g) / len(flat)
    if rollouts.episode_metrics:
        m |= {f"train/{k}": v for k, v in rollouts.episode_metrics.items()}
    if rollouts.dynamic:
        m["train/dynamic_sampling/rounds"] = float(rollouts.rounds)
        m["train/dynamic_sampling/sampled_prompts"] = float(len(rollouts.groups))
        m["train/dynamic_sampling/kept_prompts"] = float(len(rollouts.train))
    return m


def sample_records(rollouts: Rollouts, iteration: int, step: int, n: int) -> list[dict]:
    """The first `n` prompts of the iteration with their completions, for samples.jsonl."""
    records = []
    for i, (p, g) in enumerate(list(zip(rollouts.prompts, rollouts.groups))[:n]):
        k = len(g)
        records.append({
            "iteration": iteration, "step": step, "prompt_id": p.id,
            "prompt": p.messages[-1]["content"], "answer": p.answer,
            "completions": [c.text for c in g], "rewards": rollouts.shaped[i * k : (i + 1) * k],
            "finish_reasons": [c.finish_reason for c in g],
        })
        if any(c.env_info is not None for c in g):  # multi-turn: verdicts, test output, patches
            records[-1]["env_info"] = [c.env_info for c in g]
    return records
