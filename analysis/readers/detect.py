"""Which reader reads a source, decided from its content (``format="auto"``) or forced; :func:`load_runs`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.readers.asymptote import read_csv, read_metrics, read_run_dir
from analysis.readers.base import Run, RunError
from analysis.readers.tensorboard_logs import event_files, is_event_file, read_tensorboard
from analysis.readers.trl_logs import find_trainer_state, is_trainer_state, read_trl
from analysis.readers.verl_logs import is_verl_line, read_verl
from analysis.readers.wandb_runs import read_wandb, read_wandb_offline

FORMATS = ("auto", "asymptote", "csv", "trl", "verl", "tensorboard", "wandb")

EXPECTS = {
    "asymptote": "a run directory with metrics.jsonl (DESIGN.md) or its metrics.jsonl",
    "csv": "a .csv with a header row of metric names",
    "trl": "a TRL / transformers output directory with trainer_state.json or checkpoint-*/trainer_state.json",
    "verl": 'a .jsonl of verl\'s file logger (lines {"step": N, "data": {...}})',
    "tensorboard": "a TensorBoard event file (events.out.tfevents.*) or a directory of them",
    "wandb": "a wandb offline run (an offline-run-* directory or its run-*.wandb file)",
}


def _file_format(path: Path) -> str | None:
    """The format of one file, from its first bytes (and, for a JSON document, its keys)."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(b":W&B"):
        return "wandb"
    if b"brain.Event:" in head[:128]:
        return "tensorboard"
    try:
        text = head.decode()
    except UnicodeDecodeError:
        return None
    first = next((line for line in text.splitlines() if line.strip()), "").strip()
    if first.startswith("{"):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:  # a JSON document over several lines: trainer_state.json
            try:
                obj = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                return None
        if is_trainer_state(obj):
            return "trl"
        return "verl" if is_verl_line(obj) else "asymptote"
    if path.suffix == ".csv" or ("," in first and "\x00" not in text):
        return "csv"
    return None


def _is(fmt: str, path: Path) -> bool:
    """Whether ``path`` itself is one run in ``fmt``."""
    if path.is_file():
        return _file_format(path) == fmt
    if not path.is_dir():
        return False
    if fmt == "asymptote":  # an empty metrics.jsonl (a run that has just started) is one too
        metrics = path / "metrics.jsonl"
        return metrics.is_file() and _file_format(metrics) in ("asymptote", None)
    if fmt == "trl":
        try:
            return _file_format(find_trainer_state(path)) == "trl"
        except RunError:
            return False
    if fmt == "wandb":
        return any(path.glob("run-*.wandb")) or any(path.glob("wandb/*run-*/run-*.wandb"))
    if fmt == "tensorboard":
        files = event_files(path)
        return bool(files) and is_event_file(files[0])
    return False


_ORDER = ("asymptote", "trl", "wandb", "verl", "csv", "tensorboard")


def detect(path: str | Path) -> str | None:
    """The format of ``path`` itself as one run, from its content; None where it is none of them."""
    path = Path(path)
    if path.is_file():
        return _file_format(path)
    return next((fmt for fmt in _ORDER if _is(fmt, path)), None)


def _children(path: Path) -> list[Path]:
    return sorted(c for c in path.iterdir() if not c.is_symlink()) if path.is_dir() else []


def _event_dirs(path: Path) -> list[Path]:
    return sorted({f.parent for f in path.rglob("events.out.tfevents.*") if is_event_file(f)})


def find_runs(path: Path, fmt: str = "auto") -> list[tuple[Path, str]]:
    """The runs at ``path`` and their formats: ``path`` itself, else its children (directories; of
    files, verl's .jsonl, or any file when ``fmt`` names their format), else, for TensorBoard, every
    directory below it that holds event files (OpenRLHF and verl nest them by project and run)."""
    if fmt == "auto":
        found = detect(path)
        if found:
            return [(path, found)]
        kids = [(c, detect(c)) for c in _children(path)]
        kids = [(c, f) for c, f in kids if f and (c.is_dir() or f == "verl")]
        return kids or [(d, "tensorboard") for d in _event_dirs(path)]
    if _is(fmt, path):
        return [(path, fmt)]
    kids = [(c, fmt) for c in _children(path) if _is(fmt, c)]
    if kids or fmt != "tensorboard":
        return kids
    return [(d, fmt) for d in _event_dirs(path)]


def _read_asymptote(path: Path, gpus: int | None) -> Run:
    if path.is_dir() or path.name == "metrics.jsonl":
        return read_run_dir(path if path.is_dir() else path.parent)
    return Run(name=path.stem, records=read_metrics(path), source=str(path))


READERS: dict[str, Callable[[Path, int | None], Run]] = {
    "asymptote": _read_asymptote,
    "csv": lambda p, gpus: read_csv(p),
    "trl": lambda p, gpus: read_trl(p),
    "verl": read_verl,
    "tensorboard": read_tensorboard,
    "wandb": lambda p, gpus: read_wandb_offline(p),
}


def _no_runs(src: str, path: Path, fmt: str) -> RunError:
    if fmt == "auto":
        return RunError(
            f"{src} holds no run that Asymptote can read; expected one of: "
            + "; ".join(EXPECTS.values())
            + "; or a folder of such runs, or wandb:ENTITY/PROJECT/RUN_ID"
        )
    found = find_runs(path)
    what = f"; it holds {' and '.join(sorted({f for _, f in found}))} runs (--format auto reads them)" if found else ""
    return RunError(f"--format {fmt}: {src} is not {EXPECTS[fmt]}, nor a folder of them{what}")


def load_runs(sources: list[str], api: Any = None, *, format: str = "auto", gpus: int | None = None) -> list[Run]:
    """Read every source: a run in any of :data:`FORMATS`, a folder of runs, or an online wandb run
    (``wandb:ENTITY/PROJECT/RUN_ID``, ``wandb:ENTITY/PROJECT?group=NAME``; ``api`` stands in for
    ``wandb.Api()``). ``format`` forces a reader (default: each source's content decides); ``gpus``
    is the GPU count of verl and OpenRLHF runs, for their device-hours."""
    if format not in FORMATS:
        raise RunError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    runs: list[Run] = []
    for src in sources:
        if src.startswith("wandb:"):
            if format not in ("auto", "wandb"):
                raise RunError(f"--format {format}: {src} is an online wandb run; use --format wandb or auto")
            runs.extend(read_wandb(src[len("wandb:") :], api=api))
            continue
        path = Path(src)
        if not path.exists():
            raise RunError(
                f"{src} does not exist; expected a run directory, a folder of runs, a .csv, a TRL output directory, "
                "a verl .jsonl, a TensorBoard log, a wandb offline run or wandb:ENTITY/PROJECT/RUN_ID"
            )
        found = find_runs(path, format)
        if not found:
            raise _no_runs(src, path, format)
        runs.extend(READERS[fmt](p, gpus) for p, fmt in found)
    return runs
