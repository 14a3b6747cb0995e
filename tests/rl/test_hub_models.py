"""Hugging Face hub ids as model paths, resolved through huggingface_hub's cache.

The hub itself is unreachable here, so the cache is populated the way huggingface_hub lays it out
(models--org--name/{refs/main, snapshots/<commit>/...}); huggingface_hub's own scan_cache_dir must
recognise it, so the layout is the library's, not ours. The "online" cases point the hub endpoint
at a closed loopback port."""

import shutil
from pathlib import Path

import pytest
import torch

from rl.logger import read_jsonl
from rl.models import load_model, load_tokenizer, looks_like_hub_id, resolve_model_path
from rl.trainer import train
from rl.warm_start import warm_start_path

REPO = "asymptote-test/tiny-math"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_model_dir) -> Path:
    """An HF cache holding REPO at COMMIT (the tiny model's files), made the default cache."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    repo = cache / ("models--" + REPO.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for f in tiny_model_dir.iterdir():
        if f.is_file():
            shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the hub is unreachable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_the_cache_layout_is_huggingface_hubs_own(hub_cache):
    from huggingface_hub import scan_cache_dir

    repos = {r.repo_id: r for r in scan_cache_dir(hub_cache).repos}
    assert REPO in repos
    assert {rev.commit_hash for rev in repos[REPO].revisions} == {COMMIT}


def test_a_cached_hub_id_resolves_offline_and_loads(hub_cache, tiny_model_dir):
    path = resolve_model_path(REPO)
    assert path == hub_cache / "models--asymptote-test--tiny-math" / "snapshots" / COMMIT
    model, reference = load_model(REPO), load_model(tiny_model_dir)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert load_tokenizer(REPO).get_vocab() == load_tokenizer(tiny_model_dir).get_vocab()


def test_a_missing_hub_id_offline_names_the_id_and_the_cache(hub_cache):
    with pytest.raises(FileNotFoundError) as e:
        resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct")
    message = str(e.value)
    assert "'Qwen/Qwen2.5-0.5B-Instruct'" in message
    assert str(hub_cache) in message
    assert "HF_HUB_OFFLINE=1" in message and "hf download Qwen/Qwen2.5-0.5B-Instruct" in message


def test_online_with_the_hub_unreachable_a_cached_id_still_resolves(hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert resolve_model_path(REPO).name == COMMIT
    with pytest.raises(FileNotFoundError, match="could not be reached"):
        resolve_model_path("asymptote-test/absent")


def test_local_directories_win_and_bad_paths_say_what_is_allowed(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tiny_model_dir.parent)
    assert resolve_model_path(tiny_model_dir.name) == Path(tiny_model_dir.name)  # "tiny" is a directory here
    with pytest.raises(FileNotFoundError, match="nor a Hugging Face hub id"):
        resolve_model_path(tmp_path / "no" / "such" / "dir")
    assert looks_like_hub_id("Qwen/Qwen2.5-0.5B-Instruct") and looks_like_hub_id("gpt2")
    assert not looks_like_hub_id("/abs/path") and not looks_like_hub_id("a/b/c") and not looks_like_hub_id("../x")


def test_a_recipe_trains_from_a_hub_id_and_warm_starts_into_its_run_directory(hub_cache, tmp_path):
    from tests.rl.test_trainer import make_recipe

    recipe = make_recipe(tmp_path, REPO, train__iterations=1, eval__every=1,
                         model__warm_start={"steps": 2, "batch_size": 4})
    # the cache's snapshot is huggingface_hub's, not ours to write: the warm start goes with the run
    assert warm_start_path(recipe).parent == recipe.run_dir / "warm_start"
    run_dir = train(recipe)
    lines = read_jsonl(run_dir / "metrics.jsonl")
    assert [m["iteration"] for m in lines] == [0, 1]
    assert (recipe.run_dir / "warm_start").is_dir()
    assert not list(hub_cache.rglob("warm_start"))
    assert "model:\n  path: asymptote-test/tiny-math" in (run_dir / "recipe.yaml").read_text()  # the id, portable
