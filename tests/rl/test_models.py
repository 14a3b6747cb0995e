"""The tiny model and its character tokenizer, and loading models from local paths."""

import string

import pytest
from transformers import AutoModelForCausalLM

from launch.cli import main
from rl.models import TINY_SHAPE, load_model, load_tokenizer, non_embedding_params, render_prompt


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


def test_non_embedding_parameters_by_hand(tiny_model_dir):
    h, i, layers = TINY_SHAPE["hidden_size"], TINY_SHAPE["intermediate_size"], TINY_SHAPE["num_hidden_layers"]
    kv = h // TINY_SHAPE["num_attention_heads"] * TINY_SHAPE["num_key_value_heads"]
    attention = (h * h + h) + 2 * (h * kv + kv) + h * h  # q, k, v with biases (Qwen2), o without
    mlp = 3 * h * i  # gate, up, down
    per_layer = attention + mlp + 2 * h  # two RMSNorms
    assert non_embedding_params(load_model(tiny_model_dir)) == layers * per_layer + h  # + final norm


def test_clear_errors_for_bad_model_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="asymptote tiny-model"):
        load_model(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_tokenizer(tmp_path / "empty")
