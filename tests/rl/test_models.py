"""The tiny model and its character tokenizer, and loading models from local paths."""

import string

import pytest
import torch
from transformers import AutoModelForCausalLM

from launch.cli import main
from rl.models import MODEL_SHAPES, TINY_SHAPE, build_tiny_model, load_model, load_tokenizer, non_embedding_params, render_prompt


def test_cli_builds_a_model_that_loads_with_transformers(tmp_path, capsys):
    assert main(["tiny-model", str(tmp_path / "m")]) == 0
    assert "tiny model written to" in capsys.readouterr().out
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert model.config.model_type == "qwen2"
    tok = load_tokenizer(tmp_path / "m")
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id


def test_character_tokenizer_round_trips_every_printable_character(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    text = string.printable + " Calculate 12 + 30.\n\\boxed{42}"
    ids = tok(text, add_special_tokens=False).input_ids
    assert len(ids) == len(text)  # one token per character, whitespace included
    assert tok.decode(ids) == text
    assert tok.convert_ids_to_tokens(tok("é", add_special_tokens=False).input_ids) == ["<unk>"]


def test_chat_template_renders_chatml(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"}]
    ids = render_prompt(tok, messages)
    assert tok.decode(ids) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # special tokens are single tokens


def _non_embedding_by_hand(shape: dict[str, int]) -> int:
    h, i, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    kv = h // shape["num_attention_heads"] * shape["num_key_value_heads"]
    attention = (h * h + h) + 2 * (h * kv + kv) + h * h  # q, k, v with biases (Qwen2), o without
    mlp = 3 * h * i  # gate, up, down
    per_layer = attention + mlp + 2 * h  # two RMSNorms
    return layers * per_layer + h  # + final norm


def test_non_embedding_parameters_by_hand(tiny_model_dir):
    assert non_embedding_params(load_model(tiny_model_dir)) == _non_embedding_by_hand(TINY_SHAPE)


def test_100m_model_has_the_hand_computed_size_and_loads_with_transformers(tmp_path):
    path = build_tiny_model(tmp_path / "m", size="100m")
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = load_tokenizer(path)
    assert model.config.hidden_size == MODEL_SHAPES["100m"]["hidden_size"] == 768
    assert non_embedding_params(model) == _non_embedding_by_hand(MODEL_SHAPES["100m"])
    total = sum(p.numel() for p in model.parameters())  # tied embeddings: counted once
    assert total == non_embedding_params(model) + len(tok) * 768
    assert 80e6 < total < 120e6
    assert tok.get_vocab() == load_tokenizer(build_tiny_model(tmp_path / "t")).get_vocab()  # one tokenizer


def test_500m_shape_for_the_gpu_check_has_about_half_a_billion_parameters():
    """Counted on the meta device (no memory): the hand formula, and 0.45-0.55B in all."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    shape = MODEL_SHAPES["500m"]
    with torch.device("meta"):
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=104, tie_word_embeddings=True, **shape))
    assert non_embedding_params(model) == _non_embedding_by_hand(shape)
    assert 0.45e9 < sum(p.numel() for p in model.parameters()) < 0.55e9
    assert shape["max_position_embeddings"] >= 2048


def test_unknown_model_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="100m"):
        build_tiny_model(tmp_path / "m", size="1b")


def test_clear_errors_for_bad_model_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="asymptote tiny-model"):
        load_model(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_tokenizer(tmp_path / "empty")


def test_compact_chat_template_drops_the_role_names(tmp_path):
    """The demo's model: the same weights as ChatML's for a seed, shorter prompts, the same turn tokens."""
    chatml = build_tiny_model(tmp_path / "chatml", seed=3)
    compact = build_tiny_model(tmp_path / "compact", seed=3, chat="compact")
    msgs = [{"role": "user", "content": "Calculate 5 + 2 + 6."}]
    long, short = render_prompt(load_tokenizer(chatml), msgs), render_prompt(load_tokenizer(compact), msgs)
    tok = load_tokenizer(compact)
    assert tok.decode(short) == "Calculate 5 + 2 + 6.<|im_end|><|im_start|>"
    assert (len(long), len(short)) == (39, 22)
    a, b = (AutoModelForCausalLM.from_pretrained(d) for d in (chatml, compact))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="unknown chat template 'chatlm'; choose one of"):
        build_tiny_model(tmp_path / "bad", chat="chatlm")
