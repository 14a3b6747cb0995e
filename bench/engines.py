"""Generation throughput of the rollout engines: hf (transformers generate) vs vllm (colocated,
in-process) vs vllm-server (one server process on 127.0.0.1), and the time of one weight sync into
each vLLM engine, on a random Qwen2 with the character tokenizer of the tiny model: `--model tiny`
(~0.8M parameters) or `--model 100m` (~101M; rl/models.py MODEL_SHAPES).

    python bench/engines.py [--model tiny|100m] [--prompts P] [--n N] [--max-new-tokens T] [--repeats R]
                            [--engines hf,vllm,vllm-server]

Defaults: tiny 64 prompts x 8 samples, 100m 8 prompts x 4 samples (minutes on 2 CPU cores); <= 32
new tokens; 3 (tiny) or 2 (100m) timed repeats after one warm-up call. Prints generated tokens per
second, seconds per generate call and seconds per weight sync. Sampling at temperature 1 from a
random model: completions end at EOS or the budget, so throughput counts the tokens actually
generated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing
DEFAULTS = {"tiny": dict(prompts=64, n=8, repeats=3), "100m": dict(prompts=8, n=4, repeats=2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--size", dest="model", choices=sorted(DEFAULTS), default="tiny")
    p.add_argument("--prompts", type=int)
    p.add_argument("--n", type=int)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int)
    p.add_argument("--engines", default="hf,vllm,vllm-server")
    a = p.parse_args()
    for key, value in DEFAULTS[a.model].items():
        if getattr(a, key) is None:
            setattr(a, key, value)

    import torch

    from rl.config import ServerConfig
    from rl.models import build_tiny_model, load_model, load_tokenizer, non_embedding_params, render_prompt
    from rl.rollout.base import SamplingParams
    from rl.rollout.hf import HFEngine, eos_token_ids

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / a.model, size=a.model)
        tok, model = load_tokenizer(model_dir), load_model(model_dir)
        total = sum(t.numel() for t in model.parameters())
        print(f"model {a.model}: {total:,} parameters ({non_embedding_params(model):,} non-embedding), float32")
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

                engine = VLLMEngine(model_dir, tok, eos_token_ids(model, tok), gpu_memory_utilization=0.1, **options)
            else:
                from rl.rollout.vllm_client import VLLMServerEngine

                engine = VLLMServerEngine(model_dir, tok, eos_token_ids(model, tok), ServerConfig(num_servers=1),
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
