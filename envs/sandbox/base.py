"""What every sandbox backend shares: the protocol, command results, and clean-up.

A `SandboxBackend` makes `Sandbox`es; a sandbox is a private writable workspace (a copy of a
repository) in which `run` executes one command at a time under the backend's isolation and
limits. Commands are independent processes (like mini-swe-agent's stateless actions): nothing
a command starts outlives it, only the files it writes in the workspace.

Clean-up, also when the trainer is killed:
- every process lives in a namespace (bwrap: `--die-with-parent`, a pid namespace) or a
  container that dies with it, and commands run in their own process group, killed whole;
- workspaces live under one root, in a directory per owning process named after its pid and
  start time (`run-<pid>-<start>`); `sweep_stale` removes the directories of processes that are
  gone, and every backend calls it when it starts;
- live backends are closed at interpreter exit (atexit) and on SIGTERM (turned into SystemExit
  so that `finally` blocks and atexit run; installed only where SIGTERM had its default action).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping, Protocol, runtime_checkable

DEFAULT_ROOT = "/tmp/asymptote-sandboxes"


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one command."""

    returncode: int | None
    """The exit status; negative -N when killed by signal N; None when the wall-clock limit hit."""
    stdout: str
    stderr: str
    timed_out: bool
    duration: float
    """Wall-clock seconds."""
    truncated: bool = False
    """Output beyond the backend's output limit was dropped."""

    @property
    def output(self) -> str:
        """stdout then stderr, as a terminal would interleave them roughly."""
        if self.stdout and self.stderr:
            return self.stdout.rstrip("\n") + "\n" + self.stderr
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@runtime_checkable
class Sandbox(Protocol):
    workdir: str
    """The workspace's path as commands inside the sandbox see it (their working directory)."""

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float | None = None,
            env: Mapping[str, str] | None = None) -> ExecResult:
        """Run argv (no shell) in the workspace; `timeout` overrides the wall-clock limit."""
        ...

    def close(self) -> None:
        """Kill whatever still runs and delete the workspace (idempotent)."""
        ...


@runtime_checkable
class SandboxBackend(Protocol):
    name: str
    python: str
    """The interpreter, inside the sandbox, that runs the file tools."""
    toolbox: str
    """Where envs/swe/toolbox.py is inside every sandbox."""

    def describe(self) -> str:
        """One paragraph: the isolation actually in force (logged at start-up)."""
        ...

    def create(self, files: Mapping[str, bytes | str] | None = None, *, image: str | None = None,
               workdir: str | None = None) -> Sandbox:
        """A new sandbox whose workspace holds `files` (relative path -> content), or the image's
        own files at `workdir` (docker)."""
        ...

    def close(self) -> None:
        """Close every sandbox this backend made and remove its directories."""
        ...


# --------------------------------------------------------------------------------------------
# Workspaces on the host: one root, one directory per owning process
# --------------------------------------------------------------------------------------------


def sandbox_root(configured: str | None) -> Path:
    return Path(configured or os.environ.get("ASYMPTOTE_SANDBOX_ROOT") or DEFAULT_ROOT)


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid, names one process
    even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_name(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"run-{pid}-{process_start_time(pid)}"


def owner_alive(name: str) -> bool:
    """Whether the process that owns directory `name` (run-<pid>-<start>) still runs."""
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "run" or not parts[1].isdigit():
        return True  # not ours to judge
    return process_start_time(int(parts[1])) == parts[2]


def sweep_stale(root: Path) -> list[str]:
    """Remove the workspace directories of owners that are gone; returns their names."""
    removed = []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        if entry.name.startswith("run-") and not owner_alive(entry.name):
            remove_tree(entry)
            removed.append(entry.name)
    return removed


def make_private_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def remove_tree(path: Path) -> None:
    """Delete a directory a sandbox wrote into: never follows symlinks (shutil.rmtree uses
    fd-based traversal on Linux) and restores permissions the sandbox may have removed."""

    def fix_and_retry(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p) or ".", 0o700)
            if not os.path.islink(p) and os.path.isdir(p):
                os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=fix_and_retry)


def safe_relative(path: str) -> PurePosixPath:
    """A workspace-relative path, or ValueError for absolute paths, '..' and empty names."""
    p = PurePosixPath(path)
    if p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts) or "\x00" in path:
        raise ValueError(f"not a relative path inside the workspace: {path!r}")
    return p


def write_files(directory: Path, files: Mapping[str, bytes | str]) -> None:
    """Write `files` into a directory that holds nothing untrusted yet (a fresh workspace)."""
    for rel, content in files.items():
        target = directory / safe_relative(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)


def read_capped(path: Path, limit: int) -> tuple[str, bool]:
    """The first `limit` bytes of a file, decoded (invalid UTF-8 replaced), and whether it was longer."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return "", False
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


# --------------------------------------------------------------------------------------------
# Closing live backends at exit
# --------------------------------------------------------------------------------------------

_live: "weakref.WeakSet" = weakref.WeakSet()
_hooks_lock = threading.Lock()
_hooks_installed = False


def register_backend(backend: SandboxBackend) -> None:
    """Close `backend` at interpreter exit and on SIGTERM."""
    global _hooks_installed
    _live.add(backend)
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_close_all)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminate)


def _close_all() -> None:
    for backend in list(_live):
        try:
            backend.close()
        except Exception:  # noqa: BLE001  (best effort at exit)
            pass


def _terminate(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


def kill_until_gone(list_pids: Callable[[], object], rounds: int) -> int:
    """SIGKILL every pid `list_pids()` returns, again and again (processes may fork between the
    listing and the kill: a fork bomb), until it returns none or `rounds` run out; returns how many
    kills were sent."""
    sent = 0
    for _ in range(rounds):
        pids = list_pids()
        if not pids:
            break
        sent += len(pids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return sent
