"""Steps 4-7 of the loop (rl/trainer.py): advantages, and the policy update over mini-batches and
micro-batches, with the forward-only passes they need (sampling-policy and reference log-probs,
the critic's values) and Clip-Cov/KL-Cov's global token selection.

`PolicyUpdate` is a base of `Trainer`, kept apart so that the loop reads in one file and the loss
arithmetic in another. It uses the trainer's recipe, accelerator, model (prepared), ref_model,
critic, optimizer, scheduler, tokenizer and state, and counts forward-only tokens in
_forward_tokens (compute/flops).
"""

from __future__ import annotations

import contextlib
import math
import time

import torch

from rl.advantages import ADVANTAGES, gae, token_rewards
from rl.batch import RolloutBatch, forward_pass, sequence_forward
from rl.critic import explained_variance, value_loss
from rl.logger import MetricAccumulator, reduce_metrics
from rl.losses import COV_LOSSES, LOSSES, LossContext, aggregation_weights, cov_selection, masked_mean
from rl.numerics import tis_weights
from rl.parallel.loss import backward, rank_micro_batches, sharded_forward
from rl.regularizers import adapt_entropy_coef, entropy_bonus_coef, kl_estimate


class PolicyUpdate:
    """Steps 4 (advantages) and 6-7 (loss, optimizer steps) of the trainer's loop."""

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """Steps 6-7: the policy loss on the batch, mini_batches optimizer steps per epoch."""
        r, algo = self.recipe, self.recipe.algorithm
        if len(batch) == 0:  # everything was filtered out
            return {"train/skipped_update": 1.0, "train/trained_tokens": 0, "train/forward_tokens": self._forward_tokens}
        multi_update = r.train.epochs * r.train.mini_batches > 1
        with torch.no_grad():
            self._forward_only(batch, old=multi_update or algo.tis is not None, ref=self.ref_model is not None)
        entropy = self.state.extra.setdefault("entropy", {"coef": algo.entropy.coef, "last": None})
        alpha = entropy_bonus_coef(entropy["coef"], entropy["last"], algo.entropy)

        group_order = torch.unique(batch.group_ids)  # sorted; groups stay whole in a mini-batch
        stats = MetricAccumulator()
        trained_tokens, fwd_bwd_time, optim_time = 0, 0.0, 0.0
        for epoch in range(r.train.epochs):
            for mb_groups in torch.chunk(group_order, r.train.mini_batches):
                mb = batch.select(torch.nonzero(torch.isin(batch.group_ids, mb_groups)).squeeze(1))
                weights = aggregation_weights(mb.mask, mb.group_ids, algo.aggregation, r.engine.max_new_tokens)
                value_weights = mb.mask / mb.mask.sum().clamp(min=1)  # the critic's loss: token mean
                selected = self._cov_prepass(mb, stats)  # Clip-Cov/KL-Cov over the whole mini-batch
                # this rank's share of the mini-batch, in as many micro-batches as every other rank's
                acc = self.accelerator
                chunks = rank_micro_batches(len(mb), acc.process_index, acc.num_processes, r.train.micro_batch_size)
                lr = self.scheduler.get_last_lr()[0]
                for i, idx in enumerate(chunks):
                    t0 = time.perf_counter()
                    empty = len(idx) == 0  # a rank whose share ran out still runs the collectives, weight 0
                    idx = torch.zeros(1, dtype=torch.long) if empty else idx
                    micro = mb.select(idx)
                    width = micro.mask.shape[1]
                    ctx = LossContext(
                        generator=torch.Generator().manual_seed(r.seed * 1_000_003 + self.state.step * 1_009 + i),
                        selected=None if selected is None else selected[idx][:, :width],
                    )
                    last = i == len(chunks) - 1
                    with self._no_sync(last=last):
                        w = (weights[idx][:, :width] * (not empty), value_weights[idx][:, :width] * (not empty))
                        loss, critic_loss = self._micro_loss(micro, w, ctx, alpha, MetricAccumulator() if empty else stats,
                                                             epoch == 0)
                        backward(self.accelerator, self.model, loss, last)
                        if critic_loss is not None:  # a separate critic: its own backward (its own engine)
                            self.critic.backward(critic_loss, last)
                    fwd_bwd_time += time.perf_counter() - t0
                trained_tokens += _tokens(mb) * (2 if self.critic and not self.critic.shares_trunk else 1)
                t0 = time.perf_counter()
                max_norm = r.optimizer.max_grad_norm or math.inf
                grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.critic is not None:
                    stats.add("train/critic/grad_norm", self.critic.step())
                self.state.step += 1
                optim_time += time.perf_counter() - t0
                stats.add("train/grad_norm", float(grad_norm))
                stats.add("train/lr", lr)

        out = reduce_metrics(self.accelerator, stats).result(steps=r.train.epochs * r.train.mini_batches)
        # Cov(log π, A) over the batch's tokens, from the token means of log π, A and their product
        out["train/cov/logp_adv"] = out.pop("_cov/logp_adv") - out.pop("_cov/logp") * out.pop("_cov/adv")
        if algo.entropy.target is not None:  # Skywork-OR1's adaptive coefficient, for the next iteration
            entropy["coef"] = adapt_entropy_coef(entropy["coef"], out["train/entropy"], algo.entropy)
            entropy["last"] = out["train/entropy"]
        out["train/entropy_coef"] = alpha
        out["train/time/forward_backward"] = fwd_bwd_time
        out["train/time/optimizer"] = optim_time
        out["train/trained_tokens"] = trained_tokens
        out["train/forward_tokens"] = self._forward_tokens
        return out

    def _micro_loss(self, micro: RolloutBatch, w: tuple[torch.Tensor, torch.Tensor], ctx: LossContext, alpha: float,
                    stats: MetricAccumulator, first_epoch: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Step 6 on one micro-batch: policy loss, KL and entropy terms weighted by the aggregation's
        weights w[0], plus the value loss weighted by w[1] (gradients accumulate over the mini-batch).
        Returns (the policy's loss, a separate critic's value loss or None): a value head's loss is
        part of the policy's (it trains the shared trunk); a separate critic's graph is its own."""
        r, algo = self.recipe, self.recipe.algorithm
        mask, n_tok = micro.mask, micro.mask.sum().item()
        out = sequence_forward(
            self.model, micro.prompt_ids, micro.completion_ids, self.tokenizer.pad_token_id, r.engine.temperature,
            with_entropy=True, entropy_grad=alpha > 0, with_hidden=self.critic is not None and self.critic.shares_trunk,
        )
        logp, entropy = out.logp, out.entropy
        old_logp = micro.old_logp if micro.old_logp is not None else logp.detach()
        per_token, loss_metrics = LOSSES[algo.loss.name](logp, old_logp, micro.advantages, mask, algo.loss, ctx)
        if algo.tis is not None:  # truncated IS of the engine/trainer mismatch
            is_w, tis_metrics = tis_weights(old_logp, micro.engine_logp, mask, algo.tis)
            per_token = per_token * is_w
            loss_metrics |= tis_metrics
        if self.ref_model is not None and not algo.kl.in_reward:
            kl = kl_estimate(logp, micro.ref_logp, algo.kl.estimator)
            per_token = per_token + algo.kl.coef * kl
            stats.add("train/kl", masked_mean(kl.detach(), mask).item(), n_tok)
        if alpha > 0:
            per_token = per_token - alpha * entropy
        # DDP/DeepSpeed average gradients over ranks; the weights already sum to 1 over the whole
        # mini-batch, so undo that average
        loss = (per_token * w[0]).sum() * self.accelerator.num_processes
        critic_loss = None
        stats.add("train/loss", loss.item() / self.accelerator.num_processes, how="sum")
        if self.critic is not None:
            values = self.critic.values(micro.prompt_ids, micro.completion_ids, self.tokenizer.pad_token_id, out.hidden)
            v_loss, v_metrics = value_loss(values, micro.values, micro.returns, mask, algo.critic.value_clip)
            v_loss = (v_loss * w[1]).sum() * self.accelerator.num_processes
            if self.critic.shares_trunk:
                loss = loss + algo.critic.coef * v_loss
            else:
                critic_loss = v_loss
            stats.add("train/critic/value_loss", v_loss.item() / self.accelerator.num_processes, how="sum")
            loss_metrics |= v_metrics
        for k, v in loss_metrics.items():
            stats.add(f"train/{k}", v, n_tok)
        if first_epoch:
            stats.add("train/entropy", masked_mean(entropy.detach(), mask).item(), n_tok)
            stats.add("train/mismatch_kl", _mismatch_kl(micro.engine_logp, old_logp, mask), n_tok)
            lp, adv = logp.detach().double(), micro.advantages.double()
            for name, x in (("_cov/logp", lp), ("_cov/adv", adv), ("_cov/logp_adv", lp * adv)):
                stats.add(name, masked_mean(x, mask).item(), n_tok)
        return loss, critic_loss

    def _advantages(self, batch: RolloutBatch) -> dict[str, float]:
        """Step 4: fills batch.advantages (and batch.returns for GAE)."""
        algo, metrics = self.recipe.algorithm, {}
        kl_in_reward = self.ref_model is not None and algo.kl.in_reward
        with torch.no_grad():
            self._forward_only(batch, old=kl_in_reward, ref=kl_in_reward, values=self.critic is not None)
        rewards = batch.rewards
        if kl_in_reward:  # −β·KL of the sampling policy on every token, the outcome on the last
            kl = kl_estimate(batch.old_logp, batch.ref_logp, algo.kl.estimator) * batch.mask
            rewards = token_rewards(batch.rewards, batch.mask) - algo.kl.coef * kl
            metrics["train/kl"] = masked_mean(kl, batch.mask).item()
        if algo.advantage.name == "gae":
            batch.advantages, batch.returns = gae(rewards, batch.values, batch.mask, algo.advantage)
            metrics["train/critic/explained_variance"] = explained_variance(batch.values, batch.returns, batch.mask)
        else:
            batch.advantages = ADVANTAGES[algo.advantage.name](rewards, batch.group_ids, batch.mask, algo.advantage)
        return metrics

    def _forward_only(self, batch: RolloutBatch, old: bool = False, ref: bool = False, values: bool = False) -> None:
        """Fill the batch's missing sampling-policy log-probs, reference log-probs and critic values
        that are asked for, micro-batch by micro-batch (call under torch.no_grad)."""
        old, ref, values = old and batch.old_logp is None, ref and batch.ref_logp is None, values and batch.values is None
        head = values and self.critic.shares_trunk  # a value head reads the policy's own forward pass
        if old or head:
            logp, head_values = self._forward_pass(self.model, batch, with_values=head)
            batch.old_logp = logp if batch.old_logp is None else batch.old_logp
            batch.values = head_values if head else batch.values
        if ref:
            batch.ref_logp, _ = self._forward_pass(self.ref_model, batch)
        if values and not head:
            _, batch.values = self._forward_pass(None, batch, with_values=True)

    def _forward_pass(self, model, batch: RolloutBatch, with_values: bool = False):
        """(log-probs of `model` or None, critic values or None) over the batch, [B, T] each; with
        several processes each computes its share of the rows and the shares are gathered."""
        run = lambda part: forward_pass(  # noqa: E731
            model, part, self.tokenizer.pad_token_id, self.recipe.engine.temperature,
            self.recipe.train.micro_batch_size, self.critic.values if with_values else None,
            with_hidden=with_values and self.critic.shares_trunk,
        )
        logp, values, tokens = sharded_forward(self.accelerator, batch, run)
        self._forward_tokens += tokens
        return logp, values

    def _cov_prepass(self, mb: RolloutBatch, stats: MetricAccumulator) -> torch.Tensor | None:
        """Clip-Cov/KL-Cov with scope "global": select the tokens over the whole mini-batch from the
        current policy's log-probs (one forward-only pass); None otherwise (the loss selects per
        micro-batch). Every rank holds the whole mini-batch here (it is split over ranks only for
        the loss), so every rank selects the same tokens from the global statistics."""
        cfg = self.recipe.algorithm.loss
        if cfg.name not in COV_LOSSES or cfg.scope != "global":
            return None
        with torch.no_grad():
            logp, _ = self._forward_pass(self.model, mb)
        old = mb.old_logp if mb.old_logp is not None else logp
        generator = torch.Generator().manual_seed(self.recipe.seed * 1_000_003 + self.state.step)
        selected, metrics = cov_selection(logp, old, mb.advantages, mb.mask, cfg, generator)
        for k, v in metrics.items():
            stats.add(f"train/{k}", v, mb.mask.sum().item())
        return selected

    def _no_sync(self, last: bool):
        """Skip the gradient all-reduce on all but the last micro-batch of a mini-batch."""
        stack = contextlib.ExitStack()
        if not last:
            stack.enter_context(self.accelerator.no_sync(self.model))
            if self.critic is not None and not self.critic.shares_trunk:
                stack.enter_context(self.accelerator.no_sync(self.critic.module))
        return stack


def _tokens(batch: RolloutBatch) -> int:
    return sum(len(p) + len(c) for p, c in zip(batch.prompt_ids, batch.completion_ids))


def _mismatch_kl(engine_logp: torch.Tensor, trainer_logp: torch.Tensor, mask: torch.Tensor) -> float:
    """k3 estimate of KL(π_engine ‖ π_trainer) on the engine's samples: r − 1 − log r, r = π_trainer/π_engine."""
    log_r = (trainer_logp.detach() - engine_logp) * mask
    return masked_mean(torch.exp(log_r) - 1.0 - log_r, mask).item()
