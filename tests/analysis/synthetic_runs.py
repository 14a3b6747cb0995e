"""Synthetic run directories that follow DESIGN.md's contract exactly (used by the tests and to
make tests/analysis/data/runs/tiny-grpo-s0)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from analysis.laws import sigmoid

DATA = Path(__file__).parent / "data"
COMMITTED_RUN = DATA / "runs" / "tiny-grpo-s0"


def recipe(name: str, seed: int, **overrides) -> dict:
    """A resolved recipe shaped like rl/config's Recipe (the analysis reads only name, seed, logging)."""
    r = {
        "name": name,
        "seed": seed,
        "model": {"path": "models/tiny", "dtype": "float32"},
        "engine": {"name": "hf", "temperature": 1.0, "max_new_tokens": 24},
        "env": {"name": "math", "kind": "arithmetic", "max_operand": 20},
        "reward": {"correct": 1.0, "format": 0.0},
        "algorithm": {
            "group_size": 8,
            "advantage": {"name": "grpo"},
            "loss": {"name": "ppo_clip", "clip_low": 0.2, "clip_high": 0.2},
        },
        "train": {"iterations": 60, "prompts_per_iteration": 16},
        "optimizer": {"lr": 1e-4, "warmup_steps": 0, "max_grad_norm": 1.0},
        "eval": {"every": 2, "at_start": True, "num_prompts": 64, "k": 4, "temperature": None},
        "logging": {
            "runs_dir": "runs",
            "samples_per_iteration": 4,
            "progress": False,
            "wandb": {"mode": "disabled", "project": "asymptote", "entity": None, "group": None},
        },
        "checkpoint": {"every": 50, "keep_last": 2},
    }
    for key, value in overrides.items():
        node = r
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return r


def write_run_dir(
    root: Path,
    name: str,
    *,
    seed: int = 0,
    A: float = 0.62,
    B: float = 1.8,
    C_mid: float = 0.015,
    R0: float = 0.12,
    steps: int = 60,
    eval_every: int = 2,
    hours_per_step: float = 0.0011,
    sd: float = 0.02,
    pred_lines: bool = True,
    recipe_overrides: dict | None = None,
    sigmoid_in: str = "compute/device_hours",
    flops_per_hour: float = 3.1e15,
    slowdown: Callable[[int], float] | None = None,
) -> Path:
    """A run directory with recipe.yaml and a metrics.jsonl of ``steps + 1`` lines (step 0 included).

    val/accuracy on eval lines follows ScaleRL's sigmoid in ``sigmoid_in`` plus noise, quantised to
    1/256 (64 prompts x 4 samples); train/entropy decays; from the 8th eval on, eval lines carry
    pred/... keys as the live predictor writes them.

    ``sigmoid_in="compute/device_hours"`` (the committed run): hours per step jitter and
    compute/flops = hours x ``flops_per_hour``. ``sigmoid_in="compute/flops"``: the work per step
    jitters (generation lengths) and C_mid is in FLOPs; device-hours are flops / ``flops_per_hour``
    times a jitter of their own and ``slowdown(step)`` (a busy machine), which changes nothing else:
    the same seed gives the same flops, accuracies and entropies with or without it.
    """
    if sigmoid_in not in ("compute/device_hours", "compute/flops"):
        raise ValueError(f"sigmoid_in must be compute/device_hours or compute/flops, got {sigmoid_in!r}")
    rng = np.random.default_rng(seed)
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe(name, seed, **(recipe_overrides or {})), sort_keys=False))
    lines = []
    n_eval = 0
    hours = flops = 0.0
    for step in range(steps + 1):
        if step and sigmoid_in == "compute/device_hours":  # wall time per step varies a little
            hours += hours_per_step * float(np.clip(1 + 0.1 * rng.standard_normal(), 0.5, 1.5))
            flops = hours * flops_per_hour
        elif step:  # the work per step varies (generation lengths), and so, apart from it, does wall time
            work = hours_per_step * flops_per_hour * float(np.clip(1 + 0.1 * rng.standard_normal(), 0.5, 1.5))
            wall = float(np.clip(1 + 0.05 * rng.standard_normal(), 0.5, 1.5)) * (slowdown(step) if slowdown else 1.0)
            flops += work
            hours += work / flops_per_hour * wall
        at = hours if sigmoid_in == "compute/device_hours" else flops
        mean = float(sigmoid(np.array([at]), A=A, B=B, C_mid=C_mid, R0=R0)[0])
        entropy = 0.35 + 0.9 * np.exp(-step / 15) + 0.02 * rng.standard_normal()
        line = {
            "step": step,
            "compute/device_hours": round(hours, 6),
            "compute/flops": round(flops, 1),
            "compute/tokens": step * 16 * 8 * 20,
            "train/reward": round(min(max(mean + 0.05 * rng.standard_normal(), 0.0), 1.0), 4),
            "train/entropy": round(float(entropy), 4),
            "train/loss": round(float(0.02 * rng.standard_normal()), 5),
            "train/clip_frac": round(float(abs(0.05 * rng.standard_normal())), 4),
            "train/response_length": round(float(12 + 3 * rng.standard_normal()), 2),
        }
        if step % eval_every == 0:
            line["val/accuracy"] = round(float(np.clip(mean + sd * rng.standard_normal(), 0, 1)) * 256) / 256
            n_eval += 1
            if pred_lines and n_eval >= 8:
                line.update(
                    {
                        "pred/asymptote": 0.6,
                        "pred/asymptote_low": 0.5,
                        "pred/asymptote_high": 0.7,
                        "pred/identified": 1.0,
                    }
                )
        lines.append(line)
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run
