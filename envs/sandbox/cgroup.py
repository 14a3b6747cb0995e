"""Per-command cgroups: one memory limit and one process limit for a command's whole tree.

rlimits bound each process on its own (64 processes of 1 GiB each are still 64 GiB); a cgroup
bounds them together and lists every process of the command for a clean kill. Each command gets
a fresh cgroup nested under this process's own (so the limits of whatever runs the trainer still
apply), created just before the command and removed just after, named after its owner process
so that a later run removes what a killed one left (`sweep_stale_cgroups`).

cgroup v1 (separate `memory` and `pids` hierarchies) and v2 (one unified hierarchy, where this
process's cgroup must delegate the memory and pids controllers to children) are supported. Where
neither is writable, `Cgroups.detect` returns None and the sandbox relies on rlimits alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from envs.sandbox.base import kill_until_gone, owner_alive

PREFIX = "asymptote-"


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount root, mount point, fs type, super options) of the cgroup mounts."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        out.append((fields[3], fields[4], rfields[0], set(rfields[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """controller ('' for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path
    return paths


def _join(mount_root: str, mount_point: str, path: str) -> Path:
    rel = os.path.relpath(path, mount_root) if path.startswith(mount_root) else path.lstrip("/")
    return Path(mount_point) / ("" if rel == "." else rel)


class Cgroups:
    """Where to create per-command cgroups, and how to set their limits."""

    def __init__(self, version: int, parents: dict[str, Path]):
        self.version = version
        self.parents = parents  # v1: {"memory": dir, "pids": dir}; v2: {"": dir}

    @classmethod
    def detect(cls) -> "Cgroups | None":
        """Writable memory and pids cgroups under this process's own, or None."""
        try:
            own, mounts = _own_paths(), _mounts()
        except OSError:
            return None
        v1 = {}
        for controller in ("memory", "pids"):
            for root, point, fstype, opts in mounts:
                if fstype == "cgroup" and controller in opts and controller in own:
                    v1[controller] = _join(root, point, own[controller])
        if len(v1) == 2:
            candidate = cls(1, v1)
            if candidate._probe():
                return candidate
        for root, point, fstype, _ in mounts:
            if fstype == "cgroup2" and "" in own:
                candidate = cls(2, {"": _join(root, point, own[""])})
                if candidate._probe():
                    return candidate
        return None

    def _probe(self) -> bool:
        group = None
        try:
            group = self.create(f"{PREFIX}probe-{os.getpid()}-{time.monotonic_ns()}", 64 << 20, 16)
            return True
        except OSError:
            return False
        finally:
            if group is not None:
                group.remove()

    def describe(self) -> str:
        where = ", ".join(str(p) for p in self.parents.values())
        return f"cgroup v{self.version} per command (memory and pids limits, nested under {where})"

    def create(self, name: str, memory_bytes: int, pids: int) -> "CommandCgroup":
        dirs = []
        try:
            for controller, parent in self.parents.items():
                d = parent / name
                d.mkdir()
                dirs.append(d)
                if self.version == 1 and controller == "memory":
                    (d / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    swap = d / "memory.memsw.limit_in_bytes"
                    if swap.exists():
                        try:
                            swap.write_text(str(memory_bytes))
                        except OSError:
                            pass  # swap accounting off: the memory limit alone applies
                elif self.version == 1 and controller == "pids":
                    (d / "pids.max").write_text(str(pids))
                else:
                    if not (d / "memory.max").exists() or not (d / "pids.max").exists():
                        raise OSError("memory and pids controllers are not delegated to child cgroups")
                    (d / "memory.max").write_text(str(memory_bytes))
                    (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
                    (d / "pids.max").write_text(str(pids))
        except OSError:
            CommandCgroup(dirs).remove()
            raise
        return CommandCgroup(dirs)


class CommandCgroup:
    """The cgroup directories (one per hierarchy) of one command."""

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            try:
                out |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return out

    def kill_all(self) -> None:
        for d in self.dirs:
            kill_file = d / "cgroup.kill"  # v2, kernel >= 5.14: kills the whole tree atomically
            if kill_file.exists():
                try:
                    kill_file.write_text("1")
                except OSError:
                    pass
        kill_until_gone(self.pids, rounds=50)

    def remove(self) -> None:
        """Kill what is left and delete the directories (rmdir waits for the dying to exit)."""
        self.kill_all()
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while killed processes are still exiting
                    time.sleep(0.02)


def sweep_stale_cgroups(cgroups: Cgroups) -> list[str]:
    """Remove cgroups that processes which are gone left behind (killed mid-command)."""
    removed = []
    for parent in cgroups.parents.values():
        if not parent.is_dir():
            continue
        for d in parent.iterdir():
            if not d.is_dir() or not d.name.startswith(PREFIX + "run-"):
                continue
            owner = "-".join(d.name[len(PREFIX):].split("-")[:3])
            if not owner_alive(owner):
                CommandCgroup([d]).remove()
                removed.append(d.name)
    return removed
