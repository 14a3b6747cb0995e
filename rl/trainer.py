"""The trainer: one loop that reads as the steps of DESIGN.md.

    for each iteration:
        1. prompts      the environment's next prompts_per_iteration prompts (skipping the prompts
                        No-Positive-Resampling retired)
        2. rollouts     group_size completions per prompt from the engine (with a thinking budget,
                        interrupted ones are continued after the interruption text; a multi-turn
                        env plays whole episodes, its own tokens masked: rl/rollout/multiturn.py)
        3. rewards      rewards/ scores each completion (a failing reward scores 0, counted), plus
                        DAPO's overlong shaping; DAPO's dynamic sampling repeats 1-3 until enough
                        groups are informative (steps 1-3: rl/sampling.py)
        4. advantages   rl/advantages.py (GAE reads the critic's values, rl/critic.py)
        5. filters      e.g. drop zero-variance groups, truncated completions
        6. loss         rl/losses.py, aggregated by per-token weights; KL and entropy terms
                        (rl/regularizers.py); the critic's value loss
        7. optimizer    mini_batches optimizer steps per epoch, epochs passes, gradient accumulation
        8. weight sync, eval, log, checkpoint

Steps 4 and 6-7 are written in rl/update.py (PolicyUpdate, a base of Trainer).

With async.max_off_policy_steps = k > 0 (PipelineRL), steps 1-3 run in a background thread
(rl/async_sampler.py) while 4-7 run here; the weight sync of step 8 lands in the engine between
decoding steps, and groups more than k optimizer steps stale are dropped (counted).

Each phase is timed under its own name (train/time/<phase>). Everything runs through `accelerate`,
so one CPU process is the same code as many GPU processes: with N processes (DDP, DeepSpeed ZeRO-2/3,
FSDP; rl/parallel/) rollouts are sharded over the ranks and gathered, every rank holds the whole
batch for steps 3-5, and each mini-batch's sequences are split over the ranks for steps 6-7.
Components' resumable state (NPR's pass rates, the adaptive entropy coefficient) lives in
TrainerState.extra.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import torch
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_scheduler

from analysis.live import LivePredictor
from envs import make_env
from rewards import RewardConfig, RewardFunctionConfig
from rl.async_sampler import AsyncSampler
from rl.batch import make_batch
from rl.checkpoint import TrainerState, latest_checkpoint, load_trainer_state, save_checkpoint
from rl.config import Recipe, dump_recipe, recipe_warnings
from rl.critic import Critic
from rl.filters import zero_variance
from rl.logger import NullLogger, RunLogger, prepare_run_dir, read_jsonl, timer, truncate_jsonl
from rl.lora import ADAPTER_DIR, apply_lora, save_adapter
from rl.models import load_model, load_tokenizer, non_embedding_params, render_prompt
from rl.parallel.checks import check_engine_topology, check_world_size
from rl.parallel.rollouts import MainProcessEngine, ShardedEngine, sharded_scorer
from rl.parallel.strategy import (full_state_dict, is_zero3, make_accelerator, prepare_frozen, prepare_policy,
                                  shard_fsdp2)
from rl.rollout import make_engine, server_config
from rl.rollout.base import SamplingParams
from rl.rollout.multiturn import episode_prompt
from rl.sampling import Rollouts, Sampler, rollout_metrics, sample_records
from rl.threads import set_torch_threads
from rl.update import PolicyUpdate
from rl.warm_start import ensure_warm_start
from rl.weights import merged_state_dict


SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


class Trainer(PolicyUpdate):
    """The loop of the module docstring; steps 4 and 6-7 are PolicyUpdate's (rl/update.py)."""

    def __init__(self, recipe: Recipe, resume: bool = False):
        self.recipe = recipe
        # before any torch work: a pool as wide as the cores stalls when a neighbour is busy (rl/threads.py)
        self.threads, threads_why = set_torch_threads(recipe.resources.cpu_threads)
        self.run_dir = recipe.run_dir
        self.accelerator = acc = make_accelerator(recipe)
        self.main = acc.is_main_process
        check_world_size(recipe, acc.num_processes)
        fresh_start = self._prepare_run_dir(resume)
        if self.main:
            for message in recipe_warnings(recipe):
                warnings.warn(message, stacklevel=2)
            if recipe.logging.progress:
                print(f"[asymptote] torch CPU threads per process: {self.threads} ({threads_why})", flush=True)

        self.env = make_env(recipe.env, recipe.seed)
        with acc.main_process_first():  # the warm start trains once; the other ranks read its cache
            start_path = ensure_warm_start(recipe, self.env, progress=recipe.logging.progress and self.main)
        # seeded after the warm start, which only runs when its cache is cold: a run must not
        # depend on whether it trained the warm start itself
        set_seed(recipe.seed)
        self.tokenizer = load_tokenizer(start_path)
        self._build_policy(start_path)
        self._build_engine(start_path)
        self.sampler = Sampler(recipe, self.env, self.engine, self.tokenizer)
        self.sampler.score = sharded_scorer(acc, self.sampler.score)  # each rank scores its share of the completions
        self.async_sampler: AsyncSampler | None = None  # async.max_off_policy_steps > 0: started by _sample
        self.val_prompts = self.env.val_prompts()[: recipe.eval.num_prompts]
        self.val_prompt_ids = [render_prompt(self.tokenizer, p.messages) for p in self.val_prompts]
        self.verifiable = _verifiable_reward(recipe.reward)
        self.predictor = (
            LivePredictor(seed=recipe.seed, prior_path=recipe.eval.prior) if recipe.eval.predict_asymptote else None
        )
        self._forward_tokens = 0

        self.state = TrainerState()
        if not fresh_start:
            self._resume()
        elif recipe.engine.name == "vllm-server" and server_config(recipe.engine.server).urls:
            # attached servers may hold another run's weights: they get this run's before serving it
            self.engine.update_weights(self.policy, 0)
        self.history = read_jsonl(self.run_dir / "metrics.jsonl")
        self.logger = RunLogger(self.run_dir, recipe, resume=not fresh_start) if self.main else NullLogger()

    def _build_policy(self, start_path: Path) -> None:
        """The policy (LoRA adapters only, if asked; FSDP-sharded on CPU processes), the frozen
        reference for a KL term, AdamW and its schedule, the critic: prepared by accelerate."""
        r, acc = self.recipe, self.accelerator
        model = load_model(start_path, r.model.dtype, r.model.fp32_lm_head)
        if r.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        if r.model.lora is not None:  # only the adapters train (rl/lora.py)
            if r.model.gradient_checkpointing:
                model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need a grad path
            model = apply_lora(model, r.model.lora)
        model.train()
        model = shard_fsdp2(model, acc, r)  # fsdp on CPU processes: sharded here, before the optimizer
        self.ref_model = None
        if r.algorithm.kl.coef > 0:
            self.ref_model = load_model(start_path, r.model.dtype, r.model.fp32_lm_head)
            self.ref_model.eval().requires_grad_(False)

        opt = r.optimizer
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay
        )
        total_steps = r.train.iterations * r.train.epochs * r.train.mini_batches
        self.scheduler = get_scheduler(
            SCHEDULES[opt.schedule], optimizer, num_warmup_steps=opt.warmup_steps, num_training_steps=total_steps
        )
        self.n_params = non_embedding_params(model)
        self.model, self.optimizer = prepare_policy(acc, r, model, optimizer)
        if self.ref_model is not None:  # on the device; under ZeRO-3 a partitioned inference engine
            self.ref_model = prepare_frozen(self.ref_model, self.accelerator)
        # the scheduler steps once per optimizer step at any world size (not prepared, only saved)
        self.accelerator.register_for_checkpointing(self.scheduler)
        self.policy = self.accelerator.unwrap_model(self.model)
        # prepared after the policy, always in this order: checkpoints restore by position
        self.critic = None
        if r.algorithm.critic is not None:
            self.critic = Critic(r.algorithm.critic, start_path, r.model.dtype,
                                 self.policy.config.hidden_size, self.accelerator, r.model.lora)

    def _build_engine(self, start_path: Path) -> None:
        """The engine: one per rank (hf, vllm), or vLLM servers driven by the main process alone
        (vllm-server), whose completions are broadcast to the other ranks."""
        r, acc = self.recipe, self.accelerator
        server, world = r.engine.name == "vllm-server", acc.num_processes
        check_engine_topology(r, world)
        make = lambda: make_engine(r.engine, self.policy, self.tokenizer, start_path, r.model.dtype, r.seed)  # noqa: E731
        if server and world > 1:
            self.local_engine = make() if self.main else None  # the async generator's: no collectives
            self.engine = MainProcessEngine(self.local_engine, acc, r.engine.vllm.bucket_mb)
        else:
            self.local_engine = self.engine = make()
            if world > 1 or is_zero3(acc):  # generate on every rank, gather the completions
                self.engine = ShardedEngine(self.engine, acc, self.policy, r.distributed.rollouts)

    # ----------------------------------------------------------------------------------------
    # The loop
    # ----------------------------------------------------------------------------------------

    def fit(self) -> Path:
        r = self.recipe
        bar = tqdm(total=r.train.iterations, initial=self.state.iteration, desc=r.name,
                   disable=not (r.logging.progress and self.main))
        try:
            if self.state.iteration == 0 and r.eval.at_start:
                self._log(self._counters() | self.evaluate(), bar)
            while not self._done():
                metrics = self.train_iteration()
                done = self._done()
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

    def _done(self) -> bool:
        budget = self.recipe.train.flops_budget
        return self.state.iteration >= self.recipe.train.iterations or (budget is not None and self.state.flops >= budget)

    def train_iteration(self) -> dict[str, float]:
        r, algo, timings = self.recipe, self.recipe.algorithm, {}
        start = time.perf_counter()
        self._forward_tokens = 0  # tokens through forward-only passes this iteration

        # 1-3. Prompts, rollouts, rewards (rl/sampling.py: with No-Positive-Resampling's curriculum,
        #      a thinking budget, DAPO's overlong shaping and dynamic sampling, which repeats 1-3)
        rollouts, async_metrics = self._sample(timings)
        metrics = rollout_metrics(rollouts, self.state.step, r.reward.verifiable, algo.group_size) | async_metrics
        if algo.no_positive_resampling is not None:  # the curriculum learns from everything sampled
            metrics |= self.sampler.record_pass_rates(self.state, rollouts)
        batch = make_batch(*rollouts.training_groups())

        # 4. Advantages (forward-only passes first where an estimator needs them: the critic's values
        #    for GAE, the sampling and reference log-probs for a KL penalty in the reward)
        with timer(timings, "adv"):
            metrics |= self._advantages(batch)

        # 5. Filters
        if algo.zero_variance_filter:
            keep, filter_metrics = zero_variance(batch.rewards, batch.group_ids)
            batch = batch.select(torch.nonzero(keep).squeeze(1))
            metrics |= {f"train/{k}": v for k, v in filter_metrics.items()}
        if algo.length.mask_truncated:  # DAPO's overlong filtering: out of the loss, after the group statistics
            metrics["train/masked_truncated"] = float(batch.truncated.sum().item())
            batch = batch.select(torch.nonzero(~batch.truncated).squeeze(1))

        # 6-7. Loss and optimizer steps
        with timer(timings, "update"):
            metrics |= self.update(batch)

        # 8. Weight sync (the hf engine samples from the training model itself: nothing to copy;
        #    vllm engines load the new weights in buckets, in memory or over the wire)
        with timer(timings, "sync"):
            self.engine.update_weights(self.policy, self.state.step)

        # compute counters: 2N FLOPs per completion token (sampled, or a multi-turn observation the engine
        # reads), 6N per token through forward+backward, 2N per token through a forward-only pass (old and
        # reference log-probs, values); compute/tokens counts the tokens the policy sampled
        self.state.iteration += 1
        elapsed = time.perf_counter() - start
        # an async batch dropped whole for staleness (train/async/skipped_tokens) was generated all the same
        skipped = metrics.get("train/async/skipped_tokens", 0)
        completion_tokens = int(metrics.pop("train/response_length/sum") + skipped)
        self.state.tokens += int(metrics.pop("train/generated_tokens/sum") + skipped)  # not a multi-turn env's observations
        self.state.flops += self.n_params * (
            2.0 * completion_tokens + 6.0 * metrics["train/trained_tokens"] + 2.0 * metrics["train/forward_tokens"]
        )
        self.state.device_hours += elapsed * self.accelerator.num_processes / 3600.0
        metrics |= {f"train/time/{k}": v for k, v in timings.items()} | {"train/time/iteration": elapsed}
        self._log_samples(rollouts)
        return self._counters() | metrics

    def _sample(self, timings: dict[str, float]) -> tuple[Rollouts, dict[str, float]]:
        """Steps 1-3: synchronously (async.max_off_policy_steps 0), or the next batch of the
        asynchronous sampler (rl/async_sampler.py), started here at the first iteration, groups more
        than k steps stale dropped and counted. Its generation and reward times overlap training."""
        k = self.recipe.async_.max_off_policy_steps
        if k == 0:
            return self.sampler.sample(self.state, timings), {}
        one_process = self.accelerator.num_processes == 1
        if self.async_sampler is None and self.main:
            # on N processes (vllm-server) the main process's thread drives the servers through its own
            # engine and scorer (no collectives beside training); its batches are broadcast
            sampler = self.sampler if one_process else Sampler(self.recipe, self.env, self.local_engine, self.tokenizer)
            self.async_sampler = AsyncSampler(sampler, self.state.data_position, k, self.recipe.async_.queue_size)
        if one_process:
            rollouts, metrics, produced = self.async_sampler.next(self.state)
        else:
            from accelerate.utils import broadcast_object_list

            payload = [(*self.async_sampler.next(self.state), self.state.data_position) if self.main else None]
            rollouts, metrics, produced, self.state.data_position = broadcast_object_list(payload, from_process=0)[0]
        for name, seconds in produced.items():
            timings[name] = timings.get(name, 0.0) + seconds
        return rollouts, metrics

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
            groups, _, _ = self.sampler.generate(self.val_prompts, params, self.val_prompt_ids)
        texts = [c.text for g in groups for c in g]
        prompts = [episode_prompt(p, c) for p, g in zip(self.val_prompts, groups) for c in g]
        scores = torch.tensor(self.sampler.score(texts, prompts, self.verifiable).total).view(len(groups), r.eval.k)
        lengths = torch.tensor([len(c.token_ids) for g in groups for c in g], dtype=torch.float32)
        return {
            "val/accuracy": scores.mean().item(),
            f"val/pass@{r.eval.k}": scores.max(dim=1).values.mean().item(),
            "val/response_length": lengths.mean().item(),
        }

    # ----------------------------------------------------------------------------------------
    # Pieces
    # ----------------------------------------------------------------------------------------

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

    def _log_samples(self, rollouts: Rollouts) -> None:
        n = self.recipe.logging.samples_per_iteration
        self.logger.log_samples(sample_records(rollouts, self.state.iteration, self.state.step, n))

    # ----------------------------------------------------------------------------------------
    # Run directory, checkpoints, resume
    # ----------------------------------------------------------------------------------------

    def _prepare_run_dir(self, resume: bool) -> bool:
        """Create the run directory and write the resolved recipe (the main process); returns True
        for a fresh start."""
        fresh = prepare_run_dir(self.run_dir, dump_recipe(self.recipe), resume) if self.main else None
        self.accelerator.wait_for_everyone()
        if fresh is None:
            fresh = not (resume and latest_checkpoint(self.run_dir / "checkpoints") is not None)
        return fresh

    def save_checkpoint(self) -> Path:
        """Every rank writes its states (sharded ones under ZeRO/FSDP); the main process completes it."""
        return save_checkpoint(
            self.run_dir / "checkpoints", self.state,
            self._save_tensors, self.recipe.checkpoint.keep_last,
            main=self.main, barrier=self.accelerator.wait_for_everyone,
        )

    def _save_tensors(self, path: Path) -> None:
        self.accelerator.save_state(str(path))
        if self.recipe.model.lora is not None and self.main:  # the adapter alone, loadable with peft
            save_adapter(self.policy, path / ADAPTER_DIR)

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.run_dir / "checkpoints")
        self.accelerator.load_state(str(ckpt))
        self.state = load_trainer_state(ckpt)
        # lines a killed run wrote after this checkpoint would otherwise appear twice
        keep = lambda rec: rec.get("iteration", 0) <= self.state.iteration  # noqa: E731
        if self.main:
            truncate_jsonl(self.run_dir / "metrics.jsonl", keep)
            truncate_jsonl(self.run_dir / "samples.jsonl", lambda rec: rec.get("iteration", 0) < self.state.iteration)
        self.accelerator.wait_for_everyone()
        self.engine.update_weights(self.policy, self.state.step)
        self.accelerator.print(f"[asymptote] resumed from {ckpt} (iteration {self.state.iteration}, step {self.state.step})")

    def _save_final_model(self) -> None:
        final = self.run_dir / "final_model"
        tmp = self.run_dir / ".tmp-final_model"
        lora = self.recipe.model.lora is not None
        # gathered from every rank under ZeRO-3/FSDP; with LoRA the merged weights under the base model's names
        state_dict = merged_state_dict(self.policy) if lora else full_state_dict(self.model, self.accelerator)
        if self.main:
            shutil.rmtree(tmp, ignore_errors=True)
            if lora:  # a plain model directory (no peft needed to load it), and the adapter beside it
                self.policy.get_base_model().save_pretrained(tmp, state_dict=state_dict)
                save_adapter(self.policy, tmp / ADAPTER_DIR)
            else:
                self.policy.save_pretrained(tmp, state_dict=state_dict)
            self.tokenizer.save_pretrained(tmp)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
        self.accelerator.wait_for_everyone()

    def close(self) -> None:
        if self.async_sampler is not None:
            self.async_sampler.close()
        self.logger.close()
        self.engine.close()
        self.env.close()


def train(recipe: Recipe, resume: bool = False) -> Path:
    """Train `recipe`; returns the run directory."""
    return Trainer(recipe, resume=resume).fit()


def _verifiable_reward(cfg: RewardConfig) -> RewardConfig:
    """The reward config that scores only verifiable correctness (for val/accuracy)."""
    listed = [f for f in cfg.functions if f.name == cfg.verifiable]
    fn = listed[0] if listed else RewardFunctionConfig(name=cfg.verifiable)
    return RewardConfig(functions=[fn.model_copy(update={"weight": 1.0})], verifiable=cfg.verifiable)
