"""Generation throughput of the rollout engines on the tiny model: hf (transformers generate) vs
vllm (colocated, in-process) vs vllm-server (one server process on 127.0.0.1), and the time of one
weight sync into each vLLM engine.

    python bench/engines.py [--prompts 64] [--n 8] [--max-new-tokens 32] [--repeats 3] [--engines hf,vllm,vllm-server]

Prints generated tokens per second (mean over repeats after one warm-up call) and seconds per weight
sync. Sampling at temperature 1 from a random tiny model: completions end at EOS or the budget, so
throughput counts the tokens actually generated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engines", default="hf,vllm,vllm-server")
    a = p.parse_args()

    import torch

    from rl.config import ServerConfig
    from rl.models import build_tiny_model, load_model, load_tokenizer, render_prompt
    from rl.rollout.base import SamplingParams
    from rl.rollout.hf import HFEngine, _eos_ids

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        tok, model = load_tokenizer(model_dir), load_model(model_dir)
        prompts = [render_prompt(tok, [{"role": "user", "content": f"{i % 10}+{i // 10 % 10}="}]) for i in range(a.prompts)]
        params = SamplingParams(n=a.n, max_new_tokens=a.max_new_tokens)
        options = dict(dtype="float32", max_model_len=256, max_num_seqs=256, kv_cache_gb=1)
        print(f"{a.prompts} prompts x {a.n} samples, <= {a.max_new_tokens} new tokens, torch threads {torch.get_num_threads()}")
        print(f"{'engine':<12} {'tokens/s':>10} {'s/call':>8} {'s/sync':>8}")
        for name in a.engines.split(","):
            if name == "hf":
                engine = HFEngine(model, tok, batch_size=512)
            elif name == "vllm":
                from rl.rollout.vllm import VLLMEngine

                engine = VLLMEngine(model_dir, tok, _eos_ids(model, tok), gpu_memory_utilization=0.1, **options)
            else:
                from rl.rollout.vllm_client import VLLMServerEngine

                engine = VLLMServerEngine(model_dir, tok, _eos_ids(model, tok), ServerConfig(num_servers=1),
                                          server_options=options)
            try:
                engine.generate(prompts, params)  # warm-up
                tokens, seconds = 0, 0.0
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    groups = engine.generate(prompts, params)
                    seconds += time.perf_counter() - t0
                    tokens += sum(len(c.token_ids) for g in groups for c in g)
                t0 = time.perf_counter()
                engine.update_weights(model, version=1)
                sync = time.perf_counter() - t0
                print(f"{name:<12} {tokens / seconds:>10.0f} {seconds / a.repeats:>8.2f} {sync:>8.3f}", flush=True)
            finally:
                engine.close()


if __name__ == "__main__":
    main()
