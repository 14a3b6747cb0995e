"""The trainer end to end on a tiny model: the metrics contract, resume equivalence (also at an
epoch boundary), gradient accumulation equivalence, and that an update lowers the loss."""

import json
from pathlib import Path

import pytest
import torch

from rl.config import load_recipe, recipe_from_dict
from rl.logger import read_jsonl
from rl.trainer import Trainer, train

# timings and what derives from wall-clock time differ between any two runs; everything else must match
# (pred/... included: the live predictor fits val/accuracy against compute/flops with a seeded
# bootstrap, a function of keys compared here, so it repeats exactly on resume)
TIMING_KEYS = ("train/time/", "compute/device_hours")


def make_recipe(tmp_path: Path, model_dir: Path, **over):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data.jsonl"
    if not data.exists():
        # 12 questions: 4 held out for validation, 8 for training (an epoch = 2 iterations of 4 prompts)
        rows = [{"question": f"{a}+{b}=", "answer": str(a + b)} for a, b in
                [(1, 2), (3, 4), (5, 1), (2, 2), (7, 1), (4, 4), (6, 3), (8, 1), (2, 5), (3, 3), (1, 1), (9, 0)]]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = {
        "name": "t",
        "seed": 3,
        "model": {"path": str(model_dir), "warm_start": {"steps": 0}},
        "engine": {"max_new_tokens": 4},
        "env": {"name": "math", "dataset": str(data), "val_size": 4, "answer_format": "plain"},
        "reward": {"functions": [{"name": "math_verify"}]},
        "algorithm": {"group_size": 4},
        "train": {"iterations": 5, "prompts_per_iteration": 4, "micro_batch_size": 16},
        "optimizer": {"lr": 1e-3},
        "eval": {"every": 2, "k": 2},
        "checkpoint": {"every": 2, "keep_last": 2},
        "logging": {"runs_dir": str(tmp_path / "runs"), "progress": False, "samples_per_iteration": 2},
    }
    for key, value in over.items():
        node = recipe
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return recipe_from_dict(recipe)


def comparable(lines):
    return [{k: v for k, v in m.items() if not k.startswith(TIMING_KEYS)} for m in lines]


def crash_during(recipe, monkeypatch, iteration: int = 3) -> None:
    """Train `recipe` until it raises in `iteration` (after the checkpoint before it), as a killed run would."""
    original = Trainer.train_iteration

    def crash(self):
        if self.state.iteration == iteration:
            raise Crash()
        return original(self)

    monkeypatch.setattr(Trainer, "train_iteration", crash)
    with pytest.raises(Crash):
        train(recipe)
    monkeypatch.setattr(Trainer, "train_iteration", original)


def test_run_directory_follows_the_contract(tmp_path, tiny_model_dir):
    recipe = make_recipe(tmp_path, tiny_model_dir)
    run_dir = train(recipe)
    lines = read_jsonl(run_dir / "metrics.jsonl")
    assert [m["iteration"] for m in lines] == [0, 1, 2, 3, 4, 5]  # the start eval, then one line per iteration
    assert [m["step"] for m in lines] == [0, 1, 2, 3, 4, 5]  # one optimizer step per iteration
    for m in lines:
        assert {"step", "compute/device_hours", "compute/flops", "compute/tokens"} <= set(m)
    for m in lines[1:]:
        for key in ("train/reward", "train/entropy", "train/loss", "train/clip_frac_low", "train/clip_frac_high",
                    "train/response_length/mean", "train/time/gen", "train/time/update", "train/grad_norm",
                    "train/reward/math_verify", "train/reward_errors", "train/mismatch_kl"):
            assert key in m, key
        assert 0.0 <= m["train/reward"] <= 1.0
        assert m["train/mismatch_kl"] < 1e-3  # the engine and the trainer score the same distribution
    # cumulative counters grow; FLOPs follow 2N per generated token + 6N per trained token
    for a, b in zip(lines, lines[1:]):
        assert b["compute/tokens"] > a["compute/tokens"] and b["compute/flops"] > a["compute/flops"]
        assert b["compute/device_hours"] > a["compute/device_hours"]
    assert [("val/accuracy" in m) for m in lines] == [True, False, True, False, True, True]  # every 2 and the last
    assert "val/pass@2" in lines[-1]
    samples = read_jsonl(run_dir / "samples.jsonl")
    assert len(samples) == 2 * 5 and len(samples[0]["completions"]) == 4
    assert load_recipe(run_dir / "recipe.yaml") == recipe  # the resolved recipe reloads to the same recipe
    assert (run_dir / "checkpoints" / "latest").resolve().name == "iter_0000005"
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("iter_*")) == ["iter_0000004", "iter_0000005"]
    assert (run_dir / "final_model" / "config.json").is_file()
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(recipe)


def test_flops_by_hand(tmp_path, tiny_model_dir):
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=1, eval__at_start=False)
    run_dir = train(recipe)
    line = read_jsonl(run_dir / "metrics.jsonl")[0]
    from rl.models import load_model, non_embedding_params

    n = non_embedding_params(load_model(tiny_model_dir))
    generated = line["compute/tokens"]
    trained = line["train/trained_tokens"]  # prompt + completion tokens through forward and backward
    assert line["compute/flops"] == pytest.approx(n * (2 * generated + 6 * trained))


class Crash(Exception):
    pass


def test_resume_matches_an_uninterrupted_run_bit_for_bit(tmp_path, tiny_model_dir, monkeypatch):
    """Kill after iteration 3 (checkpoint at 2, which is also an epoch boundary: 8 training prompts,
    4 per iteration), resume, and compare every non-timing metric with an uninterrupted run."""
    whole = make_recipe(tmp_path / "a", tiny_model_dir)
    reference = comparable(read_jsonl(train(whole) / "metrics.jsonl"))

    broken = make_recipe(tmp_path / "b", tiny_model_dir)
    original = Trainer.train_iteration

    def crash_at_4(self):
        if self.state.iteration == 3:
            raise Crash()
        return original(self)

    monkeypatch.setattr(Trainer, "train_iteration", crash_at_4)
    with pytest.raises(Crash):
        train(broken)
    run_dir = broken.run_dir
    assert [m["iteration"] for m in read_jsonl(run_dir / "metrics.jsonl")] == [0, 1, 2, 3]
    monkeypatch.setattr(Trainer, "train_iteration", original)

    trainer = Trainer(broken, resume=True)
    assert trainer.state.iteration == 2 and trainer.state.data_position == 8 == trainer.env.epoch_size
    # the line of iteration 3, written after the checkpoint, is cut away before the run continues
    assert [m["iteration"] for m in read_jsonl(run_dir / "metrics.jsonl")] == [0, 1, 2]
    trainer.fit()
    resumed = comparable(read_jsonl(run_dir / "metrics.jsonl"))
    assert resumed == reference
    # and the resumed run trained (it did not silently skip the epoch that starts at the boundary)
    assert [m["step"] for m in resumed] == [0, 1, 2, 3, 4, 5]


def test_resume_without_checkpoint_starts_over(tmp_path, tiny_model_dir, capsys):
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=1)
    train(recipe, resume=True)
    assert "no checkpoint" in capsys.readouterr().out
    assert len(read_jsonl(recipe.run_dir / "metrics.jsonl")) == 2


# the test captures the gradient instead of stepping the optimizer: torch then warns that the
# scheduler stepped first, which is the point here
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_gradient_accumulation_does_not_change_the_update(tmp_path, tiny_model_dir):
    """micro_batch_size 1 (16 backward passes) and 16 (one) give the same gradient at the optimizer
    step (compared before AdamW, whose first step divides by |g| and so magnifies float noise)."""
    grads = []
    for mbs in (1, 16):
        recipe = make_recipe(tmp_path / str(mbs), tiny_model_dir, train__micro_batch_size=mbs,
                             train__iterations=1, eval__at_start=False)
        trainer = Trainer(recipe)
        captured = []
        trainer.optimizer.step = lambda *a, **k: captured.append(
            torch.cat([p.grad.flatten() for p in trainer.policy.parameters()])
        )
        trainer.train_iteration()
        trainer.close()
        grads.append(captured[0])
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-7, rtol=1e-4)


def test_one_update_lowers_the_loss_on_a_fixed_batch(tmp_path, tiny_model_dir):
    from rl.batch import make_batch, sequence_logprobs
    from rl.losses import LOSSES, aggregation_weights

    recipe = make_recipe(tmp_path, tiny_model_dir, eval__at_start=False)
    trainer = Trainer(recipe)
    prompts = trainer.env.train_prompts(0, 4)
    from rl.models import render_prompt

    groups = trainer.engine.generate([render_prompt(trainer.tokenizer, p.messages) for p in prompts], trainer.sampler.params)
    rewards = [float(i % 2) for i in range(16)]  # fixed rewards: a clear signal in every group
    batch = make_batch(groups, rewards)
    from rl.advantages import grpo, GRPOConfig

    batch.advantages = grpo(batch.rewards, batch.group_ids, batch.mask, GRPOConfig())
    pad = trainer.tokenizer.pad_token_id
    with torch.no_grad():
        old, _ = sequence_logprobs(trainer.policy, batch.prompt_ids, batch.completion_ids, pad, 1.0)
    batch.old_logp = old

    def surrogate() -> float:
        with torch.no_grad():
            logp, _ = sequence_logprobs(trainer.policy, batch.prompt_ids, batch.completion_ids, pad, 1.0)
            loss, _ = LOSSES["ppo_clip"](logp, old, batch.advantages, batch.mask, recipe.algorithm.loss)
            w = aggregation_weights(batch.mask, batch.group_ids, recipe.algorithm.aggregation, 4)
            return (loss * w).sum().item()

    before = surrogate()
    metrics = trainer.update(batch)
    after = surrogate()
    trainer.close()
    assert metrics["train/loss"] == pytest.approx(before, abs=1e-5)  # the logged loss is the pre-update one
    assert after < before - 1e-4


def test_a_failing_reward_is_a_counted_zero_and_the_run_goes_on(tmp_path, tiny_model_dir, monkeypatch):
    import rewards

    def flaky(completion, prompt):
        if len(completion) % 2:
            raise RuntimeError("judge unavailable")
        return 1.0

    monkeypatch.setitem(rewards.REWARDS, "format", flaky)
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=2,
                         reward={"functions": [{"name": "math_verify"}, {"name": "format", "weight": 0.5}]})
    run_dir = train(recipe)
    lines = read_jsonl(run_dir / "metrics.jsonl")[1:]
    assert len(lines) == 2
    assert sum(m["train/reward_errors"] for m in lines) > 0
    samples = read_jsonl(run_dir / "samples.jsonl")
    for s in samples:  # an odd-length completion raised: it scores 0 from that term
        for text, r in zip(s["completions"], s["rewards"]):
            assert r in (0.0, 0.5, 1.0, 1.5)
            if len(text) % 2 == 1:
                assert r in (0.0, 1.0)


def test_wandb_offline_mirrors_the_metrics(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=1,
                         logging__wandb={"mode": "offline", "project": "asymptote-test"})
    run_dir = train(recipe)
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert (run_dir / "wandb_id").read_text().strip() in runs[0].name


def test_warm_start_is_cached_and_a_cold_cache_does_not_change_the_run(tmp_path, tiny_model_dir):
    import shutil

    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    runs = []
    for name in ("cold", "warm"):
        recipe = make_recipe(tmp_path, model_dir, name=name, train__iterations=2,
                             model={"path": str(model_dir), "warm_start": {"steps": 5, "batch_size": 8}})
        runs.append(comparable(read_jsonl(train(recipe) / "metrics.jsonl")))
        assert len(list((model_dir / "warm_start").iterdir())) == 1  # trained once, then reused
    assert runs[0] == runs[1]
    # the warm start changed the model: its answers are no longer the random model's
    base = comparable(read_jsonl(train(make_recipe(tmp_path, model_dir, name="none", train__iterations=2)) / "metrics.jsonl"))
    assert base[0]["val/accuracy"] != runs[0][0]["val/accuracy"] or base[1]["train/entropy"] != runs[0][1]["train/entropy"]


def test_ppo_style_reuse_with_kl_and_entropy_terms(tmp_path, tiny_model_dir):
    """epochs=2 × mini_batches=2 = 4 optimizer steps per batch on old log-probs computed before
    the first; the KL-to-reference and entropy terms are in the loss."""
    recipe = make_recipe(
        tmp_path, tiny_model_dir, train__iterations=2, train__epochs=2, train__mini_batches=2,
        algorithm={"group_size": 4, "kl": {"coef": 0.1, "estimator": "k3"}, "entropy": {"coef": 0.01}},
        eval__at_start=False,
    )
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    assert [m["step"] for m in lines] == [4, 8]
    for m in lines:
        assert m["train/kl"] > 0  # the policy moved away from the reference within the batch
        assert m["train/ratio_mean"] != 1.0 and m["train/approx_kl"] > 0  # later updates are off-policy
        # forward-only: one old-log-prob and one reference pass over the batch; trained: 2 epochs of it
        assert m["train/forward_tokens"] == m["train/trained_tokens"]


def test_zero_variance_filter_in_the_loop(tmp_path, tiny_model_dir):
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=2, eval__at_start=False,
                         algorithm={"group_size": 4, "zero_variance_filter": True})
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    for m in lines:
        solved_uniformly = m["train/solve_all_frac"] + m["train/solve_none_frac"]
        assert m["train/filtered_groups"] == round(solved_uniformly * 4)  # binary rewards: uniform = all or none


def test_live_prediction_is_logged_at_evals(tmp_path, tiny_model_dir):
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=9, eval__every=1, checkpoint__every=9)
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    predicted = [m for m in lines if "pred/asymptote" in m]
    assert predicted and all("val/accuracy" in m for m in predicted)
    assert "pred/asymptote" not in lines[6]  # fewer than LivePredictor.min_evals (8) evals so far
    for m in predicted:
        assert m["pred/asymptote_low"] <= m["pred/asymptote"] <= m["pred/asymptote_high"]


# --------------------------------------------------------------------------------------------
# Recipe components in the loop. A random tiny model never answers a sum, so these runs reward
# completions that contain a digit: about a third do, and groups differ.
# --------------------------------------------------------------------------------------------

DIGIT_REWARD = {"functions": [{"name": "format", "args": {"pattern": ".*\\d.*"}}], "verifiable": "format"}

COMPONENTS = {
    "dapo": ({"loss": {"name": "dapo"}, "dynamic_sampling": {"max_rounds": 3}, "zero_variance_filter": True,
              "length": {"overlong_buffer": 2}}, {}, ["train/dynamic_sampling/kept_prompts", "train/overlong_penalty"]),
    "mask_truncated": ({"length": {"mask_truncated": True}}, {}, ["train/masked_truncated"]),
    "gspo": ({"loss": {"name": "gspo"}, "aggregation": {"name": "seq_mean_token_mean"}}, {"train__mini_batches": 2},
             ["train/seq_ratio_max", "train/clip_frac_high"]),
    "cispo": ({"loss": {"name": "cispo"}, "advantage": {"name": "grpo", "std": "batch"}, "aggregation": {"name": "prompt_mean"},
               "tis": {"cap": 2.0}}, {}, ["train/is_weight_mean", "train/tis/weight_mean"]),
    "clip_cov": ({"loss": {"name": "clip_cov", "ratio": 0.05, "cov_low": 0.0, "cov_high": 100.0}}, {"train__mini_batches": 2},
                 ["train/clip_cov/detached_tokens", "train/cov/mean", "train/cov/max"]),
    "kl_cov": ({"loss": {"name": "kl_cov", "ratio": 0.05, "scope": "micro_batch"}}, {"train__mini_batches": 2, "train__micro_batch_size": 4},
               ["train/kl_cov/penalised_tokens", "train/cov/selected_cov_mean"]),
    "reinforce_rloo": ({"loss": {"name": "reinforce"}, "advantage": {"name": "rloo"}}, {}, ["train/ratio_mean"]),
    "reinforce_pp_kl_in_reward": ({"advantage": {"name": "reinforce_pp"}, "kl": {"coef": 0.05, "in_reward": True, "estimator": "k1"}},
                                  {"train__epochs": 2}, ["train/kl"]),
    "ppo_separate_critic": ({"advantage": {"name": "gae"}, "critic": {"model": "separate", "lr": 1e-3}}, {"train__mini_batches": 2},
                            ["train/critic/value_loss", "train/critic/explained_variance", "train/critic/grad_norm"]),
    "ppo_value_head": ({"advantage": {"name": "gae"}, "critic": {"model": "value_head", "lr": 1e-3}}, {"train__epochs": 2},
                       ["train/critic/value_loss", "train/critic/explained_variance"]),
    "thinking_budget": ({"length": {"thinking_budget": 2, "interruption": "?!", "answer_budget": 2}}, {}, ["train/interrupted_frac"]),
}


@pytest.mark.parametrize("name", COMPONENTS)
def test_components_train_end_to_end_and_log_their_metrics(tmp_path, tiny_model_dir, name):
    algorithm, over, keys = COMPONENTS[name]
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=2, eval__at_start=False, reward=DIGIT_REWARD,
                         algorithm={"group_size": 4, **algorithm}, **over)
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    assert len(lines) == 2
    for m in lines:
        trained = "train/skipped_update" not in m  # every completion filtered out (e.g. all truncated)
        for key in keys + (["train/loss", "train/entropy", "train/cov/logp_adv", "train/grad_norm", "train/ratio_max"]
                           if trained else []):
            assert key in m and m[key] is not None, key
    last = lines[-1]
    if name == "mask_truncated":  # a random model rarely stops within 4 tokens: most completions leave the loss
        assert all(m["train/masked_truncated"] == round(m["train/truncated_frac"] * 16) for m in lines)
    if name == "clip_cov":  # ⌊0.05 · N⌋ tokens per optimizer step (every token is a candidate here)
        assert last["train/clip_cov/detached_tokens"] >= 1
    if name == "dapo":  # dynamic sampling keeps informative groups only: the zero-variance filter finds none
        assert all(m["train/filtered_groups"] == 0 for m in lines)
    if name == "thinking_budget":  # 2 tokens, the 2-token interruption, then at most 2 more
        assert last["train/response_length/max"] <= 6 and last["train/interrupted_frac"] > 0


def test_kl_cov_warns_when_it_can_do_nothing(tmp_path, tiny_model_dir):
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=1, algorithm={"group_size": 4, "loss": {"name": "kl_cov"}})
    with pytest.warns(UserWarning, match="every importance ratio is 1"):
        Trainer(recipe).close()


# the test captures the gradient instead of stepping the optimizer: torch then warns that the
# scheduler stepped first, which is the point here
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_global_cov_selection_does_not_depend_on_micro_batch_size(tmp_path, tiny_model_dir):
    """Clip-Cov over the whole mini-batch selects the same tokens whatever the micro-batch size, so
    the gradient is the same (per micro-batch selection, the reference code's, would differ)."""
    grads = []
    for mbs in (1, 16):
        recipe = make_recipe(tmp_path / str(mbs), tiny_model_dir, train__micro_batch_size=mbs, train__iterations=1,
                             eval__at_start=False, reward=DIGIT_REWARD,
                             algorithm={"group_size": 4, "loss": {"name": "clip_cov", "ratio": 0.2, "cov_low": 0.0}})
        trainer = Trainer(recipe)
        captured = []
        trainer.optimizer.step = lambda *a, **k: captured.append(
            torch.cat([p.grad.flatten() for p in trainer.policy.parameters()])
        )
        metrics = trainer.train_iteration()
        trainer.close()
        assert metrics["train/clip_cov/detached_tokens"] > 0
        grads.append(captured[0])
    assert torch.allclose(grads[0], grads[1], atol=1e-7, rtol=1e-4)


def test_resume_is_bit_exact_with_component_state(tmp_path, tiny_model_dir, monkeypatch):
    """A PPO critic (its weights and optimizer), No-Positive-Resampling's pass rates, the adaptive
    entropy coefficient, Clip-Cov's random draws and dynamic sampling all survive a crash."""
    algorithm = {
        "group_size": 4, "advantage": {"name": "gae"}, "critic": {"model": "separate", "lr": 1e-3},
        "loss": {"name": "clip_cov", "ratio": 0.1, "cov_low": 0.0}, "no_positive_resampling": {"threshold": 0.75},
        "entropy": {"coef": 0.01, "target": 10.0, "delta": 0.01}, "dynamic_sampling": {"max_rounds": 2},
    }
    over = dict(reward=DIGIT_REWARD, algorithm=algorithm, train__mini_batches=2, train__prompts_per_iteration=2)
    reference = comparable(read_jsonl(train(make_recipe(tmp_path / "a", tiny_model_dir, **over)) / "metrics.jsonl"))
    assert reference[-1]["train/npr/retired_prompts"] > 0 and reference[-1]["train/entropy_coef"] > 0.01

    broken = make_recipe(tmp_path / "b", tiny_model_dir, **over)
    crash_during(broken, monkeypatch)
    trainer = Trainer(broken, resume=True)
    assert trainer.state.iteration == 2
    assert trainer.state.extra["npr_pass_rates"] and trainer.state.extra["entropy"]["last"] is not None
    trainer.fit()
    assert comparable(read_jsonl(broken.run_dir / "metrics.jsonl")) == reference


def test_flops_budget_stops_the_run_after_the_iteration_that_reaches_it(tmp_path, tiny_model_dir):
    one = read_jsonl(train(make_recipe(tmp_path / "one", tiny_model_dir, train__iterations=1)) / "metrics.jsonl")
    per_iteration = one[-1]["compute/flops"]
    recipe = make_recipe(tmp_path / "budget", tiny_model_dir, train__iterations=50, train__flops_budget=1.5 * per_iteration)
    lines = read_jsonl(train(recipe) / "metrics.jsonl")
    assert [m["iteration"] for m in lines] == [0, 1, 2]  # 1 iteration is below the budget, 2 reach it
    assert "val/accuracy" in lines[-1]  # the last iteration is evaluated and checkpointed like a final one
    assert (recipe.run_dir / "checkpoints" / "latest").resolve().name == "iter_0000002"
