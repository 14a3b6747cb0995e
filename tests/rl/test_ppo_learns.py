"""PPO with a learned critic raises accuracy on the tiny model (slow: the demo's warm start and 24 iterations)."""

from pathlib import Path

import pytest

from rl.config import load_recipe
from rl.logger import read_jsonl
from rl.models import build_tiny_model
from rl.trainer import train

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_ppo_run_raises_accuracy(tmp_path):
    model_dir = build_tiny_model(tmp_path / "models" / "tiny-math", seed=0)
    recipe = load_recipe(ROOT / "recipes" / "tiny" / "ppo.yaml", [
        f"model.path={model_dir}",
        f"logging.runs_dir={tmp_path / 'runs'}",
        "logging.progress=false",
        "train.iterations=24",
        "eval.every=4",
        "eval.predict_asymptote=false",
        "checkpoint.every=16",
    ])
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    evals = [m["val/accuracy"] for m in lines if "val/accuracy" in m]
    assert len(evals) == 7 and evals[0] > 0.0  # the warm start gives RL something to work with
    # 128 held-out prompts × 4 samples: one eval's standard error is about 0.02 (prompts repeat
    # across evals, so averaging three evals removes sampling noise, not the prompts' own)
    assert sum(evals[-3:]) / 3 > evals[0] + 0.04, evals
    trained = [m for m in lines if "train/critic/value_loss" in m]
    assert trained[-1]["train/critic/value_loss"] < trained[0]["train/critic/value_loss"]
