"""The trainer: one loop that reads as the steps of DESIGN.md.

    for each iteration:
        1. prompts      the environment's next prompts_per_iteration prompts
        2. rollouts     group_size completions per prompt from the engine
        3. rewards      rewards/ scores each completion (a failing reward scores 0, counted)
        4. advantages   rl/advantages.py
        5. filters      e.g. drop zero-variance groups
        6. loss         rl/losses.py, aggregated by per-token weights
        7. optimizer    mini_batches optimizer steps per epoch, epochs passes, gradient accumulation
        8. weight sync, eval, log, checkpoint

Each phase is timed under its own name (train/time/<phase>). Everything runs through `accelerate`,
so one CPU process is the same code as many GPU processes.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from analysis.live import LivePredictor
from envs import is_multi_turn, make_env
from rewards import RewardConfig, RewardFunctionConfig, compute_rewards
from rl.advantages import ADVANTAGES
from rl.batch import RolloutBatch, make_batch, sequence_logprobs
from rl.filters import zero_variance
from rl.checkpoint import TrainerState, latest_checkpoint, load_trainer_state, save_checkpoint
from rl.config import Recipe, dump_recipe
from rl.logger import RunLogger, read_jsonl, truncate_jsonl
from rl.losses import LOSSES, aggregation_weights, kl_estimate, masked_mean
from rl.models import load_model, load_tokenizer, non_embedding_params, render_prompt
from rl.rollout.base import SamplingParams
from rl.rollout.hf import HFEngine
from rl.rollout.multiturn import episode_prompt, multiturn_rollout
from rl.warm_start import ensure_warm_start

SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


@contextlib.contextmanager
def timer(timings: dict[str, float], name: str):
    start = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


class Trainer:
    def __init__(self, recipe: Recipe, resume: bool = False):
        self.recipe = recipe
        self.run_dir = recipe.run_dir
        self.accelerator = Accelerator()
        fresh_start = self._prepare_run_dir(resume)

        self.env = make_env(recipe.env, recipe.seed)
        start_path = ensure_warm_start(recipe, self.env, progress=recipe.logging.progress)
        # seeded after the warm start, which only runs when its cache is cold: a run must not
        # depend on whether it trained the warm start itself
        set_seed(recipe.seed)
        self.tokenizer = load_tokenizer(start_path)
        model = load_model(start_path, recipe.model.dtype)
        if recipe.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        self.ref_model = None
        if recipe.algorithm.kl.coef > 0:
            self.ref_model = load_model(start_path, recipe.model.dtype).eval().requires_grad_(False)
            self.ref_model.to(self.accelerator.device)

        opt = recipe.optimizer
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay
        )
        total_steps = recipe.train.iterations * recipe.train.epochs * recipe.train.mini_batches
        self.scheduler = get_scheduler(
            SCHEDULES[opt.schedule], optimizer, num_warmup_steps=opt.warmup_steps, num_training_steps=total_steps
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        # the scheduler steps once per optimizer step at any world size (not prepared, only saved)
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.policy = self.accelerator.unwrap_model(self.model)
        self.n_params = non_embedding_params(self.policy)

        self.engine = HFEngine(self.policy, self.tokenizer, batch_size=recipe.engine.batch_size)
        e = recipe.engine
        self.sampling = SamplingParams(
            n=recipe.algorithm.group_size, max_new_tokens=e.max_new_tokens,
            temperature=e.temperature, top_p=e.top_p, top_k=e.top_k,
        )
        self.val_prompts = self.env.val_prompts()[: recipe.eval.num_prompts]
        self.val_prompt_ids = [render_prompt(self.tokenizer, p.messages) for p in self.val_prompts]
        self.verifiable = _verifiable_reward(recipe.reward)
        self.predictor = LivePredictor(seed=recipe.seed) if recipe.eval.predict_asymptote else None

        self.state = TrainerState()
        if not fresh_start:
            self._resume()
        self.history = read_jsonl(self.run_dir / "metrics.jsonl")
        self.logger = RunLogger(self.run_dir, recipe, resume=not fresh_start)

    # ----------------------------------------------------------------------------------------
    # The loop
    # ----------------------------------------------------------------------------------------

    def fit(self) -> Path:
        r = self.recipe
        bar = tqdm(total=r.train.iterations, initial=self.state.iteration, desc=r.name, disable=not r.logging.progress)
        try:
            if self.state.iteration == 0 and r.eval.at_start:
                self._log(self._counters() | self.evaluate(), bar)
            while self.state.iteration < r.train.iterations:
                metrics = self.train_iteration()
                done = self.state.iteration == r.train.iterations
                if self.state.iteration % r.eval.every == 0 or done:
                    metrics |= self.evaluate()
                    if self.predictor is not None:  # refit the curve so far: pred/asymptote
                        metrics |= self.predictor.update(self.history + [metrics])
                self._log(metrics, bar)
                if self.state.iteration % r.checkpoint.every == 0 or done:
                    self.save_checkpoint()
                bar.update(1)
            self._save_final_model()
        finally:
            bar.close()
            self.close()
        return self.run_dir

    def train_iteration(self) -> dict[str, float]:
        r, timings = self.recipe, {}
        start = time.perf_counter()

        # 1. Prompts
        prompts = self.env.train_prompts(self.state.data_position, r.train.prompts_per_iteration)
        self.state.data_position += len(prompts)
        prompt_ids = [render_prompt(self.tokenizer, p.messages) for p in prompts]

        # 2. Rollouts (a multi-turn env plays whole episodes: rl/rollout/multiturn.py)
        with timer(timings, "gen"):
            groups, rollout_metrics = self._rollout(prompts, prompt_ids, self.sampling)

        # 3. Rewards
        with timer(timings, "reward"):
            texts = [c.text for g in groups for c in g]
            per_completion_prompts = [episode_prompt(p, c) for p, g in zip(prompts, groups) for c in g]
            rewards = compute_rewards(texts, per_completion_prompts, r.reward)
        batch = make_batch(groups, rewards.total)
        metrics = self._rollout_metrics(batch, groups, rewards) | {f"train/{k}": v for k, v in rollout_metrics.items()}

        # 4. Advantages
        with timer(timings, "adv"):
            adv = r.algorithm.advantage
            batch.advantages = ADVANTAGES[adv.name](batch.rewards, batch.group_ids, batch.mask, adv)

        # 5. Filters
        if r.algorithm.zero_variance_filter:
            keep, filter_metrics = zero_variance(batch.rewards, batch.group_ids)
            batch = batch.select(torch.nonzero(keep).squeeze(1))
            metrics |= {f"train/{k}": v for k, v in filter_metrics.items()}

        # 6-7. Loss and optimizer steps
        with timer(timings, "update"):
            metrics |= self.update(batch)

        # 8. Weight sync (the hf engine samples from the training model itself: nothing to copy)
        with timer(timings, "sync"):
            self.engine.update_weights(self.policy, self.state.step)

        # compute counters: 2N FLOPs per generated token, 6N per token through forward+backward,
        # 2N per token through a forward-only pass (old and reference log-probs)
        self.state.iteration += 1
        elapsed = time.perf_counter() - start
        generated = int(metrics.pop("train/response_length/sum"))
        self.state.tokens += generated
        self.state.flops += self.n_params * (
            2.0 * generated + 6.0 * metrics["train/trained_tokens"] + 2.0 * metrics["train/forward_tokens"]
        )
        self.state.device_hours += elapsed * self.accelerator.num_processes / 3600.0
        metrics |= {f"train/time/{k}": v for k, v in timings.items()} | {"train/time/iteration": elapsed}
        self._log_samples(prompts, groups, rewards.total)
        return self._counters() | metrics

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """Steps 6-7: the policy loss on the batch, mini_batches optimizer steps per epoch."""
        r, algo = self.recipe, self.recipe.algorithm
        if len(batch) == 0:  # everything was filtered out
            return {"train/skipped_update": 1.0, "train/trained_tokens": 0, "train/forward_tokens": 0}
        extra_forward_tokens = 0
        multi_update = r.train.epochs * r.train.mini_batches > 1
        with torch.no_grad():
            if multi_update:  # the sampling policy's log-probs before the first update
                batch.old_logp = self._logprobs(self.model, batch)
                extra_forward_tokens += _tokens(batch)
            if self.ref_model is not None:
                batch.ref_logp = self._logprobs(self.ref_model, batch)
                extra_forward_tokens += _tokens(batch)

        group_order = torch.unique(batch.group_ids)  # sorted; groups stay whole in a mini-batch
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}

        def add(name: str, value: float, weight: float) -> None:
            sums[name] = sums.get(name, 0.0) + value * weight
            counts[name] = counts.get(name, 0.0) + weight

        trained_tokens, fwd_bwd_time, optim_time = 0, 0.0, 0.0
        for epoch in range(r.train.epochs):
            for mb_groups in torch.chunk(group_order, r.train.mini_batches):
                mb = batch.select(torch.nonzero(torch.isin(batch.group_ids, mb_groups)).squeeze(1))
                weights = aggregation_weights(mb.mask, mb.group_ids, algo.aggregation, r.engine.max_new_tokens)
                chunks = list(torch.split(torch.arange(len(mb)), r.train.micro_batch_size))
                lr = self.scheduler.get_last_lr()[0]
                for i, idx in enumerate(chunks):
                    t0 = time.perf_counter()
                    micro = mb.select(idx)
                    w = weights[idx][:, : micro.mask.shape[1]]
                    sync = contextlib.nullcontext() if i == len(chunks) - 1 else self.accelerator.no_sync(self.model)
                    with sync:
                        logp, entropy = sequence_logprobs(
                            self.model, micro.prompt_ids, micro.completion_ids, self.tokenizer.pad_token_id,
                            r.engine.temperature, with_entropy=True, entropy_grad=algo.entropy.coef > 0,
                        )
                        old_logp = micro.old_logp if micro.old_logp is not None else logp.detach()
                        per_token, loss_metrics = LOSSES[algo.loss.name](
                            logp, old_logp, micro.advantages, micro.mask, algo.loss
                        )
                        if self.ref_model is not None:
                            kl = kl_estimate(logp, micro.ref_logp, algo.kl.estimator)
                            per_token = per_token + algo.kl.coef * kl
                            add("train/kl", masked_mean(kl.detach(), micro.mask).item(), micro.mask.sum().item())
                        if algo.entropy.coef > 0:
                            per_token = per_token - algo.entropy.coef * entropy
                        # DDP/DeepSpeed average gradients over ranks; the weights already sum to 1
                        # over the whole mini-batch, so undo that average
                        loss = (per_token * w).sum() * self.accelerator.num_processes
                        self.accelerator.backward(loss)
                    fwd_bwd_time += time.perf_counter() - t0
                    n_tok = micro.mask.sum().item()
                    trained_tokens += _tokens(micro)
                    add("train/loss", loss.item() / self.accelerator.num_processes, 1.0)
                    for k, v in loss_metrics.items():
                        add(f"train/{k}", v, n_tok)
                    if epoch == 0:
                        add("train/entropy", masked_mean(entropy.detach(), micro.mask).item(), n_tok)
                        add("train/mismatch_kl", _mismatch_kl(micro.engine_logp, old_logp, micro.mask), n_tok)
                t0 = time.perf_counter()
                max_norm = r.optimizer.max_grad_norm or math.inf
                grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.state.step += 1
                optim_time += time.perf_counter() - t0
                add("train/grad_norm", float(grad_norm), 1.0)
                add("train/lr", lr, 1.0)

        out = {k: sums[k] / max(counts[k], 1e-12) for k in sums}
        # "train/loss" is summed over micro-batches of a mini-batch; report the mean per optimizer step
        out["train/loss"] = sums["train/loss"] / (r.train.epochs * r.train.mini_batches)
        out["train/time/forward_backward"] = fwd_bwd_time
        out["train/time/optimizer"] = optim_time
        out["train/trained_tokens"] = trained_tokens
        out["train/forward_tokens"] = extra_forward_tokens
        return out

    def evaluate(self) -> dict[str, float]:
        """val/accuracy: mean over held-out prompts of the mean verifiable reward of k samples."""
        r = self.recipe
        params = SamplingParams(
            n=r.eval.k, max_new_tokens=r.engine.max_new_tokens,
            temperature=r.eval.temperature or r.engine.temperature, top_p=r.engine.top_p, top_k=r.engine.top_k,
        )
        # evaluation draws from its own seeded RNG so that the training trajectory is the same
        # whether or how often it evaluates
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(r.seed * 1_000_003 + self.state.iteration)
            groups, _ = self._rollout(self.val_prompts, self.val_prompt_ids, params)
        texts = [c.text for g in groups for c in g]
        prompts = [episode_prompt(p, c) for p, g in zip(self.val_prompts, groups) for c in g]
        scores = torch.tensor(compute_rewards(texts, prompts, self.verifiable).total).view(len(groups), r.eval.k)
        lengths = torch.tensor([len(c.token_ids) for g in groups for c in g], dtype=torch.float32)
        return {
            "val/accuracy": scores.mean().item(),
            f"val/pass@{r.eval.k}": scores.max(dim=1).values.mean().item(),
            "val/response_length": lengths.mean().item(),
        }

    # ----------------------------------------------------------------------------------------
    # Pieces
    # ----------------------------------------------------------------------------------------

    def _rollout(self, prompts, prompt_ids, params: SamplingParams):
        """Step 2: params.n completions per prompt, and rollout metrics. A multi-turn env (SWE)
        answers each assistant turn with tool results until its episode ends; its completions
        mask the env's tokens out of the loss and carry the episode's report (env_info)."""
        if is_multi_turn(self.env):
            return multiturn_rollout(self.engine, self.env, self.tokenizer, prompts, prompt_ids, params)
        return self.engine.generate(prompt_ids, params), {}

    def _logprobs(self, model: torch.nn.Module, batch: RolloutBatch) -> torch.Tensor:
        out = torch.zeros_like(batch.mask)
        for idx in torch.split(torch.arange(len(batch)), self.recipe.train.micro_batch_size):
            micro = batch.select(idx)
            logp, _ = sequence_logprobs(
                model, micro.prompt_ids, micro.completion_ids, self.tokenizer.pad_token_id,
                self.recipe.engine.temperature,
            )
            out[idx, : logp.shape[1]] = logp.float().cpu()
        return out

    def _rollout_metrics(self, batch: RolloutBatch, groups, rewards) -> dict[str, float]:
        lengths = batch.mask.sum(dim=1)
        correct = torch.tensor(rewards.per_function[self.verifiable.functions[0].name]).view(len(groups), -1) \
            if self.verifiable.functions[0].name in rewards.per_function else None
        versions = [v for g in groups for c in g for v in c.policy_versions]
        m = {
            "train/reward": batch.rewards.mean().item(),
            "train/reward_std": batch.rewards.std().item() if len(batch) > 1 else 0.0,
            "train/reward_errors": float(rewards.errors),
            "train/response_length/mean": lengths.mean().item(),
            "train/response_length/max": lengths.max().item(),
            "train/response_length/min": lengths.min().item(),
            "train/response_length/sum": lengths.sum().item(),
            "train/truncated_frac": sum(c.finish_reason == "length" for g in groups for c in g) / len(batch),
            "train/prompt_length": sum(len(p) for p in batch.prompt_ids) / len(batch),
            "train/staleness": self.state.step - sum(versions) / max(len(versions), 1),
        }
        m |= {f"train/{k}": v for k, v in rewards.metrics.items() if k != "reward/errors"}
        if correct is not None:
            m["train/solve_all_frac"] = (correct.min(dim=1).values > 0.5).float().mean().item()
            m["train/solve_none_frac"] = (correct.max(dim=1).values < 0.5).float().mean().item()
        return m

    def _counters(self) -> dict[str, float]:
        s = self.state
        return {
            "step": s.step,
            "iteration": s.iteration,
            "compute/device_hours": s.device_hours,
            "compute/flops": s.flops,
            "compute/tokens": s.tokens,
        }

    def _log(self, metrics: dict[str, float], bar) -> None:
        self.logger.log(metrics)
        self.history.append(metrics)
        post = {"reward": metrics.get("train/reward"), "val_acc": metrics.get("val/accuracy")}
        if post["val_acc"] is None:  # keep showing the last accuracy between evals
            post["val_acc"] = next((h["val/accuracy"] for h in reversed(self.history) if "val/accuracy" in h), None)
        bar.set_postfix({k: f"{v:.3f}" for k, v in post.items() if v is not None})

    def _log_samples(self, prompts, groups, totals: list[float]) -> None:
        n = self.recipe.logging.samples_per_iteration
        records, k = [], len(groups[0]) if groups else 0
        for i, (p, g) in enumerate(list(zip(prompts, groups))[:n]):
            records.append({
                "iteration": self.state.iteration, "step": self.state.step, "prompt_id": p.id,
                "prompt": p.messages[-1]["content"], "answer": p.answer,
                "completions": [c.text for c in g], "rewards": totals[i * k : (i + 1) * k],
                "finish_reasons": [c.finish_reason for c in g],
            })
            if any(c.env_info is not None for c in g):  # multi-turn: verdicts, test output, patches
                records[-1]["env_info"] = [c.env_info for c in g]
        self.logger.log_samples(records)

    # ----------------------------------------------------------------------------------------
    # Run directory, checkpoints, resume
    # ----------------------------------------------------------------------------------------

    def _prepare_run_dir(self, resume: bool) -> bool:
        """Create the run directory; returns True for a fresh start."""
        metrics = self.run_dir / "metrics.jsonl"
        has_checkpoint = latest_checkpoint(self.run_dir / "checkpoints") is not None
        if not resume and metrics.is_file() and metrics.stat().st_size > 0:
            raise FileExistsError(
                f"run directory {self.run_dir} already holds a run; pass --resume to continue it, "
                f"or choose another name (name=...) or remove the directory"
            )
        fresh = not (resume and has_checkpoint)
        if resume and not has_checkpoint:
            print(f"[asymptote] no checkpoint in {self.run_dir / 'checkpoints'}: starting from the beginning")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            for name in ("metrics.jsonl", "samples.jsonl"):
                (self.run_dir / name).unlink(missing_ok=True)
        recipe_file = self.run_dir / "recipe.yaml"
        new = dump_recipe(self.recipe)
        if not fresh and recipe_file.is_file() and recipe_file.read_text() != new:
            old, cur = yaml.safe_load(recipe_file.read_text()), yaml.safe_load(new)
            changed = sorted(_diff_keys(old, cur))
            print(f"[asymptote] resuming with a changed recipe; keys that differ: {', '.join(changed)}")
        recipe_file.write_text(new)
        return fresh

    def save_checkpoint(self) -> Path:
        return save_checkpoint(
            self.run_dir / "checkpoints", self.state,
            lambda path: self.accelerator.save_state(str(path)), self.recipe.checkpoint.keep_last,
        )

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run_dir / "checkpoints")
        self.accelerator.load_state(str(ckpt))
        self.state = load_trainer_state(ckpt)
        # lines a killed run wrote after this checkpoint would otherwise appear twice
        keep = lambda rec: rec.get("iteration", 0) <= self.state.iteration  # noqa: E731
        truncate_jsonl(self.run_dir / "metrics.jsonl", keep)
        truncate_jsonl(self.run_dir / "samples.jsonl", lambda rec: rec.get("iteration", 0) < self.state.iteration)
        self.engine.update_weights(self.policy, self.state.step)
        print(f"[asymptote] resumed from {ckpt} (iteration {self.state.iteration}, step {self.state.step})")

    def _save_final_model(self) -> None:
        final = self.run_dir / "final_model"
        tmp = self.run_dir / ".tmp-final_model"
        shutil.rmtree(tmp, ignore_errors=True)
        self.accelerator.unwrap_model(self.model).save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)

    def close(self) -> None:
        self.logger.close()
        self.engine.close()
        self.env.close()


def train(recipe: Recipe, resume: bool = False) -> Path:
    """Train `recipe`; returns the run directory."""
    return Trainer(recipe, resume=resume).fit()


def _tokens(batch: RolloutBatch) -> int:
    return sum(len(p) + len(c) for p, c in zip(batch.prompt_ids, batch.completion_ids))


def _mismatch_kl(engine_logp: torch.Tensor, trainer_logp: torch.Tensor, mask: torch.Tensor) -> float:
    """k3 estimate of KL(π_engine ‖ π_trainer) on the engine's samples: r − 1 − log r, r = π_trainer/π_engine."""
    log_r = (trainer_logp.detach() - engine_logp) * mask
    return masked_mean(torch.exp(log_r) - 1.0 - log_r, mask).item()


def _verifiable_reward(cfg: RewardConfig) -> RewardConfig:
    """The reward config that scores only verifiable correctness (for val/accuracy)."""
    listed = [f for f in cfg.functions if f.name == cfg.verifiable]
    fn = listed[0] if listed else RewardFunctionConfig(name=cfg.verifiable)
    return RewardConfig(functions=[fn.model_copy(update={"weight": 1.0})], verifiable=cfg.verifiable)


def _diff_keys(a, b, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}
