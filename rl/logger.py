"""The run directory's logs: metrics.jsonl, samples.jsonl and (optionally) wandb, with one set of names.

Every line is appended and flushed to disk at once, so a killed run loses nothing it logged. On
resume the files are cut back to the checkpoint's iteration (lines a killed run wrote after its last
checkpoint would otherwise appear twice).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from rl.config import Recipe


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
