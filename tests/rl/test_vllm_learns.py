"""The tiny math recipe learns with the vLLM engines (slow: one shared warm start, then ~16
iterations per engine): colocated, colocated asynchronous (k = 1) and a server process."""

from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="the vllm engines need vLLM (pip install -e '.[vllm]')")

from rl.config import load_recipe  # noqa: E402
from rl.logger import read_jsonl  # noqa: E402
from rl.models import build_tiny_model  # noqa: E402
from rl.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-math", seed=0)


@pytest.mark.slow
# one step stale, the async run learns more slowly per iteration: it gets more of them
@pytest.mark.parametrize("recipe,iterations", [("grpo_math_vllm", 16), ("grpo_math_vllm_async", 24),
                                               ("grpo_math_vllm_server", 16)])
def test_the_tiny_math_recipe_learns(tmp_path, model_dir, recipe, iterations):
    r = load_recipe(ROOT / "recipes" / "tiny" / f"{recipe}.yaml", [
        f"model.path={model_dir}",  # the warm start is cached beside the model: trained once, shared
        f"logging.runs_dir={tmp_path / 'runs'}",
        "logging.progress=false",
        "model.warm_start.steps=250",
        "engine.vllm.max_num_seqs=64",
        f"train.iterations={iterations}",
        "train.prompts_per_iteration=16",
        "optimizer.lr=3.0e-4",
        "eval.every=4",
        "eval.predict_asymptote=false",
        "checkpoint.every=16",
    ])
    lines = read_jsonl(train(r) / "metrics.jsonl")
    evals = [m["val/accuracy"] for m in lines if "val/accuracy" in m]
    assert len(evals) == 1 + iterations // 4 and evals[0] > 0.0
    # 128 held-out prompts × 4 samples: the accuracy's standard error is about 0.02
    assert (evals[-1] + evals[-2]) / 2 > evals[0] + 0.04, evals
    trained = [m for m in lines if "train/reward" in m]
    assert all(m["train/mismatch_kl"] < 1e-3 for m in trained if "train/async/dropped_groups" not in m)
    if "async" in recipe:
        assert all(m["train/staleness/max"] <= 1 for m in trained)
