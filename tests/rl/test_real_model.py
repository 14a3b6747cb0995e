"""The engines and the trainer on a real pretrained model, SmolLM2-135M-Instruct (BPE vocabulary of
49,152, ChatML, tied embeddings, 30 Llama layers): FLOPs from its architecture, the hf engine's and
the vllm engine's log-probs against the trainer's, and weights synced into vLLM after a real step.

Slow: the model is fetched and converted once per machine (tests/conftest.py: smollm2_dir), and a
forward-backward of it takes seconds on a CPU thread."""

import pytest
import torch

from rl.batch import sequence_logprobs
from rl.models import load_model, load_tokenizer, non_embedding_params, render_prompt
from rl.rollout.base import SamplingParams
from rl.rollout.hf import HFEngine, eos_token_ids

pytestmark = pytest.mark.slow

QUESTIONS = ["What is 7 + 5?", "Compute 3 * 4.", "What is 9 - 2? Answer with a number."]
# |engine log-prob - trainer log-prob| per token in float32 on CPU, as for the tiny model
# (docs/engines.md); measured on this model: see bench/README.md, "A real model"
LOGPROB_ATOL = 1e-4


@pytest.fixture(scope="module")
def real(smollm2_dir):
    tok = load_tokenizer(smollm2_dir)
    model = load_model(smollm2_dir).eval()
    prompts = [render_prompt(tok, [{"role": "user", "content": q}]) for q in QUESTIONS]
    return smollm2_dir, tok, model, prompts


def _gap(model, tok, flat, temperature):
    with torch.no_grad():
        logp, _ = sequence_logprobs(model, [c.prompt_ids for c in flat], [c.token_ids for c in flat],
                                    tok.pad_token_id, temperature)
    return max((logp[i, : len(c.token_ids)] - torch.tensor(c.logprobs)).abs().max().item()
               for i, c in enumerate(flat))


def one_step_towards(model, tok, prompts, text: str) -> None:
    """One real AdamW step raising the likelihood of `text` after every prompt."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    target = tok(text, add_special_tokens=False).input_ids
    logp, _ = sequence_logprobs(model, prompts, [target] * len(prompts), tok.pad_token_id, 1.0)
    (-logp.mean()).backward()
    opt.step()
    model.eval()


def step_sync_and_check(engine, model, tok, prompts, text: str, version: int) -> None:
    """The engine agrees with the trainer; after one real step it no longer does; after the weight
    sync its samples carry the new version and agree with the trainer again."""
    old = [c for g in engine.generate(prompts, SamplingParams(n=2, max_new_tokens=24)) for c in g]
    assert _gap(model, tok, old, 1.0) < LOGPROB_ATOL
    one_step_towards(model, tok, prompts, text)
    assert _gap(model, tok, old, 1.0) > 1e-3  # the step moved the trainer's distribution away from the engine's
    engine.update_weights(model, version=version)
    after = [c for g in engine.generate(prompts, SamplingParams(n=2, max_new_tokens=24)) for c in g]
    assert all(c.policy_versions == [version] * len(c.token_ids) for c in after)
    assert _gap(model, tok, after, 1.0) < LOGPROB_ATOL


def test_flops_count_the_real_architecture(real):
    """N of the 2N/6N FLOP estimates, by hand from the config: GQA attention, a gated MLP, two
    RMSNorms per layer and a final one; the tied embedding (49,152 x 576) is left out."""
    _, _, model, _ = real
    c = model.config
    kv = c.num_key_value_heads * (c.hidden_size // c.num_attention_heads)
    per_layer = 2 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * kv + 3 * c.hidden_size * c.intermediate_size \
        + 2 * c.hidden_size
    assert (c.hidden_size, kv, c.intermediate_size, c.num_hidden_layers) == (576, 192, 1536, 30)
    assert non_embedding_params(model) == c.num_hidden_layers * per_layer + c.hidden_size == 106_203_456
    assert sum(p.numel() for p in model.parameters()) == 106_203_456 + 49_152 * 576


def test_the_chat_template_and_end_of_turn(real):
    _, tok, model, prompts = real
    text = tok.decode(prompts[0])
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>assistant\n")
    assert tok.convert_tokens_to_ids("<|im_end|>") in eos_token_ids(model, tok)


def test_hf_engine_samples_what_the_trainer_scores(real):
    _, tok, model, prompts = real
    engine = HFEngine(model, tok)
    groups = engine.generate(prompts, SamplingParams(n=2, max_new_tokens=24, temperature=1.0))
    flat = [c for g in groups for c in g]
    assert all(1 <= len(c.token_ids) <= 24 for c in flat)
    assert _gap(model, tok, flat, 1.0) < LOGPROB_ATOL


def test_vllm_engine_agrees_with_the_trainer_before_and_after_a_weight_sync(real):
    pytest.importorskip("vllm", reason="the vllm engine needs vLLM")
    from rl.rollout.vllm import VLLMEngine

    path, tok, model, prompts = real
    engine = VLLMEngine(path, tok, eos_token_ids(model, tok), dtype="float32", gpu_memory_utilization=0.05,
                        max_num_seqs=16, max_model_len=512, bucket_mb=64)
    try:
        for temperature in (1.0, 0.7):
            flat = [c for g in engine.generate(prompts, SamplingParams(n=2, max_new_tokens=24, temperature=temperature))
                    for c in g]
            assert _gap(model, tok, flat, temperature) < LOGPROB_ATOL
        step_sync_and_check(engine, model, tok, prompts, "42 42 42", version=1)
    finally:
        engine.close()


def test_vllm_server_engine_takes_pushed_weights_of_the_real_model(real):
    """A vllm server process on 127.0.0.1 serves the real model; after a real step the trainer's
    weights go over HTTP in buckets and the server's log-probs are the new model's."""
    pytest.importorskip("vllm", reason="the vllm-server engine needs vLLM")
    from rl.config import ServerConfig
    from rl.rollout.vllm_client import VLLMServerEngine

    path, tok, _, prompts = real
    model = load_model(path).eval()  # the server loads the weights on disk; the module's model has trained
    cfg = ServerConfig(num_servers=1, timeout_s=300, retries=1, startup_timeout_s=300)
    options = dict(dtype="float32", kv_cache_gb=1, max_num_seqs=16, max_model_len=512)
    engine = VLLMServerEngine(path, tok, eos_token_ids(model, tok), cfg, bucket_mb=64, server_options=options)
    try:
        step_sync_and_check(engine, model, tok, prompts, "7 7 7", version=2)
    finally:
        engine.close()


# grpo_async.yaml is grpo.yaml (its base) made asynchronous; scalerl.yaml is grpo's path with its loss
# terms, tested on tiny models. That the engine's log-probs are the trainer's after a weight sync of
# the real model is test_vllm_engine_agrees_with_the_trainer_before_and_after_a_weight_sync (the
# synchronous recipe's own 2-iteration run was dropped for CI's time: ~3 minutes on CI's machine).
@pytest.mark.parametrize("recipe", ["grpo_async"])
def test_the_smollm2_recipes_train(real, tmp_path, recipe):
    """2 iterations of recipes/smollm2/grpo_async.yaml (LoRA, vllm engine, k = 1) on the real model,
    smaller batches: the second batch was generated during the first update, from the weights before
    it (staleness 1, nothing dropped); the first, generated before any update, has the trainer's
    log-probs."""
    pytest.importorskip("vllm", reason="the smollm2 recipes sample with the vllm engine")
    from pathlib import Path

    from rl.config import load_recipe
    from rl.logger import read_jsonl
    from rl.lora import ADAPTER_DIR
    from rl.trainer import train

    path = real[0]
    root = Path(__file__).resolve().parents[2]
    r = load_recipe(root / "recipes" / "smollm2" / f"{recipe}.yaml", [
        f"model.path={path}", f"logging.runs_dir={tmp_path}", "logging.progress=false", "train.iterations=2",
        "train.prompts_per_iteration=4", "env.val_size=8", "eval.every=2", "checkpoint.every=2",
        "resources.cpu_threads=1", "eval.predict_asymptote=false",
    ])
    run_dir = train(r)
    lines = read_jsonl(run_dir / "metrics.jsonl")
    assert [m["iteration"] for m in lines] == [0, 1, 2]
    assert "val/accuracy" in lines[0] and "val/accuracy" in lines[-1]
    trained = [m for m in lines if "train/reward" in m]
    assert len(trained) == 2
    assert [m["train/staleness/max"] for m in trained] == [0, 1]
    assert trained[-1]["train/async/dropped_groups_total"] == 0
    assert trained[0]["train/mismatch_kl"] < 1e-5  # sampled from the weights it trains
    assert trained[1]["train/tis/ratio_mean"] != 1.0  # one step stale: TIS corrects for it
    assert (run_dir / "final_model" / ADAPTER_DIR / "adapter_config.json").is_file()
