"""PPO's learned critic on N processes: 2 CPU processes with DeepSpeed ZeRO-2, ZeRO-3 and FSDP2
follow the 1-process trajectory for both critic models (a separate value model: its own DeepSpeed
engine, or DDP beside an FSDP2 policy; a value head on the policy's trunk: replicated, gradients
averaged), and ZeRO-3 and FSDP2 runs killed halfway resume from their checkpoints (the critic's
engine or head restored with the policy's)."""

import pytest
import yaml

from rl.config import load_recipe, recipe_from_dict
from rl.logger import read_jsonl
from rl.parallel.strategy import deepspeed_config, deepspeed_plugins
from rl.trainer import train
from tests.rl.test_distributed import GRAD_NORM_TOL, LOSS_TOL, ROOT, WEIGHT_TOL, _recipe_dict, _weights, torchrun

CRITIC_CLIP = 0.2
KEYS = ("train/loss", "train/grad_norm", "train/critic/value_loss", "train/critic/grad_norm",
        "train/critic/explained_variance")


def _ppo(tiny_model_dir, tmp_path, model: str) -> dict:
    recipe = _recipe_dict(tiny_model_dir, tmp_path) | {"name": model}
    recipe["algorithm"] |= {"advantage": {"name": "gae", "gamma": 1.0, "lam": 0.95},
                            # clipped at 0.2 (the policy at 1.0): every critic step here is clipped, at its own norm
                            "critic": {"model": model, "lr": 1e-3, "max_grad_norm": CRITIC_CLIP}}
    return recipe


def _steps(run) -> list[dict]:
    return [m for m in read_jsonl(run / "metrics.jsonl") if "train/loss" in m]


def test_critic_recipes_accept_every_strategy():
    base = ROOT / "recipes" / "tiny" / "ppo.yaml"
    for strategy in ("ddp", "zero2", "zero3", "fsdp"):
        for model in ("separate", "value_head"):
            load_recipe(base, [f"distributed.strategy={strategy}", f"algorithm.critic.model={model}"])


def test_a_separate_critic_gets_its_own_deepspeed_plugin_with_its_own_clipping(tiny_model_dir, tmp_path):
    recipe = _ppo(tiny_model_dir, tmp_path, "separate")
    config = deepspeed_config("zero3", "none", "float32", 1.0)
    plugins = deepspeed_plugins(recipe_from_dict(recipe), config)["deepspeed_plugins"]
    assert list(plugins) == ["policy", "critic"]  # the first is the active one: the policy's
    assert plugins["policy"].deepspeed_config["gradient_clipping"] == 1.0
    assert plugins["critic"].deepspeed_config["gradient_clipping"] == CRITIC_CLIP
    assert plugins["critic"].deepspeed_config["zero_optimization"]["stage"] == 3
    # a value head trains through the policy's engine: one plugin
    assert list(deepspeed_plugins(recipe_from_dict(_ppo(tiny_model_dir, tmp_path, "value_head")), config)) == ["deepspeed_plugin"]


@pytest.mark.slow
def test_critic_on_two_zero_processes_follows_the_one_process_trajectory(tmp_path, tiny_model_dir):
    """Separate critic and value head, each with ZeRO-2 (optimizer offloaded), ZeRO-3 and FSDP2 over 4
    iterations: the same rewards, losses, value losses and gradient norms (policy and critic) as 1
    process, and the same final policy weights. The separate critic under ZeRO-3 and the value head
    under FSDP2 run 2 iterations, are killed, then resume to 4 from the checkpoint of iteration 2
    (one resume per critic kind and per sharded strategy: all four cost CI ~1 minute more)."""
    for model in ("separate", "value_head"):
        recipe = _ppo(tiny_model_dir, tmp_path, model)
        one = train(recipe_from_dict(recipe))
        reference, ref_weights = _steps(one), _weights(one)
        assert len(reference) == 4 and all(m["train/critic/value_loss"] > 0 for m in reference)
        assert all(m["train/critic/grad_norm"] > CRITIC_CLIP for m in reference)
        for strategy, offload in (("zero2", "optimizer"), ("zero3", "none"), ("fsdp", "none")):
            name = f"{model}-{strategy}"
            path = tmp_path / f"{name}.yaml"
            dist = {"strategy": strategy, "offload": offload, "rollouts": "replicated"}
            resume = (model, strategy) in (("separate", "zero3"), ("value_head", "fsdp"))
            if resume:  # stopped after iteration 2 (its checkpoint), resumed to 4
                path.write_text(yaml.safe_dump(recipe | {"name": name, "distributed": dist,
                                                         "train": recipe["train"] | {"iterations": 2}}))
                torchrun(["-m", "launch.cli", "train", str(path)])
            path.write_text(yaml.safe_dump(recipe | {"name": name, "distributed": dist}))
            out = torchrun(["-m", "launch.cli", "train", str(path)] + (["--resume"] if resume else []))
            if resume:
                assert "resumed from" in out.stdout + out.stderr
            run = tmp_path / "runs" / name
            got = _steps(run)
            assert [m["iteration"] for m in read_jsonl(run / "metrics.jsonl")] == [0, 1, 2, 3, 4]
            assert [m["train/reward"] for m in got] == [m["train/reward"] for m in reference], name
            diffs = {k: max(abs(a[k] - b[k]) for a, b in zip(got, reference)) for k in KEYS}
            weights = _weights(run)
            d_weight = max((weights[n] - w).abs().max().item() for n, w in ref_weights.items())
            print(f"{name} vs 1 process: " + ", ".join(f"|d {k}| {v:.1e}" for k, v in diffs.items())
                  + f", |d weight| {d_weight:.1e}")
            assert diffs["train/loss"] <= LOSS_TOL and diffs["train/critic/value_loss"] <= LOSS_TOL, (name, diffs)
            assert diffs["train/grad_norm"] <= GRAD_NORM_TOL and diffs["train/critic/grad_norm"] <= GRAD_NORM_TOL, (name, diffs)
            assert diffs["train/critic/explained_variance"] <= 1e-5 and d_weight <= WEIGHT_TOL, (name, diffs, d_weight)
