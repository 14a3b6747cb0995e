"""Read runs: run directories (DESIGN.md's contract), CSV files, and wandb runs (offline and online).

Every reader returns a :class:`Run`: a name, the resolved recipe (a dict; empty where the source has
none) and the metrics lines (dicts keyed as in ``metrics.jsonl``). :func:`series` turns a run into
the (x, y) points a fit needs, with errors that name the file, the line and the keys present;
:func:`default_x` picks the compute axis runs are fitted against, and :func:`throughput` converts
it to device-hours.

Sources :func:`load_runs` understands:

* ``runs/<name>`` — a run directory: ``recipe.yaml`` + ``metrics.jsonl``;
* ``runs/`` — a folder of run directories (every child with a ``metrics.jsonl``);
* ``file.csv`` — one run, one row per logged step, a header with the metric names;
* ``runs/<name>/wandb/offline-run-*`` or its ``run-*.wandb`` file — a wandb offline run;
* ``wandb:ENTITY/PROJECT/RUN_ID`` and ``wandb:ENTITY/PROJECT?group=NAME`` — online runs, read with
  wandb's public API (``wandb.Api().run(path).scan_history()``, ``Api().runs(path, filters=...)``).
"""

from __future__ import annotations

import csv
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

Array = np.ndarray


class RunError(ValueError):
    """A run that cannot be read or has no usable points; the message names the file and the problem."""


@dataclass(frozen=True)
class Run:
    name: str
    records: list[dict[str, Any]]
    recipe: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    """Where it was read from (a path or a wandb path), for messages."""
    group: str | None = None
    """The wandb group, where the source has one."""

    @property
    def seed(self) -> Any:
        return self.recipe.get("seed")


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
    lines = path.read_text().splitlines()
    records: list[dict[str, Any]] = []
    last_step = None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):
                break  # the last line was being written when the run stopped
            raise RunError(f"{path}:{i} is not valid JSON ({e.msg}); every line must be one JSON object") from None
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
    return Run(name=name or path.stem, records=records, source=str(path))


# --------------------------------------------------------------------------------------------
# wandb
# --------------------------------------------------------------------------------------------

_BLOCK = 32768
_HEADER = 7  # ":W&B" + magic 0xBEE1 + version


def _wandb_records(path: Path) -> list[bytes]:
    """The records of a ``.wandb`` transaction log: LevelDB-log framing (32 KiB blocks; chunks of
    crc32 + length + type, FULL=1 FIRST=2 MIDDLE=3 LAST=4) after a 7-byte ":W&B" header."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise RunError(f"{path} is not a wandb transaction log (no ':W&B' header)")
    out, buf, pos = [], b"", _HEADER
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            out.append(buf + chunk)
            buf = b""
    return out


def _find_wandb_file(path: Path) -> Path:
    if path.is_file():
        return path
    files = (
        sorted(path.glob("run-*.wandb"))
        or sorted(path.glob("wandb/*run-*/run-*.wandb"))
        or sorted(path.glob("*/run-*.wandb"))
    )
    if not files:
        raise RunError(f"{path} holds no wandb run (no run-*.wandb file); expected an offline-run-* directory")
    return files[-1]  # the newest, by wandb's timestamped names


def read_wandb_offline(path: str | Path) -> Run:
    """An offline wandb run (``wandb.init(mode="offline")``): its history lines, config and group.

    wandb has no public reader for offline runs, so this parses the run's ``.wandb`` transaction log
    with wandb's own protobuf classes (``wandb.proto.wandb_internal_pb2.Record``). The framing is
    wandb's internal format; it is tested against the installed wandb (0.31) in the test suite.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    file = _find_wandb_file(Path(path))
    records: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    name, group = file.parent.name, None
    for raw in _wandb_records(file):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            line = {
                ".".join(item.nested_key) if item.nested_key else item.key: json.loads(item.value_json)
                for item in rec.history.item
            }
            records.append(line)
        elif kind in ("run", "config"):
            items = rec.run.config.update if kind == "run" else rec.config.update
            for item in items:
                key = ".".join(item.nested_key) if item.nested_key else item.key
                if key != "_wandb":
                    config[key] = json.loads(item.value_json)
            if kind == "run":
                name = rec.run.display_name or rec.run.run_id or name
                group = rec.run.run_group or None
    if not records and not config:
        raise RunError(
            f"{file} holds no history or config yet: is the run still running (wandb writes it when the run ends)?"
        )
    name = str(config.get("name") or name)
    return Run(name=name, records=records, recipe=config, source=str(file), group=group)


def read_wandb(path: str, api: Any = None) -> list[Run]:
    """Online runs through wandb's public API: ``ENTITY/PROJECT/RUN_ID`` or ``ENTITY/PROJECT?group=NAME``.

    Needs network access and a wandb login; ``api`` (a ``wandb.Api()``-like object) can be given.
    """
    if api is None:
        import wandb

        api = wandb.Api()
    if "?group=" in path:
        project, group = path.split("?group=", 1)
        found = list(api.runs(project, filters={"group": group}))
        if not found:
            raise RunError(f"wandb project {project} has no runs in group {group!r}")
    else:
        found = [api.run(path)]
    return [
        Run(
            name=str(r.name),
            records=[dict(row) for row in r.scan_history()],
            recipe=dict(r.config),
            source=f"wandb:{'/'.join(r.path) if isinstance(r.path, (list, tuple)) else r.path}",
            group=r.group or None,
        )
        for r in found
    ]


# --------------------------------------------------------------------------------------------
# Many sources, groups of seeds, and points
# --------------------------------------------------------------------------------------------


def load_runs(sources: list[str], api: Any = None) -> list[Run]:
    """Read every source (see the module doc); a folder of run directories gives all its runs."""
    runs: list[Run] = []
    for src in sources:
        if src.startswith("wandb:"):
            runs.extend(read_wandb(src[len("wandb:") :], api=api))
            continue
        p = Path(src)
        if not p.exists():
            raise RunError(
                f"{src} does not exist; expected a run directory, a folder of runs, a .csv, a wandb run "
                "or wandb:ENTITY/PROJECT/RUN_ID"
            )
        if p.suffix == ".csv":
            runs.append(read_csv(p))
        elif p.suffix == ".wandb" or p.name.startswith("offline-run-") or p.name.startswith("run-"):
            runs.append(read_wandb_offline(p))
        elif (p / "metrics.jsonl").is_file():
            runs.append(read_run_dir(p))
        elif p.is_dir() and any((c / "metrics.jsonl").is_file() for c in p.iterdir() if c.is_dir()):
            runs.extend(read_run_dir(c) for c in sorted(p.iterdir()) if (c / "metrics.jsonl").is_file())
        else:
            raise RunError(
                f"{src} has no metrics.jsonl and no run directories with one; expected a run directory (DESIGN.md)"
            )
    return runs


# recipe sections that say where and how a run is recorded or run, not what it learns
_BOOKKEEPING = ("name", "seed", "logging", "checkpoint", "resources")


def _without_nulls(value):
    """A setting that is null (a default-off option) says the same as one that is absent: a recipe
    written before the option existed groups with one written after."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def recipe_key(run: Run) -> str:
    """What runs of one recipe share: the wandb group if set, else the recipe without its name, its
    seed and its bookkeeping (logging, checkpoint, resources: where the run was written, how often it
    was checkpointed, how many threads it used), nulls dropped."""
    if run.group:
        return f"group:{run.group}"
    if not run.recipe:
        return f"run:{run.name}"
    rest = {k: v for k, v in run.recipe.items() if k not in _BOOKKEEPING}
    return json.dumps(_without_nulls(rest), sort_keys=True, default=str)


def group_label(runs: list[Run]) -> str:
    """A name for a group of seeds: the wandb group, else the runs' common name prefix."""
    if runs[0].group:
        return runs[0].group
    if len(runs) == 1:
        return runs[0].name
    names = [r.name for r in runs]
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip("-_.")
    if prefix.endswith(("seed", "-s", "_s")):
        prefix = prefix.removesuffix("seed").removesuffix("-s").removesuffix("_s").rstrip("-_.")
    return prefix or "+".join(names)


def group_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by recipe (seeds of one recipe together), labelled, in order of first appearance."""
    by_key: dict[str, list[Run]] = {}
    for r in runs:
        by_key.setdefault(recipe_key(r), []).append(r)
    out: dict[str, list[Run]] = {}
    for members in by_key.values():
        label = group_label(members)
        while label in out:
            label += "'"
        out[label] = members
    return out


def series(
    run: Run,
    x_key: str = "compute/flops",
    y_key: str = "val/accuracy",
    *,
    cumulative: bool | None = None,
    need_x: bool = True,
) -> tuple[Array, Array]:
    """The (x, y) points of a run: every line that has ``y_key``, in the order logged.

    Lines without ``y_key`` (training steps between evals) are skipped; ``pred/...`` keys, written by
    the live predictor, are never read as x or y. A line with y but no x is an error, unless
    ``need_x=False`` (the eval before training has no ``train/entropy``). When x is a cumulative
    counter (``cumulative``; by default for ``step`` and ``compute/...``) it must never decrease.
    Errors name the source, the line and the keys seen.
    """
    for key in (x_key, y_key):
        if key.startswith("pred/"):
            raise RunError(
                f"'{key}' is a prediction written by the live predictor, not a measurement; fit a measured metric"
            )
    lines = [r for r in run.records if y_key in r and r[y_key] is not None]
    if not need_x:
        lines = [r for r in lines if r.get(x_key) is not None]
    if not lines:
        keys = sorted({k for r in run.records for k in r if not k.startswith("_")})
        raise RunError(
            f"{run.source or run.name} has no '{y_key}' values"
            + ("" if need_x else f" on lines with '{x_key}'")
            + (f"; keys present: {', '.join(keys)}" if keys else " (no metrics lines at all)")
        )
    x, y = [], []
    for r in lines:
        where = f"{run.source or run.name}" + (f":{r['_line']}" if "_line" in r else f" (step {r.get('step')})")
        if x_key not in r or r[x_key] is None:
            keys = ", ".join(k for k in r if not k.startswith("_"))
            raise RunError(f"{where} has '{y_key}' but no '{x_key}'; keys on that line: {keys}")
        for key in (x_key, y_key):
            v = r[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise RunError(f"{where}: '{key}' is {v!r}, expected a number")
            if not math.isfinite(v):
                raise RunError(
                    f"{where}: '{key}' is {v}; expected a finite number (was the eval or the logger broken?)"
                )
        x.append(float(r[x_key])), y.append(float(r[y_key]))
    xa, ya = np.array(x), np.array(y)
    if cumulative is None:
        cumulative = x_key == "step" or x_key.startswith("compute/")
    back = np.flatnonzero(np.diff(xa) < 0) if cumulative else np.zeros(0, dtype=int)
    if back.size:
        i = int(back[0])
        line = lines[i + 1].get("_line", f"step {lines[i + 1].get('step')}")
        raise RunError(
            f"{run.source or run.name}: '{x_key}' decreases at line {line} ({xa[i]:g} -> {xa[i + 1]:g}); "
            "it must be a cumulative counter that never goes down"
        )
    return xa, ya


# --------------------------------------------------------------------------------------------
# The compute axis, and device-hours as a unit of it
# --------------------------------------------------------------------------------------------

DEFAULT_X = ("compute/flops", "compute/tokens")
"""The axes :func:`default_x` chooses from, in order: counts of work, the same for the same run on
any machine. ``compute/device_hours`` (wall time x devices) is not among them: on a shared or busy
machine an iteration takes longer, the curve stretches where the machine was loaded, and a fit
against it bends there rather than where the recipe saturated."""

HOURS = "compute/device_hours"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _eval_lines(run: Run, y_key: str) -> list[dict[str, Any]]:
    return [r for r in run.records if r.get(y_key) is not None]


def default_x(runs: list[Run], y_key: str = "val/accuracy") -> str:
    """The x-axis to fit ``runs`` against when none is given: the first of :data:`DEFAULT_X` that
    every run has, as a number, on every line with ``y_key`` (its evals).

    All runs get one axis, so that fits of one command (a comparison above all) can be set side by
    side. Where no candidate fits every run, the error names the runs that lack them and the numeric
    metrics their evals do have, so that an axis can be chosen with ``--x``.
    """
    def has(run: Run, key: str) -> bool:
        return all(_number(r.get(key)) for r in _eval_lines(run, y_key))

    for key in DEFAULT_X:
        if all(has(run, key) for run in runs):
            return key
    described = []
    for run in runs:
        missing = [key for key in DEFAULT_X if not has(run, key)]
        if not missing:
            continue
        numeric = {k for r in _eval_lines(run, y_key) for k, v in r.items() if _number(v)}
        keys = sorted(k for k in numeric if not k.startswith(("_", "pred/")))
        described.append(
            f"{run.source or run.name} lacks {' and '.join(missing)} "
            f"(numeric metrics on its '{y_key}' lines: {', '.join(keys) or 'none'})"
        )
    raise RunError(
        f"cannot choose the compute axis: the default is {' or, failing that, '.join(DEFAULT_X)} on every "
        f"'{y_key}' line of every run, but " + "; ".join(described)
        + ". Pass --x to name the x-axis (x_key= in Python), e.g. --x compute/device_hours or --x step"
    )


def throughput_rates(runs: Run | list[Run], x_key: str = "compute/flops") -> Array:
    """Δ(x)/Δ(device-hours) of every pair of consecutive metrics lines where both counters increase
    (one per training iteration; an eval line that repeats its step adds nothing), over all ``runs``.

    Lines that lack either counter are passed over; a run without ``compute/device_hours`` gives none.
    """
    rates: list[float] = []
    for run in [runs] if isinstance(runs, Run) else runs:
        lines = [r for r in run.records if _number(r.get(x_key)) and _number(r.get(HOURS))]
        for a, b in zip(lines, lines[1:]):
            dx, dh = float(b[x_key]) - float(a[x_key]), float(b[HOURS]) - float(a[HOURS])
            if dx > 0 and dh > 0:
                rates.append(dx / dh)
    return np.array(rates, dtype=float)


def throughput(runs: Run | list[Run], x_key: str = "compute/flops") -> float | None:
    """The run's measured x-units per device-hour: the median of :func:`throughput_rates` (for seeds
    pooled into one curve, over all their lines), or None where the run has no device-hours.

    The median, not total x over total hours: an iteration slowed by a busy machine is an outlier
    in hours per unit of work, and the median leaves it out where a ratio of totals would not.
    """
    rates = throughput_rates(runs, x_key)
    return float(np.median(rates)) if rates.size else None
