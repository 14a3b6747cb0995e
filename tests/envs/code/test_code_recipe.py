"""recipes/tiny/code_basic.yaml end to end through rl.trainer.train: code env, sandboxed tests,
outcome metrics, eval, samples.jsonl."""

import pytest

from rl.config import load_recipe
from rl.logger import read_jsonl
from rl.trainer import train


@pytest.mark.slow
def test_tiny_code_recipe_runs_end_to_end(tmp_path, tiny_model_dir):
    from tests.conftest import require_bwrap

    require_bwrap()
    recipe = load_recipe("recipes/tiny/code_basic.yaml", [
        f"model.path={tiny_model_dir}", f"logging.runs_dir={tmp_path / 'runs'}", "logging.progress=false",
    ])
    run_dir = train(recipe)
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    for m in metrics[1:]:
        assert 0.0 <= m["train/reward/code_tests"] <= 1.0 and m["train/reward_errors"] == 0
        outcomes = [k for k in m if k.startswith("train/reward/code_tests/")]
        assert sum(m[k] for k in outcomes) == recipe.train.prompts_per_iteration * recipe.algorithm.group_size
    assert 0.0 <= metrics[-1]["val/accuracy"] <= 1.0
    samples = read_jsonl(run_dir / "samples.jsonl")
    assert samples and all(s["prompt_id"].startswith("basic/train/") for s in samples)
