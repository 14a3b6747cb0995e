"""The run directory's logs: metrics.jsonl, samples.jsonl and (optionally) wandb, with one set of names.

Every line is appended and flushed to disk at once, so a killed run loses nothing it logged. On
resume the files are cut back to the checkpoint's iteration (lines a killed run wrote after its last
checkpoint would otherwise appear twice).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rl.checkpoint import latest_checkpoint

if TYPE_CHECKING:
    from accelerate import Accelerator

    from rl.config import Recipe


@contextlib.contextmanager
def timer(timings: dict[str, float], name: str):
    """Add the time spent in the block to timings[name] (logged as train/time/<name>)."""
    start = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def prepare_run_dir(run_dir: Path, recipe_yaml: str, resume: bool) -> bool:
    """Create the run directory and write the resolved recipe into it; returns True for a fresh
    start (whose old metrics and samples are removed). Refuses to overwrite a run unless resuming."""
    metrics = run_dir / "metrics.jsonl"
    has_checkpoint = latest_checkpoint(run_dir / "checkpoints") is not None
    if not resume and metrics.is_file() and metrics.stat().st_size > 0:
        raise FileExistsError(
            f"run directory {run_dir} already holds a run; pass --resume to continue it, "
            f"or choose another name (name=...) or remove the directory"
        )
    fresh = not (resume and has_checkpoint)
    if resume and not has_checkpoint:
        print(f"[asymptote] no checkpoint in {run_dir / 'checkpoints'}: starting from the beginning")
    run_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in ("metrics.jsonl", "samples.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
    recipe_file = run_dir / "recipe.yaml"
    if not fresh and recipe_file.is_file() and recipe_file.read_text() != recipe_yaml:
        changed = sorted(_diff_keys(yaml.safe_load(recipe_file.read_text()), yaml.safe_load(recipe_yaml)))
        print(f"[asymptote] resuming with a changed recipe; keys that differ: {', '.join(changed)}")
    recipe_file.write_text(recipe_yaml)
    return fresh


def _diff_keys(a, b, prefix: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSONL file; a torn last line (a crash mid-write) is ignored."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_jsonl(path: Path, keep: "callable") -> None:
    """Atomically rewrite `path` with only the records for which keep(record) is true."""
    if not path.is_file():
        return
    kept = [r for r in read_jsonl(path) if keep(r)]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, path)


class MetricAccumulator:
    """Combines a metric's values over micro-batches and optimizer steps into one number per
    iteration. How, by default, follows the name: ending in `max` the max, in `min` the min, in
    `tokens` a count (summed, then divided by the optimizer steps: per step), otherwise a mean
    weighted by `weight` (tokens)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.weights: dict[str, float] = {}
        self.how: dict[str, str] = {}

    def add(self, name: str, value: float, weight: float = 1.0, how: str | None = None) -> None:
        how = how or ("max" if name.endswith("max") else "min" if name.endswith("min")
                      else "sum" if name.endswith("tokens") else "mean")
        self.how[name] = how
        if name not in self.values:
            self.values[name], self.weights[name] = (0.0 if how in ("mean", "sum") else value), 0.0
        if how == "max":
            self.values[name] = max(self.values[name], value)
        elif how == "min":
            self.values[name] = min(self.values[name], value)
        else:
            self.values[name] += value * (weight if how == "mean" else 1.0)
        self.weights[name] += weight

    def result(self, steps: int = 1) -> dict[str, float]:
        out = {}
        for name, value in self.values.items():
            how = self.how[name]
            out[name] = value / max(self.weights[name], 1e-12) if how == "mean" else value / steps if how == "sum" else value
        return out


def reduce_metrics(accelerator: Accelerator, stats: MetricAccumulator) -> MetricAccumulator:
    """Combine every rank's accumulator into one (sums add, weighted means pool, max/min of all).
    A collective on N processes: every rank must call it."""
    if accelerator.num_processes == 1:
        return stats
    from accelerate.utils import gather_object

    out = MetricAccumulator()
    for values, weights, how in gather_object([(stats.values, stats.weights, stats.how)]):
        for name, value in values.items():
            h = how[name]
            if name not in out.values:
                out.values[name], out.weights[name], out.how[name] = value, weights[name], h
            elif h == "max":
                out.values[name] = max(out.values[name], value)
            elif h == "min":
                out.values[name] = min(out.values[name], value)
            else:
                out.values[name] += value
                out.weights[name] += weights[name]
    return out


class NullLogger:
    """RunLogger's interface, writing nothing: the logger of ranks other than the main one."""

    def log(self, metrics: dict[str, Any]) -> None: ...

    def log_samples(self, records: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class RunLogger:
    """Appends metrics and samples to the run directory and mirrors metrics to wandb."""

    def __init__(self, run_dir: Path, recipe: Recipe, resume: bool):
        self.run_dir = run_dir
        self.metrics_file = open(run_dir / "metrics.jsonl", "a")
        self.samples_file = open(run_dir / "samples.jsonl", "a")
        self.wandb_run = None
        wb = recipe.logging.wandb
        if wb.mode != "disabled":
            import wandb

            # one wandb run per run directory, resumed by id after a restart
            id_file = run_dir / "wandb_id"
            run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
            id_file.write_text(run_id)
            self.wandb_run = wandb.init(
                project=wb.project,
                entity=wb.entity,
                group=wb.group,
                name=recipe.name,
                id=run_id,
                resume="allow" if resume else None,
                mode=wb.mode,
                dir=str(run_dir),
                config=recipe.model_dump(mode="json"),
            )

    def log(self, metrics: dict[str, Any]) -> None:
        line = json.dumps({k: _clean(v) for k, v in metrics.items()})
        self.metrics_file.write(line + "\n")
        self.metrics_file.flush()
        os.fsync(self.metrics_file.fileno())
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=int(metrics["step"]))

    def log_samples(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            self.samples_file.write(json.dumps(r) + "\n")
        self.samples_file.flush()

    def close(self) -> None:
        self.metrics_file.close()
        self.samples_file.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None
