"""bench/trl_grpo.py's mapping of an Asymptote recipe onto TRL's GRPOConfig (no TRL needed)."""

import importlib.util
from pathlib import Path

import pytest

from rl.config import load_recipe

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("trl_grpo_bench", ROOT / "bench/trl_grpo.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize(
    "prompts, group, micro, world, expected",
    [
        (32, 8, 128, 1, (128, 2)),  # the tiny recipe: 256 completions in 2 micro-batches of 128
        (32, 8, 256, 1, (256, 1)),
        (32, 8, 512, 1, (256, 1)),  # a micro-batch larger than the step: one micro-batch
        (32, 8, 100, 1, (64, 4)),  # 256 has no divisor in 86..100: the largest below is 64
        (32, 8, 128, 2, (128, 1)),  # 128 completions per process
        (6, 4, 5, 1, (4, 6)),  # 24 completions, largest divisor <= 5 is 4
    ],
)
def test_trl_batch_shape(prompts, group, micro, world, expected):
    per_device, accumulation = bench.trl_batch_shape(prompts, group, micro, world)
    assert (per_device, accumulation) == expected
    assert per_device * accumulation * world == prompts * group
    assert per_device <= micro


def test_trl_batch_shape_uneven_world():
    with pytest.raises(ValueError, match="split evenly"):
        bench.trl_batch_shape(3, 3, 8, world_size=2)


def test_tiny_recipe_maps_onto_trl(tmp_path):
    recipe = load_recipe(ROOT / "recipes/tiny/grpo_math.yaml", [f"logging.runs_dir={tmp_path}"])
    assert bench.unsupported(recipe) == []
    kw = bench.trl_config_kwargs(recipe, steps=10, output_dir=str(tmp_path))
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (128, 2)
    assert kw["num_generations"] == 8 and kw["num_iterations"] == 1 and kw["max_completion_length"] == 8
    assert (kw["epsilon"], kw["epsilon_high"], kw["beta"], kw["learning_rate"]) == (0.2, 0.28, 0.0, 2e-4)
    assert kw["loss_type"] == "dapo" and kw["scale_rewards"] == "group" and kw["use_vllm"] is False
    assert kw["bf16"] is False and kw["gradient_checkpointing"] is False  # TRL's defaults are True


def test_unmappable_recipe_is_refused(tmp_path):
    recipe = load_recipe(ROOT / "recipes/tiny/grpo_math.yaml",
                         [f"logging.runs_dir={tmp_path}", "train.mini_batches=2", "algorithm.zero_variance_filter=true"])
    problems = bench.unsupported(recipe)
    assert "train.epochs and mini_batches must be 1" in problems
    assert "no filters, dynamic sampling or NPR" in problems
