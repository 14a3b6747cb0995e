"""rl/parallel/: how a global batch splits over ranks, and real multi-process runs on CPU
(torchrun, gloo, DeepSpeed's CPU accelerator, torch's FSDP2): 1 process and 2 processes with DDP,
ZeRO-2, ZeRO-3 and FSDP follow the same loss trajectory, ZeRO-3's full weights are gathered bucket by
bucket and FSDP's one parameter at a time, and an FSDP run resumes from its sharded checkpoint."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from rewards.sharding import shard_bounds
from rl.config import RecipeError, load_recipe, recipe_from_dict
from rl.logger import read_jsonl
from rl.parallel.checks import check_engine_topology, check_world_size
from rl.parallel.loss import rank_micro_batches
from rl.parallel.strategy import deepspeed_config, make_accelerator, own_fsdp, shard_fsdp2
from rl.trainer import train

ROOT = Path(__file__).resolve().parents[2]
# measured on 2 CPU processes (4 iterations): loss differences ≤ 7e-8, grad-norm ≤ 3e-6, weights ≤ 6e-6
LOSS_TOL, GRAD_NORM_TOL, WEIGHT_TOL = 1e-6, 2e-5, 5e-5


def test_shards_cover_every_item_once_in_order():
    for n in (0, 1, 5, 8, 13):
        for world in (1, 2, 3, 4):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert [i for lo, hi in bounds for i in range(lo, hi)] == list(range(n))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_the_engines_do_not_import_the_trainers_parallel_layer():
    """The vLLM engines take their weight buckets from rl.weights, which the trainer's ranks walk too;
    importing the engines loads neither rl.parallel nor the trainer."""
    code = ("import sys, rl.rollout, rl.rollout.vllm, rl.rollout.vllm_client, rl.rollout.vllm_server; "
            "print(sorted(m for m in sys.modules if m.startswith(('rl.parallel', 'rl.trainer'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_rank_runs_the_same_number_of_micro_batches():
    # 10 rows over 4 ranks: shares 3, 3, 2, 2; micro-batches of 2 -> 2 per rank, rank 2 and 3's second empty
    per_rank = [rank_micro_batches(10, r, 4, 2) for r in range(4)]
    assert [len(c) for c in per_rank] == [2, 2, 2, 2]
    assert [[t.tolist() for t in c] for c in per_rank] == [[[0, 1], [2]], [[3, 4], [5]], [[6, 7], []], [[8, 9], []]]
    # a rank with no rows at all still takes part in one (empty) micro-batch
    assert [[t.tolist() for t in rank_micro_batches(1, r, 2, 4)] for r in range(2)] == [[[0]], [[]]]


def test_a_global_batch_that_does_not_split_is_refused(tiny_model_dir):
    recipe = _recipe_dict(tiny_model_dir, Path("/tmp/unused"))
    recipe["train"] |= {"prompts_per_iteration": 6, "mini_batches": 2}  # 3 prompts x 4 = 12 per mini-batch
    check_world_size(recipe_from_dict(recipe), 4)
    with pytest.raises(ValueError, match=r"a mini-batch of 12 sequences .* does not split evenly over 5 processes"):
        check_world_size(recipe_from_dict(recipe), 5)


def test_async_on_several_processes_needs_the_servers(tiny_model_dir):
    recipe = _recipe_dict(tiny_model_dir, Path("/tmp/unused"))
    recipe |= {"async": {"max_off_policy_steps": 2}}
    recipe["algorithm"]["tis"] = {"cap": 2.0}
    for engine in ("vllm", "vllm-server"):
        r = recipe_from_dict(recipe | {"engine": {"name": engine}})
        check_engine_topology(r, 1)  # one process: any vllm engine
    check_engine_topology(r, 2)  # vllm-server on 2 processes
    with pytest.raises(ValueError, match=r"async.max_off_policy_steps > 0 with 2 training processes needs "
                                         r"engine.name 'vllm-server' \(got 'vllm'\)"):
        check_engine_topology(recipe_from_dict(recipe | {"engine": {"name": "vllm"}}), 2)


def test_deepspeed_config_follows_the_recipe():
    c = deepspeed_config("zero3", "all", "bfloat16", 1.0)
    assert c["zero_optimization"]["stage"] == 3
    assert c["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert c["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert c["bf16"]["enabled"] and not c["fp16"]["enabled"]
    assert c["gradient_accumulation_steps"] == 1 and c["gradient_clipping"] == 1.0
    c = deepspeed_config("zero2", "none", "float32", None)
    assert c["zero_optimization"]["stage"] == 2 and "offload_optimizer" not in c["zero_optimization"]
    assert c["gradient_clipping"] == 0.0 and not c["bf16"]["enabled"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU accelerate applies FSDP itself")
def test_fsdp_on_one_cpu_process_trains_the_model_unsharded():
    recipe = load_recipe(ROOT / "recipes" / "tiny" / "grpo.yaml", ["distributed.strategy=fsdp"])
    acc = make_accelerator(recipe)  # on CPU a plain accelerator: FSDP2 is applied by shard_fsdp2
    assert acc.num_processes == 1 and not own_fsdp(recipe, acc)
    model = torch.nn.Linear(2, 2)
    assert shard_fsdp2(model, acc, recipe) is model and not hasattr(model.weight, "full_tensor")


def test_recipe_rejects_strategy_and_topology_mistakes(tmp_path):
    base = ROOT / "recipes" / "tiny" / "grpo.yaml"
    with pytest.raises(RecipeError, match="offload 'all' is not available with strategy 'zero2'; allowed: none, optimizer"):
        load_recipe(base, ["distributed.strategy=zero2", "distributed.offload=all"])
    with pytest.raises(RecipeError, match="unknown key|Input should be 'ddp', 'zero2', 'zero3' or 'fsdp'"):
        load_recipe(base, ["distributed.strategy=zero4"])
    with pytest.raises(RecipeError, match="a 'split' topology needs rollout.gpus_per_node > 0"):
        load_recipe(base, ["resources.topology=split"])
    with pytest.raises(RecipeError, match=r"rollout.gpus_per_node \(8\) must leave trainer GPUs"):
        load_recipe(base, ["resources.topology=split", "resources.gpus_per_node=8", "resources.rollout.gpus_per_node=8"])
    split = load_recipe(base, ["resources.topology=split", "resources.nodes=4", "resources.gpus_per_node=8",
                               "resources.rollout.gpus_per_node=2"])
    assert split.resources.trainer_gpus_per_node == 6 and split.resources.world_size == 24


# --------------------------------------------------------------------------------------------
# Real processes
# --------------------------------------------------------------------------------------------


def _recipe_dict(model_dir: Path, tmp: Path) -> dict:
    data = tmp / "data.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"question": f"{a}+{b}=", "answer": str(a + b)} for a, b in
            [(1, 2), (3, 4), (5, 1), (2, 2), (7, 1), (4, 4), (6, 3), (8, 1), (2, 5), (3, 3), (1, 1), (9, 0)]]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "name": "one", "seed": 3,
        "model": {"path": str(model_dir), "warm_start": {"steps": 0}},
        "engine": {"max_new_tokens": 4},
        "env": {"name": "math", "dataset": str(data), "val_size": 4, "answer_format": "plain"},
        # a reward a random tiny model earns about half the time, so that advantages are not all 0
        "reward": {"functions": [{"name": "format", "args": {"pattern": ".*[0-9].*"}}], "verifiable": "format"},
        "algorithm": {"group_size": 4},
        "train": {"iterations": 4, "prompts_per_iteration": 4, "mini_batches": 2, "micro_batch_size": 3},
        "optimizer": {"lr": 1e-3},
        "eval": {"every": 2, "k": 2, "predict_asymptote": False},
        "checkpoint": {"every": 2},
        "logging": {"runs_dir": str(tmp / "runs"), "progress": False, "samples_per_iteration": 1},
        "distributed": {"rollouts": "replicated"},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """torchrun on this machine (127.0.0.1, a free port), one thread per process."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", *args]
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out


def _trajectory(run_dir: Path) -> list[tuple[float, float, float]]:
    return [(m["train/loss"], m["train/grad_norm"], m["train/reward"])
            for m in read_jsonl(run_dir / "metrics.jsonl") if "train/loss" in m]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run_dir / "final_model" / "model.safetensors")


def test_rewards_are_scored_a_share_per_rank(tmp_path):
    """sharded_scorer on 2 processes: each rank scores its contiguous share (7 completions: 4 and 3),
    and every rank gets what scoring the whole batch on one rank gives. The worker ends with
    rl.parallel.exit.end_distributed, which leaves every rank with exit code 0 (the worker raises
    exit code 3 if it returns)."""
    out = tmp_path / "scores.json"
    torchrun([str(ROOT / "tests" / "rl" / "score_worker.py"), str(out)], timeout=120)
    got = json.loads(out.read_text())
    assert got["world"] == 2 and got["same"]
    assert got["per_rank"] == [[f"p/{i}" for i in range(4)], [f"p/{i}" for i in range(4, 7)]]
    # by hand: format 0.25 for a boxed answer, math_verify 1 for the answer 2 (boxed or plain)
    assert got["total"] == [0.0, 0.25, 1.25, 0.0, 0.25, 0.25, 1.0]


@pytest.mark.slow
def test_two_processes_follow_the_one_process_trajectory(tmp_path, tiny_model_dir):
    """The same global batch and seed on 1 process (DDP code path) and 2 processes with DDP, ZeRO-2
    (optimizer offloaded to CPU memory), ZeRO-3 and FSDP2, with a KL penalty to a reference model: the
    same rewards, KL, losses and gradient norms each step, the same compute counters and final weights."""
    recipe = _recipe_dict(tiny_model_dir, tmp_path)
    recipe["algorithm"]["kl"] = {"coef": 0.05}  # a KL reference model too (under ZeRO-3: a partitioned engine)
    one = train(recipe_from_dict(recipe))
    reference, ref_weights = _trajectory(one), _weights(one)
    assert all(m["train/kl"] > 0 for m in read_jsonl(one / "metrics.jsonl") if "train/loss" in m)
    assert len(reference) == 4 and len({r for _, _, r in reference}) > 1  # rewards vary: a real signal
    assert all(g > 0.1 for _, g, _ in reference)

    for strategy, offload in (("ddp", "none"), ("zero2", "optimizer"), ("zero3", "none"), ("fsdp", "none")):
        path = tmp_path / f"{strategy}.yaml"
        dist = {"strategy": strategy, "offload": offload, "rollouts": "replicated"}
        path.write_text(yaml.safe_dump(recipe | {"name": strategy, "distributed": dist}))
        start = time.perf_counter()
        torchrun(["-m", "launch.cli", "train", str(path)])
        seconds = time.perf_counter() - start
        run = tmp_path / "runs" / strategy
        got = _trajectory(run)
        assert [r for _, _, r in got] == [r for _, _, r in reference], strategy  # identical rollouts
        # the compute counters count the global batch once, although its rows were split over the ranks
        counters = lambda lines: [(m["train/trained_tokens"], m["train/forward_tokens"], m["compute/flops"])  # noqa: E731
                                  for m in lines if "train/loss" in m]
        assert counters(read_jsonl(run / "metrics.jsonl")) == counters(read_jsonl(one / "metrics.jsonl"))
        kl = lambda lines: [m["train/kl"] for m in lines if "train/loss" in m]  # noqa: E731
        assert kl(read_jsonl(run / "metrics.jsonl")) == pytest.approx(kl(read_jsonl(one / "metrics.jsonl")), abs=1e-6)
        d_loss = max(abs(a[0] - b[0]) for a, b in zip(got, reference))
        d_norm = max(abs(a[1] - b[1]) for a, b in zip(got, reference))
        weights = _weights(run)
        d_weight = max((weights[name] - w).abs().max().item() for name, w in ref_weights.items())
        print(f"{strategy} (offload {offload}) vs 1 process: max |d loss| {d_loss:.2e}, "
              f"|d grad norm| {d_norm:.2e}, |d weight| {d_weight:.2e} ({seconds:.0f} s)")
        assert d_loss <= LOSS_TOL and d_norm <= GRAD_NORM_TOL and d_weight <= WEIGHT_TOL, (strategy, got, reference)
        # the main process alone wrote the run directory: one metrics line per iteration plus the start eval
        assert [m["iteration"] for m in read_jsonl(run / "metrics.jsonl")] == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_local_launch_of_two_processes_with_sharded_rollouts(tmp_path, tiny_model_dir):
    """`asymptote launch --scheduler local --gpus-per-node 2`: the job script runs torchrun with 2
    ZeRO-3 processes whose rollouts are sharded (the 3 eval prompts unevenly: 2 and 1); each
    iteration still trains on 4 prompts x 4 completions (the trained tokens of the global batch); a
    resumed run continues from its checkpoint."""
    recipe = _recipe_dict(tiny_model_dir, tmp_path) | {"name": "sharded"}
    recipe["distributed"] = {"strategy": "zero3", "rollouts": "sharded"}
    recipe["eval"] |= {"num_prompts": 3}
    recipe["train"] |= {"iterations": 2}
    path = tmp_path / "sharded.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-m", "launch.cli", "launch", str(path), "--scheduler", "local",
                          "--gpus-per-node", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    run = tmp_path / "runs" / "sharded"
    assert "--nproc_per_node=2" in (run / "launch" / "job.sh").read_text()
    (log,) = (run / "logs").glob("local-*.log")
    assert "exit code 0" in out.stdout and log.stat().st_size > 0
    assert yaml.safe_load((run / "recipe.yaml").read_text())["resources"]["gpus_per_node"] == 2
    lines = read_jsonl(run / "metrics.jsonl")
    samples = read_jsonl(run / "samples.jsonl")
    assert all(len(s["completions"]) == 4 for s in samples)
    trained = [m for m in lines if "train/trained_tokens" in m]
    # every completion of the global batch is trained on: prompt + completion tokens of 16 sequences
    assert all(m["train/trained_tokens"] >= 16 * (m["train/prompt_length"] + 1) for m in trained)
    assert len(trained) == 2 and (run / "checkpoints" / "latest").exists()
    # 3 prompts x k=2 samples gathered from both ranks: accuracies are multiples of 1/6
    assert all(abs(m["val/accuracy"] * 6 - round(m["val/accuracy"] * 6)) < 1e-6 for m in lines if "val/accuracy" in m)

    recipe["train"]["iterations"] = 3
    path.write_text(yaml.safe_dump(recipe))
    out = torchrun(["-m", "launch.cli", "train", str(path), "--resume"])
    assert "resumed from" in out.stdout + out.stderr
    assert [m["iteration"] for m in read_jsonl(run / "metrics.jsonl")] == [0, 1, 2, 3]


@pytest.mark.slow
def test_zero3_full_weights_are_gathered_one_bucket_at_a_time(tmp_path, tiny_model_dir):
    out = tmp_path / "sync.json"
    bucket = 40_000  # bytes: several buckets for the tiny model, smaller than its embedding
    torchrun([str(ROOT / "tests" / "rl" / "sync_worker.py"), str(tiny_model_dir), str(bucket), str(out)])
    seen = json.loads(out.read_text())
    assert seen["world"] == 2 and seen["partitioned_before"] and seen["partitioned_after"]
    # at any moment at most one bucket is gathered (a parameter larger than a bucket goes alone)
    assert seen["max_live_bytes"] <= max(bucket, seen["largest_param_bytes"])
    _assert_model_files_weights(seen["params"], tiny_model_dir)


def _assert_model_files_weights(params: dict, model_dir: Path) -> None:
    """`params` (name -> shape, sha256 of the bytes) are the weights of model_dir's safetensors file."""
    from safetensors.torch import load_file

    original = load_file(model_dir / "model.safetensors")
    expected = {k: v for k, v in original.items() if k != "lm_head.weight"}  # tied to the embedding
    assert set(params) == set(expected)
    for name, t in expected.items():
        assert params[name]["shape"] == list(t.shape)
        assert params[name]["sha"] == hashlib.sha256(t.numpy().tobytes()).hexdigest(), name


@pytest.mark.slow
def test_fsdp_full_weights_are_gathered_one_parameter_at_a_time(tmp_path, tiny_model_dir):
    """FSDP2 on 2 processes: iter_full_params yields every weight whole (as loaded: bit for bit; after
    an AdamW step: equal to the 1-process model's) while the model itself stays sharded."""
    out = tmp_path / "sync.json"
    torchrun([str(ROOT / "tests" / "rl" / "sync_worker.py"), str(tiny_model_dir), "0", str(out), "fsdp"])
    seen = json.loads(out.read_text())
    assert seen["world"] == 2 and seen["sharded_before"] and seen["sharded_while_gathering"] and seen["sharded_after"]
    _assert_model_files_weights(seen["params"], tiny_model_dir)  # as loaded: bit for bit
    print(f"fsdp gathered weights after a step vs 1 process: max |d weight| {seen['trained_max_diff']:.2e}")
    assert seen["trained_names"] and seen["trained_max_diff"] <= WEIGHT_TOL


@pytest.mark.slow
def test_fsdp_resumes_exactly_from_its_sharded_checkpoint(tmp_path, tiny_model_dir):
    """2 FSDP processes with sharded rollouts (the ranks generate different prompts, so the model is
    unsharded for each generate call): a run stopped after 2 iterations and resumed from its
    checkpoint (sharded model and optimizer states, one file per rank) logs the same 3rd iteration,
    bit for bit, and saves the same final weights as an uninterrupted run."""
    recipe = _recipe_dict(tiny_model_dir, tmp_path)
    recipe["distributed"] = {"strategy": "fsdp", "rollouts": "sharded"}
    recipe["train"] |= {"iterations": 3}
    runs = {}
    for name, stops in (("straight", [3]), ("resumed", [2, 3])):
        path = tmp_path / f"{name}.yaml"
        for iterations in stops:
            path.write_text(yaml.safe_dump(recipe | {"name": name, "train": recipe["train"] | {"iterations": iterations}}))
            out = torchrun(["-m", "launch.cli", "train", str(path), *(["--resume"] if iterations == 3 and name == "resumed" else [])])
        runs[name] = tmp_path / "runs" / name
    assert "resumed from" in out.stdout + out.stderr
    assert sorted(p.name for p in (runs["resumed"] / "checkpoints" / "iter_0000002" / "fsdp_policy").iterdir()) == \
        [".metadata", "__0_0.distcp", "__1_0.distcp"]
    straight, resumed = (read_jsonl(runs[n] / "metrics.jsonl") for n in ("straight", "resumed"))
    assert [m["iteration"] for m in resumed] == [0, 1, 2, 3]
    keys = ("train/loss", "train/grad_norm", "train/reward", "train/entropy", "step")
    assert [[m[k] for k in keys] for m in resumed[1:]] == [[m[k] for k in keys] for m in straight[1:]]
    a, b = _weights(runs["straight"]), _weights(runs["resumed"])
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_uneven_shares_after_filtering_keep_the_trajectory(tmp_path, tiny_model_dir):
    """Zero-variance filtering leaves mini-batches of 3 sequences (one group of 3) for 2 ZeRO-3
    ranks: one rank runs a zero-weight micro-batch so that both run the same collectives, and the
    trajectory still matches 1 process."""
    recipe = _recipe_dict(tiny_model_dir, tmp_path)
    recipe["algorithm"] |= {"group_size": 3, "zero_variance_filter": True}
    recipe["train"] |= {"micro_batch_size": 1}
    reference = read_jsonl(train(recipe_from_dict(recipe)) / "metrics.jsonl")[1:]
    # the filter left a single group in some iteration: 3 rows, shares of 2 and 1 micro-batches of 1
    assert any(m["train/filtered_groups"] == 3.0 for m in reference)

    path = tmp_path / "uneven.yaml"
    path.write_text(yaml.safe_dump(recipe | {"name": "uneven", "distributed": {"strategy": "zero3", "rollouts": "replicated"}}))
    torchrun(["-m", "launch.cli", "train", str(path)])
    got = read_jsonl(tmp_path / "runs" / "uneven" / "metrics.jsonl")[1:]
    assert [m["step"] for m in got] == [m["step"] for m in reference]
    for m, ref in zip(got, reference):
        assert m["train/filtered_groups"] == ref["train/filtered_groups"]
        assert abs(m["train/loss"] - ref["train/loss"]) <= LOSS_TOL
        assert abs(m["train/grad_norm"] - ref["train/grad_norm"]) <= GRAD_NORM_TOL
        assert abs(m["train/entropy"] - ref["train/entropy"]) <= 1e-5  # the zero-weight row is not counted
