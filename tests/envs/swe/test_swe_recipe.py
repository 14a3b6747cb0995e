"""recipes/tiny/swe_pocketlib.yaml end to end through rl.trainer.train: task generation, the
sandbox, multi-turn episodes of the tiny model, grading, an update, eval, checkpoint; then the run
directory holds what the contract says and no sandbox is left behind."""

import os

import pytest

from rl.config import load_recipe
from rl.logger import read_jsonl
from rl.trainer import train


def processes_of_uids(low: int, high: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
            except (OSError, StopIteration, ValueError):
                continue
            if low <= uid < high:
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_tiny_swe_recipe_runs_end_to_end(tmp_path, tiny_model_dir, capfd):
    from tests.conftest import require_bwrap

    require_bwrap()
    sandboxes = tmp_path / "sandboxes"
    recipe = load_recipe("recipes/tiny/swe_pocketlib.yaml", [
        f"model.path={tiny_model_dir}", f"logging.runs_dir={tmp_path / 'runs'}", "logging.progress=false",
        f"env.cache_dir={tmp_path / 'cache'}", f"env.sandbox.root={sandboxes}",
    ])
    assert recipe.train.iterations == 2
    run_dir = train(recipe)

    out = capfd.readouterr().out
    assert "[asymptote] sandbox: bubblewrap" in out and "network: cut" in out  # the isolation in force, at start-up
    assert "generated 10 pocketlib tasks" in out

    metrics = read_jsonl(run_dir / "metrics.jsonl")
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    for m in metrics[1:]:
        assert 0.0 <= m["train/reward"] <= 1.0 and 0.0 <= m["train/reward/swe_tests"] <= 1.0
        assert m["train/reward_errors"] == 0 and m["train/rollout/env_errors"] == 0
        assert m["train/rollout/turns"] >= 1 and "train/rollout/observation_tokens" in m
        assert sum(v for k, v in m.items() if k.startswith("train/rollout/end/")) == pytest.approx(1.0)
        assert m["compute/tokens"] > 0 and "train/loss" in m
    for a, b in zip(metrics, metrics[1:]):  # compute/tokens counts sampled tokens, not observations
        n = recipe.train.prompts_per_iteration * recipe.algorithm.group_size
        sampled = n * (b["train/response_length/mean"] - b["train/rollout/observation_tokens"])
        assert b["compute/tokens"] - a["compute/tokens"] == pytest.approx(sampled)
    assert 0.0 <= metrics[0]["val/accuracy"] <= 1.0 and 0.0 <= metrics[-1]["val/accuracy"] <= 1.0

    samples = read_jsonl(run_dir / "samples.jsonl")
    assert len(samples) == 2 * 2  # samples_per_iteration prompts per iteration
    for s in samples:
        assert len(s["completions"]) == len(s["rewards"]) == len(s["env_info"]) == 2
        assert all(0.0 <= r <= 1.0 for r in s["rewards"])
        for info, r in zip(s["env_info"], s["rewards"]):
            assert info["instance_id"] == s["prompt_id"] and info["error"] is None
            assert info["end_reason"] in ("max_turns", "max_tokens", "submit")
            v = info["verdict"]
            assert v is not None and v["test_output"] and r == (1.0 if v["resolved"] else 0.0)
            assert len(v["test_output"]) <= recipe.env.max_test_output_chars + 100
    assert (run_dir / "checkpoints" / "latest").exists() and (run_dir / "recipe.yaml").is_file()

    # nothing left behind: no workspace, no process of a sandbox uid
    leftovers = [p for p in sandboxes.iterdir() if p.name != "uids"]
    assert leftovers == []
    sb = recipe.env.sandbox
    assert processes_of_uids(sb.uid_base, sb.uid_base + sb.uid_count) == []
