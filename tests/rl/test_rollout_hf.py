"""The hf engine: shapes, finish reasons, and log-probs that agree with the trainer's."""

import pytest
import torch

from rl.batch import sequence_logprobs
from rl.models import load_model, load_tokenizer, render_prompt
from rl.rollout.base import SamplingParams
from rl.rollout.hf import HFEngine
from tests.rl.engine_contract import check_completions, check_seeded


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    return HFEngine(load_model(tiny_model_dir), tok, batch_size=5)


def _prompts(tok):
    return [render_prompt(tok, [{"role": "user", "content": q}]) for q in ("1+1=", "What is 12 + 30?", "9")]


def test_n_samples_per_prompt_and_finish_reasons(engine):
    prompts = _prompts(engine.tokenizer)
    groups = engine.generate(prompts, SamplingParams(n=4, max_new_tokens=6))  # batch_size 5 splits the 12 rows
    check_completions(groups, prompts, 4, 6, engine.eos_ids, engine.tokenizer)


def test_stop_on_eos(engine):
    saved = engine.eos_ids
    engine.eos_ids = list(range(len(engine.tokenizer)))  # every token ends the completion
    try:
        groups = engine.generate(_prompts(engine.tokenizer)[:1], SamplingParams(n=3, max_new_tokens=6))
    finally:
        engine.eos_ids = saved
    assert all(c.finish_reason == "stop" and len(c.token_ids) == 1 for c in groups[0])


def test_engine_logprobs_match_the_trainer_at_the_same_temperature(engine):
    prompts = _prompts(engine.tokenizer)
    for temperature in (1.0, 0.7):
        groups = engine.generate(prompts, SamplingParams(n=2, max_new_tokens=8, temperature=temperature))
        flat = [c for g in groups for c in g]
        with torch.no_grad():
            logp, _ = sequence_logprobs(
                engine.model, [c.prompt_ids for c in flat], [c.token_ids for c in flat],
                engine.tokenizer.pad_token_id, temperature,
            )
        for i, c in enumerate(flat):
            assert torch.allclose(logp[i, : len(c.token_ids)], torch.tensor(c.logprobs), atol=1e-4)


def test_same_seed_same_samples(engine):
    check_seeded(engine, _prompts(engine.tokenizer))


def test_always_samples_from_the_current_weights(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    model = load_model(tiny_model_dir)
    engine = HFEngine(model, tok)
    prompt = _prompts(tok)[:1]
    torch.manual_seed(1)
    before = engine.generate(prompt, SamplingParams(n=1, max_new_tokens=5))[0][0]
    with torch.no_grad():  # a "training step": the engine holds the same module
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    engine.update_weights(model, version=1)
    torch.manual_seed(1)
    after = engine.generate(prompt, SamplingParams(n=1, max_new_tokens=5))[0][0]
    assert after.policy_versions == [1] * len(after.token_ids)
    with torch.no_grad():
        logp, _ = sequence_logprobs(model, [after.prompt_ids], [after.token_ids], tok.pad_token_id, 1.0)
    assert torch.allclose(logp[0, : len(after.token_ids)], torch.tensor(after.logprobs), atol=1e-4)
    assert before.logprobs != after.logprobs
    with pytest.raises(ValueError, match="samples from the training model itself"):
        engine.update_weights(load_model(tiny_model_dir), version=2)
