"""PipelineRL-style asynchronous sampling (async.max_off_policy_steps = k > 0).

A background thread runs steps 1-3 (`Sampler.sample`: prompts, rollouts, rewards) again and again
on its own cursor into the prompt stream and hands finished batches to the trainer through a
bounded queue, so generation goes on while the trainer computes its update. After every update the
trainer pushes the new weights to the engine *in flight* (they land between two decoding steps of
the requests being generated; PipelineRL, Piché et al. 2025), so one completion may hold tokens of
several policy versions; every token carries its version (Completion.policy_versions).

The staleness bound: a group is trained on only if every token in it was sampled at most k
optimizer steps before the current step (lag = step − oldest version in the group); older groups
are dropped whole (GRPO's statistics are per group), and what is dropped is counted and logged,
never silently lost. The loss then corrects for the engine's older weights with truncated
importance sampling against the engine's own log-probs (algorithm.tis, rl/numerics.py).

k = 0 never creates this class: the trainer samples synchronously, as before.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from rl.checkpoint import TrainerState
from rl.rollout.base import Completion
from rl.sampling import Rollouts, Sampler


def group_lags(groups: list[list[Completion]], step: int) -> list[int]:
    """Per group: optimizer steps between the oldest token's policy version and `step`."""
    return [step - min((v for c in g for v in c.policy_versions), default=step) for g in groups]


def drop_stale(train: list[int], lags: list[int], k: int) -> tuple[list[int], int]:
    """The groups of `train` at most k steps stale, and how many were dropped."""
    keep = [i for i in train if lags[i] <= k]
    return keep, len(train) - len(keep)


@dataclass
class _Batch:
    rollouts: Rollouts
    data_position: int
    """The producer's cursor after this batch: where a resumed run starts again."""
    timings: dict[str, float]


class AsyncSampler:
    """A generation thread ahead of the trainer, at most `queue_size` batches ahead."""

    def __init__(self, sampler: Sampler, data_position: int, max_off_policy_steps: int, queue_size: int = 1):
        self.sampler, self.k = sampler, max_off_policy_steps
        self.queue: queue.Queue[_Batch] = queue.Queue()
        # a batch is started only when fewer than queue_size batches are generated and not yet taken:
        # with 1, the batch the trainer takes after its update was generated during that update
        # (lag ≤ train.mini_batches × epochs steps), so nothing is dropped unless k is smaller
        self.slots = threading.Semaphore(queue_size)
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.dropped_groups_total = 0
        self._cursor = TrainerState(data_position=data_position)
        self._thread = threading.Thread(target=self._produce, name="asymptote-async-sampler", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self.stopping.is_set():
                if not self.slots.acquire(timeout=0.1):
                    continue
                timings: dict[str, float] = {}
                rollouts = self.sampler.sample(self._cursor, timings)
                self.queue.put(_Batch(rollouts, self._cursor.data_position, timings))
        except BaseException as e:  # handed to the trainer, which raises it
            self.error = e

    def next(self, state: TrainerState) -> tuple[Rollouts, dict[str, float], dict[str, float]]:
        """The next batch with groups more than k steps stale dropped (a batch with none left is
        skipped: its groups are counted too); advances state.data_position past it. Returns the
        rollouts, metrics (staleness, drops, wait) and the producer's timings."""
        dropped, skipped_batches, skipped_tokens, wait = 0, 0, 0, 0.0
        while True:
            t0 = time.perf_counter()
            batch = self._get()
            self.slots.release()
            wait += time.perf_counter() - t0
            r = batch.rollouts
            lags = group_lags(r.groups, state.step)
            r.train, n = drop_stale(r.train, lags, self.k)
            dropped += n
            state.data_position = batch.data_position
            if r.train:
                break
            skipped_batches += 1
            skipped_tokens += sum(len(c.token_ids) for g in r.groups for c in g)
        self.dropped_groups_total += dropped
        trained_lags = [lags[i] for i in r.train]
        token_lags = [state.step - v for i in r.train for c in r.groups[i] for v in c.policy_versions]
        metrics = {
            "train/async/dropped_groups": float(dropped),
            "train/async/dropped_groups_total": float(self.dropped_groups_total),
            "train/async/skipped_batches": float(skipped_batches),
            "train/async/skipped_tokens": float(skipped_tokens),
            "train/async/queue_size": float(self.queue.qsize()),
            "train/staleness/max": float(max(trained_lags)),
            "train/staleness/token_mean": sum(token_lags) / max(len(token_lags), 1),
            "train/staleness/mixed_frac": sum(len(set(c.policy_versions)) > 1 for i in r.train for c in r.groups[i])
            / max(sum(len(r.groups[i]) for i in r.train), 1),
            "train/time/wait": wait,
        }
        return r, metrics, batch.timings

    def _get(self) -> _Batch:
        while True:
            if self.error is not None:
                raise RuntimeError(f"the async sampler's generation thread failed: {self.error!r}") from self.error
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self.error is None:
                    raise RuntimeError("the async sampler's generation thread stopped")

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop producing; waits for the generation in flight to finish (up to timeout_s)."""
        self.stopping.set()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=timeout_s)
