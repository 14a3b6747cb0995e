"""Asymptote's own runs: run directories (DESIGN.md's contract: ``recipe.yaml`` + ``metrics.jsonl``)
and CSV files (a header row of metric names, one row per logged step)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from analysis.readers.base import Run, RunError, json_lines


# --------------------------------------------------------------------------------------------
# Run directories
# --------------------------------------------------------------------------------------------


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Parse a metrics.jsonl; a torn last line (a run killed mid-write) is dropped.

    A run resumed from a checkpoint logs again the steps after that checkpoint: when ``step`` goes
    back, the earlier lines from that step on are dropped (the redone steps replace them). Lines
    that repeat the current step (an eval logged beside the step's training line) are kept.
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    last_step = None
    for i, rec in json_lines(path, "every line must be one JSON object"):
        if not isinstance(rec, dict):
            raise RunError(f"{path}:{i} is a JSON {type(rec).__name__}, expected an object of metrics")
        rec["_line"] = i
        step = rec.get("step")
        if isinstance(step, (int, float)) and last_step is not None and step < last_step:
            records = [r for r in records if not (isinstance(r.get("step"), (int, float)) and r["step"] >= step)]
        if isinstance(step, (int, float)):
            last_step = step
        records.append(rec)
    return records


def read_run_dir(path: str | Path) -> Run:
    """A run directory: ``recipe.yaml`` (the resolved recipe) and ``metrics.jsonl``."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path} is not a directory; expected a run directory with recipe.yaml and metrics.jsonl")
    metrics = path / "metrics.jsonl"
    if not metrics.is_file():
        raise RunError(
            f"{path} has no metrics.jsonl; expected a run directory (recipe.yaml + metrics.jsonl, DESIGN.md)"
        )
    recipe: dict[str, Any] = {}
    if (path / "recipe.yaml").is_file():
        loaded = yaml.safe_load((path / "recipe.yaml").read_text())
        if loaded is not None and not isinstance(loaded, dict):
            raise RunError(f"{path / 'recipe.yaml'} is not a mapping of keys to values")
        recipe = loaded or {}
    name = str(recipe.get("name") or path.name)
    group = ((recipe.get("logging") or {}).get("wandb") or {}).get("group")
    return Run(name=name, records=read_metrics(metrics), recipe=recipe, source=str(metrics), group=group)


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def read_csv(path: str | Path, name: str | None = None) -> Run:
    """One run from a CSV with a header row of metric names; empty cells are missing values."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise RunError(
                f"{path} has no header row; expected metric names such as step,compute/device_hours,val/accuracy"
            )
        records = []
        for i, row in enumerate(reader, start=2):
            rec: dict[str, Any] = {"_line": i}
            for k, v in row.items():
                if k is None or v is None or v.strip() == "":
                    continue
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
            records.append(rec)
    return Run(name=name or path.stem, records=records, source=str(path), format="csv")
