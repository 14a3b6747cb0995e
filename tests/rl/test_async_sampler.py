"""Asynchronous sampling: the staleness bound (pure functions, by hand), the trainer with k = 1 on
the vllm engine (no trained token more than 1 step old; drops counted, not silent), and k = 0 is
the synchronous trainer."""

import pytest

from rl.async_sampler import drop_stale, group_lags
from rl.logger import read_jsonl
from rl.rollout.base import Completion
from rl.trainer import train
from tests.rl.test_trainer import comparable, make_recipe


def _completion(versions):
    return Completion([1], [5] * len(versions), [-1.0] * len(versions), "length", "", list(versions))


def test_a_group_is_as_old_as_its_oldest_token():
    groups = [[_completion([7, 7]), _completion([7, 8])],  # lag 10 - 7 = 3
              [_completion([9, 10]), _completion([10])],  # lag 1
              [_completion([10, 10]), _completion([])]]  # lag 0 (an empty completion has no age)
    lags = group_lags(groups, step=10)
    assert lags == [3, 1, 0]
    assert drop_stale([0, 1, 2], lags, k=1) == ([1, 2], 1)
    assert drop_stale([0, 1, 2], lags, k=3) == ([0, 1, 2], 0)
    assert drop_stale([1, 2], lags, k=0) == ([2], 1)


def test_k0_is_the_synchronous_trainer(tmp_path, tiny_model_dir):
    a = read_jsonl(train(make_recipe(tmp_path / "a", tiny_model_dir, train__iterations=3)) / "metrics.jsonl")
    b = read_jsonl(train(make_recipe(tmp_path / "b", tiny_model_dir, train__iterations=3,
                                     **{"async": {"max_off_policy_steps": 0}})) / "metrics.jsonl")
    assert comparable(a) == comparable(b)
    assert not any(k.startswith("train/async/") for m in b for k in m)


def test_k1_bounds_staleness_and_counts_what_it_drops(tmp_path, tiny_model_dir):
    """queue_size 2 lets the generator run two batches ahead: the second is 2 steps old when the
    trainer reaches it, so it is dropped (and counted); nothing trained on is more than 1 step old."""
    pytest.importorskip("vllm")
    recipe = make_recipe(tmp_path, tiny_model_dir, train__iterations=6, engine__name="vllm",
                         engine__vllm={"gpu_memory_utilization": 0.05, "max_num_seqs": 32, "max_model_len": 256},
                         algorithm__tis={"cap": 2.0}, **{"async": {"max_off_policy_steps": 1, "queue_size": 2}})
    lines = [m for m in read_jsonl(train(recipe) / "metrics.jsonl") if "train/reward" in m]
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
    assert all(m["train/staleness/max"] <= 1 for m in lines)
    assert max(m["train/staleness/max"] for m in lines) == 1  # generation really overlapped training
    assert lines[-1]["train/async/dropped_groups_total"] == sum(m["train/async/dropped_groups"] for m in lines) > 0
    for m in lines:
        assert {"train/tis/weight_mean", "train/tis/ratio_mean", "train/mismatch_kl", "train/staleness/token_mean"} <= set(m)
