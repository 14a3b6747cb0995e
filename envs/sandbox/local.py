"""The unsafe_local backend: a plain subprocess in a temporary directory. It ISOLATES NOTHING.

The command runs as the trainer's user with the trainer's view of the machine: it can read every
file the trainer can (keys, tokens, other runs), write anywhere the trainer can, and reach the
network. Only rlimits, a wall-clock limit and a process-group kill apply. It exists for debugging
on machines without bubblewrap, is refused unless `sandbox.allow_unsafe: true`, and says so at
start-up.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Mapping

from envs.sandbox.base import (
    ExecResult,
    make_private_dir,
    owner_name,
    read_capped,
    register_backend,
    remove_tree,
    sandbox_root,
    sweep_stale,
    write_files,
)
from envs.sandbox.config import SandboxConfig

WARNING = (
    "UNSAFE sandbox backend 'unsafe_local': model-written commands run as this user with NO isolation "
    "(they can read and write your files and use the network); use it only for debugging"
)


class LocalBackend:
    name = "unsafe_local"

    def __init__(self, cfg: SandboxConfig, toolbox_dir: Path):
        if not cfg.allow_unsafe:
            raise RuntimeError("the unsafe_local backend isolates nothing; it needs sandbox.allow_unsafe: true")
        warnings.warn(WARNING, stacklevel=2)
        print(f"[asymptote] WARNING: {WARNING}", file=sys.stderr)
        self.cfg = cfg
        self.python = sys.executable
        self.toolbox = str(Path(toolbox_dir).resolve() / "toolbox.py")
        self.root = sandbox_root(cfg.root)
        make_private_dir(self.root, 0o711)
        sweep_stale(self.root)
        self.home = make_private_dir(self.root / owner_name())
        self._sandboxes: set[LocalSandbox] = set()
        self._lock = threading.Lock()
        self._counter = itertools.count()
        register_backend(self)

    def create(self, files: Mapping[str, bytes | str] | None = None, *, image: str | None = None,
               workdir: str | None = None) -> "LocalSandbox":
        if image is not None:
            raise ValueError(f"the unsafe_local backend runs on the host; image {image!r} needs the docker backend")
        with self._lock:
            directory = self.home / f"sbx-{next(self._counter)}"
        sandbox = LocalSandbox(self, directory, files or {})
        with self._lock:
            self._sandboxes.add(sandbox)
        return sandbox

    def describe(self) -> str:
        c = self.cfg
        return (
            f"{WARNING}. Only rlimits (cpu {c.cpu_seconds} s, address space {c.memory_mb} MiB, files "
            f"{c.file_size_mb} MiB) and a wall clock of {c.wall_seconds:g} s with a process-group kill apply."
        )

    def close(self) -> None:
        with self._lock:
            sandboxes, self._sandboxes = list(self._sandboxes), set()
        for s in sandboxes:
            s.close()
        remove_tree(self.home)


class LocalSandbox:
    def __init__(self, backend: LocalBackend, directory: Path, files: Mapping[str, bytes | str]):
        self.backend = backend
        self.directory = make_private_dir(directory)
        self.workspace = self.directory / "workspace"
        self.workspace.mkdir()
        self.workdir = str(self.workspace)
        self.io = make_private_dir(self.directory / "io")
        write_files(self.workspace, files)
        self._lock = threading.Lock()
        self._closed = False

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float | None = None,
            env: Mapping[str, str] | None = None) -> ExecResult:
        c = self.backend.cfg
        limits = ["prlimit", f"--cpu={c.cpu_seconds}", f"--as={c.memory_mb << 20}", f"--fsize={c.file_size_mb << 20}",
                  f"--nofile={c.open_files}", "--core=0", "--"]
        variables = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workspace), "LANG": "C.UTF-8",
                     "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        with self._lock:
            if self._closed:
                raise RuntimeError("sandbox is closed")
            start, timed_out = time.monotonic(), False
            with open(self.io / "stdout", "wb") as out, open(self.io / "stderr", "wb") as err:
                if stdin is not None:
                    (self.io / "stdin").write_bytes(stdin)
                stdin_file = open(self.io / "stdin", "rb") if stdin is not None else subprocess.DEVNULL
                try:
                    proc = subprocess.Popen(limits + list(argv), cwd=self.workspace, stdin=stdin_file, stdout=out,
                                            stderr=err, env=variables, start_new_session=True)
                finally:
                    if stdin is not None:
                        stdin_file.close()
                try:
                    proc.wait(timeout=timeout or c.wall_seconds)
                except subprocess.TimeoutExpired:
                    timed_out = True
                # whatever the command left running in its process group goes with it
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            limit = c.output_kb << 10
            stdout, t1 = read_capped(self.io / "stdout", limit)
            stderr, t2 = read_capped(self.io / "stderr", limit)
            return ExecResult(None if timed_out else proc.returncode, stdout, stderr, timed_out,
                              time.monotonic() - start, t1 or t2)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        remove_tree(self.directory)
        with self.backend._lock:
            self.backend._sandboxes.discard(self)

    def __enter__(self) -> "LocalSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
