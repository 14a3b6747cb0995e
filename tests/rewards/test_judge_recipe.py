"""recipes/tiny/judge_math.yaml through rl.trainer.train (slow): the tiny model as its own judge
through the hf engine and through the colocated vllm engine (one generate call per batch), combined
with math_verify by max."""

import json
from pathlib import Path

import pytest
import yaml

from rl.config import load_recipe
from rl.logger import read_jsonl
from rl.trainer import train

ROOT = Path(__file__).resolve().parents[2]


def _judges():
    try:
        import vllm  # noqa: F401
    except ImportError:
        return ["hf"]
    return ["hf", "vllm"]


@pytest.mark.slow
@pytest.mark.parametrize("judge", _judges())
def test_tiny_judge_recipe_trains(tmp_path, tiny_model_dir, judge):
    path = ROOT / "recipes" / "tiny" / "judge_math.yaml"
    functions = yaml.safe_load(path.read_text())["reward"]["functions"]
    for f in functions:
        if f["name"] == "llm_judge":
            f["args"].update(url=str(tiny_model_dir), backend=judge)
    recipe = load_recipe(path, [
        f"model.path={tiny_model_dir}", f"logging.runs_dir={tmp_path / 'runs'}", "logging.progress=false",
        f"reward.functions={json.dumps(functions)}",
    ])
    metrics = read_jsonl(train(recipe) / "metrics.jsonl")
    trained = [m for m in metrics if "train/reward" in m]
    assert len(trained) == 2
    rows = recipe.train.prompts_per_iteration * recipe.algorithm.group_size
    for m in trained:
        assert 0.0 <= m["train/reward"] <= 1.0
        assert 0.0 < m["train/reward/llm_judge"] < 1.0  # P(yes) of a random judge: neither 0 nor 1
        assert m["train/reward/llm_judge/samples"] == 2 * rows
        assert "train/reward/llm_judge/unparseable" in m and m["train/reward/llm_judge/requests"] == 1
        # max(math_verify, judge) is at least the judge's mean
        assert m["train/reward"] >= m["train/reward/llm_judge"] - 1e-6
