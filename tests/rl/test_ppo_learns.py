"""PPO with a learned critic raises accuracy on the tiny model (slow: a warm start and ~16 iterations)."""

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
        "model.warm_start.steps=250",
        "optimizer.lr=3.0e-4",
        "train.iterations=16",
        "eval.every=4",
        "eval.predict_asymptote=false",
        "checkpoint.every=16",
    ])
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    evals = [m["val/accuracy"] for m in lines if "val/accuracy" in m]
    assert len(evals) == 5 and evals[0] > 0.0  # the warm start gives RL something to work with
    # 128 held-out prompts × 4 samples: the accuracy's standard error is about 0.02
    assert (evals[-1] + evals[-2]) / 2 > evals[0] + 0.04, evals
    trained = [m for m in lines if "train/critic/value_loss" in m]
    assert trained[-1]["train/critic/value_loss"] < trained[0]["train/critic/value_loss"]
