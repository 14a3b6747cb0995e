"""How the vllm-server engine finds its servers and a server its end-of-sequence ids (no vLLM needed)."""

import pytest

from rl.config import ServerConfig
from rl.models import build_tiny_model, load_model, load_tokenizer
from rl.rollout import server_config
from rl.rollout.hf import eos_token_ids
from rl.rollout.vllm_server import model_eos_ids


def test_the_servers_a_job_script_exported_are_attached():
    env = {"ASYMPTOTE_VLLM_SERVERS": "http://node1:8000, http://node2:8000"}
    assert server_config(ServerConfig(), env).urls == ["http://node1:8000", "http://node2:8000"]
    # urls in the recipe win; without either the engine launches its own
    assert server_config(ServerConfig(urls=["http://a:1"]), env).urls == ["http://a:1"]
    assert server_config(ServerConfig(), {}).urls == []
    with pytest.raises(ValueError, match="ASYMPTOTE_VLLM_SERVERS must hold comma-separated http"):
        server_config(ServerConfig(), {"ASYMPTOTE_VLLM_SERVERS": "node1:8000"})


def test_a_server_derives_the_eos_ids_the_trainer_uses(tmp_path):
    path = build_tiny_model(tmp_path / "tiny", seed=0)
    assert model_eos_ids(path) == eos_token_ids(load_model(path, "float32"), load_tokenizer(path))
