"""Rollout engines behind one protocol (rl/rollout/base.py): hf (transformers generate on the
training model), vllm (an in-process vLLM engine, rl/rollout/vllm.py) and vllm-server (vLLM server
processes, rl/rollout/vllm_client.py and rl/rollout/vllm_server.py)."""

from __future__ import annotations

from pathlib import Path

from rl.rollout.base import Completion, Engine, SamplingParams

__all__ = ["Completion", "Engine", "SamplingParams", "make_engine", "server_config"]

SERVERS_ENV = "ASYMPTOTE_VLLM_SERVERS"
"""Comma-separated server URLs that `asymptote launch` exports for a split topology's job."""


def server_config(cfg, environ=None):
    """The vllm-server engine's ServerConfig: with no `urls` in the recipe, the servers a job script
    started and exported in ASYMPTOTE_VLLM_SERVERS are attached to instead of launching new ones."""
    import os

    environ = os.environ if environ is None else environ
    urls = [u.strip() for u in environ.get(SERVERS_ENV, "").split(",") if u.strip()]
    if cfg.urls or not urls:
        return cfg
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ValueError(f"{SERVERS_ENV} must hold comma-separated http(s):// URLs; got {bad}")
    return cfg.model_copy(update={"urls": urls})


def make_engine(cfg, policy, tokenizer, model_path: str | Path, model_dtype: str, seed: int = 0) -> Engine:
    """The engine `cfg` (an EngineConfig) names. vLLM engines load `model_path` (the weights the
    policy starts from) and are synced from `policy` after each optimizer step."""
    from rl.rollout.hf import HFEngine, eos_token_ids

    if cfg.name == "hf":
        return HFEngine(policy, tokenizer, batch_size=cfg.batch_size)
    v = cfg.vllm
    options = dict(
        dtype=model_dtype if v.dtype == "auto" else v.dtype, gpu_memory_utilization=v.gpu_memory_utilization,
        enforce_eager=v.enforce_eager, max_model_len=v.max_model_len, max_num_seqs=v.max_num_seqs,
        kv_cache_gb=v.kv_cache_gb, seed=seed,
    )
    eos_ids = eos_token_ids(policy, tokenizer)
    if cfg.name == "vllm":
        from rl.rollout.vllm import VLLMEngine

        return VLLMEngine(model_path, tokenizer, eos_ids, bucket_mb=v.bucket_mb, sleep=v.sleep, **options)
    if cfg.name == "vllm-server":
        from rl.rollout.vllm_client import VLLMServerEngine

        server = server_config(cfg.server)
        return VLLMServerEngine(model_path, tokenizer, eos_ids, server, bucket_mb=v.bucket_mb, server_options=options)
    raise ValueError(f"unknown engine {cfg.name!r}; allowed: hf, vllm, vllm-server")
