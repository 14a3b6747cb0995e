"""wandb runs: offline runs (``wandb.init(mode="offline")``) from their ``.wandb`` transaction log,
and online runs through wandb's public API."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from analysis.readers.base import Run, RunError

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


def has_leet_inspect() -> bool:
    """Whether the installed wandb has ``wandb leet inspect --json`` (0.31 has; older ones may not)."""
    try:
        from wandb.cli import leet
    except ImportError:
        return False
    return hasattr(leet, "inspect")


def _read_with_leet(file: Path) -> tuple[list[dict[str, Any]], dict[str, Any], str, str | None]:
    """The history lines, config, name and group of a ``.wandb`` file, as ``wandb leet inspect
    --json FILE`` prints its records (one JSON object per record; wandb's own Go reader)."""
    proc = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(file)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RunError(f"wandb leet inspect could not read {file}: {proc.stderr.strip() or proc.stdout.strip()}")
    records: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    name, group = file.parent.name, None
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        kind = rec.get("type")
        if kind == "history":
            records.append(dict(rec["history"].get("item", {})))
        elif kind in ("run", "config"):
            body = rec[kind]
            update = (body.get("config") or {}).get("update", {}) if kind == "run" else body.get("update", {})
            config.update({k: v for k, v in update.items() if k != "_wandb"})
            if kind == "run":
                name = body.get("display_name") or body.get("run_id") or name
                group = body.get("run_group") or None
    return records, config, name, group


def _read_by_hand(file: Path) -> tuple[list[dict[str, Any]], dict[str, Any], str, str | None]:
    """The same as :func:`_read_with_leet`, for a wandb without ``leet inspect``: the records parsed
    with wandb's protobuf classes (``wandb.proto.wandb_internal_pb2.Record``) from the log's framing."""
    from wandb.proto import wandb_internal_pb2 as pb

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
    return records, config, name, group


def read_wandb_offline(path: str | Path, *, by_hand: bool | None = None) -> Run:
    """An offline wandb run (``wandb.init(mode="offline")``): its history lines, config and group.

    ``path`` is an ``offline-run-*`` directory, its ``run-*.wandb`` file or a folder holding
    ``wandb/offline-run-*``. wandb's Python API reads only online runs (``wandb.Api``), and 0.31's
    ``wandb.sdk.internal`` no longer has the old ``datastore.DataStore``; its public reader of the
    transaction log is the command ``wandb leet inspect --json`` (checked with wandb 0.31), used
    here. Where the installed wandb lacks it (or ``by_hand=True``), the log is parsed here instead.
    """
    file = _find_wandb_file(Path(path))
    if by_hand is None:
        by_hand = not has_leet_inspect()
    records, config, name, group = (_read_by_hand if by_hand else _read_with_leet)(file)
    if not records and not config:
        raise RunError(
            f"{file} holds no history or config yet: is the run still running (wandb writes it when the run ends)?"
        )
    name = str(config.get("name") or name)
    return Run(name=name, records=records, recipe=config, source=str(file), group=group, format="wandb")


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
            format="wandb",
        )
        for r in found
    ]
