"""A local judge model for llm_judge (rewards/judge.py), served in this process by one of our
rollout engines: `hf` (rl/rollout/hf.py, for small judges and tests) or the colocated `vllm`
engine (rl/rollout/vllm.py).

rewards/ never imports rl/, so the layer that owns the engines hands this backend's factory to the
scorer: a recipe's llm_judge with `backend: hf|vllm` and `url: <model directory>` is judged by
`EngineJudge(url, backend)`, built once per process by rewards.judge.judge_client from
`compute_rewards(..., local_judge=EngineJudge)` (the trainer's Sampler; `asymptote verifier-report`).
"""

from __future__ import annotations

import threading

from rewards.judge import JUDGE_STATS, JudgeOutput, label_logprobs
from rl.models import load_model, load_tokenizer, render_prompt, resolve_model_path
from rl.rollout.base import SamplingParams
from rl.rollout.hf import HFEngine


class EngineJudge:
    """A rewards.judge.JudgeBackend: a local model directory (or hub id) judged through the `hf`
    or the colocated `vllm` engine. A batch of judge prompts is one engine.generate call (k samples
    as n). Label log-probs (the verdict's P(yes)) come from a forward pass of the hf model per
    prompt, or, for vllm, one batched next-token request restricted to the labels' first tokens
    (VLLMGenerator.next_token_logprobs). Its (path, engine) signature is rewards.judge's
    LocalJudgeFactory, so the class itself is what the scorer is given."""

    def __init__(self, path: str, engine: str = "hf", *, kv_cache_gb: int = 1, gpu_memory_utilization: float = 0.2,
                 max_model_len: int | None = None):
        path = str(resolve_model_path(path))  # a local directory or a hub id
        self.tokenizer = load_tokenizer(path)
        self.engine_name = engine
        self.generate_calls = 0
        """engine.generate calls made (one per batch; tests read it)."""
        self._lock = threading.Lock()  # one batch at a time through the engine
        if engine == "hf":
            self.model = load_model(path)
            self.model.eval()
            self.engine = HFEngine(self.model, self.tokenizer)
        elif engine == "vllm":
            from rl.rollout.vllm import VLLMEngine
            from rl.rollout.vllm_server import model_eos_ids

            if max_model_len is None:  # the model's own context, at most 4096 (judge prompts are short)
                from transformers import AutoConfig

                max_model_len = min(4096, getattr(AutoConfig.from_pretrained(path), "max_position_embeddings", 4096))
            self.model = None
            self.engine = VLLMEngine(path, self.tokenizer, model_eos_ids(path), kv_cache_gb=kv_cache_gb,
                                     gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
        else:
            raise ValueError(f"unknown judge engine '{engine}'; allowed: hf, vllm")

    def complete_batch(self, requests: list[tuple[str, int]], *, labels: tuple[str, ...] = (),
                       temperature: float = 0.0, max_tokens: int = 16,
                       workers: int = 1) -> list[list[JudgeOutput] | Exception]:
        if not requests:
            return []
        ids = [render_prompt(self.tokenizer, [{"role": "user", "content": text}]) for text, _ in requests]
        out: list[list[JudgeOutput] | Exception] = [[] for _ in requests]
        label_lp = self._first_token_logprobs(ids, labels) if labels else [None] * len(ids)
        # one generate call per distinct n (one for verdict and score; pairwise with odd k: two)
        for n in sorted({n for _, n in requests if n > 0}):
            rows = [i for i, (_, k) in enumerate(requests) if k == n]
            # the hf engine always samples; temperature 0 (greedy) is approximated by a very low one
            params = SamplingParams(n=n, max_new_tokens=max_tokens,
                                    temperature=max(temperature, 1e-4) if self.engine_name == "hf" else temperature)
            with self._lock:
                JUDGE_STATS.add("requests")
                self.generate_calls += 1
                groups = self.engine.generate([ids[i] for i in rows], params)
            for i, group in zip(rows, groups):
                out[i] = [JudgeOutput(c.text, label_lp[i]) for c in group]
        return out

    def _first_token_logprobs(self, ids: list[list[int]], labels: tuple[str, ...]) -> list[dict[str, float]]:
        """Each prompt's next-token log-probs of the labels' first tokens (variants: capitalised,
        with a leading space)."""
        import torch

        firsts: dict[str, int] = {}
        for label in labels:
            for variant in (label, label.capitalize(), " " + label, " " + label.capitalize()):
                tok = self.tokenizer.encode(variant, add_special_tokens=False)
                if tok:
                    firsts[self.tokenizer.decode(tok[:1])] = tok[0]
        if self.model is None:  # vllm: one request per prompt for the next token, among these tokens only
            by_id = self.engine.generator.next_token_logprobs(ids, list(firsts.values()))
            return [label_logprobs({t: lp[i] for t, i in firsts.items() if i in lp}, labels) for lp in by_id]
        result = []
        with torch.no_grad():
            for row in ids:  # one at a time: no padding to get wrong, and judge prompts are few
                logits = self.model(torch.tensor([row])).logits[0, -1].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                result.append(label_logprobs({t: float(logprobs[i]) for t, i in firsts.items()}, labels))
        return result
