"""The docker backend: one container per sandbox, for clusters with a Docker engine.

This is the backend for SWE-bench-format tasks, whose environments are images (the SWE-bench
harness's `sweb.eval.x86_64.<instance>` images hold the repository at /testbed with its
dependencies installed). It is written against the docker CLI and unit-tested on the commands it
issues; no Docker engine runs on the development machine, so it has not run against a live one.

A sandbox is `docker run -d ... sleep infinity` with:
    --network none                 no network at all
    --pids-limit, --memory, --memory-swap, --cpus   limits for the whole container
    --ulimit cpu/fsize/nofile      the same per-process rlimits as bwrap
    --cap-drop ALL, --security-opt no-new-privileges, a size-limited tmpfs at /tmp
    --label asymptote.owner=run-<pid>-<start>   so that a later run removes what a killed one left
Commands run with `docker exec` under coreutils' `timeout -s KILL` (and a host-side timeout that
kills the container if even that fails). Unlike bwrap, a background process a command starts
survives until the container is removed at `close()`. The file tools are copied in with
`docker cp`; a task's own files are streamed in as a tar archive.
"""

from __future__ import annotations

import io
import itertools
import shlex
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable, Mapping

from envs.sandbox.base import ExecResult, owner_alive, owner_name, register_backend, safe_relative
from envs.sandbox.config import SandboxConfig

TOOLBOX_DIR = "/opt/asymptote"
LABEL = "asymptote.owner"
Runner = Callable[..., subprocess.CompletedProcess]


class DockerBackend:
    name = "docker"
    toolbox = f"{TOOLBOX_DIR}/toolbox.py"

    def __init__(self, cfg: SandboxConfig, toolbox_dir: Path, runner: Runner = subprocess.run):
        self.cfg = cfg
        self.exe = cfg.docker.executable
        self.python = cfg.docker.python
        self.toolbox_file = Path(toolbox_dir).resolve() / "toolbox.py"
        self.owner = owner_name()
        self._run = runner
        self._sandboxes: set[DockerSandbox] = set()
        self._lock = threading.Lock()
        self._counter = itertools.count()
        version = self.docker(["version", "--format", "{{.Server.Version}}"], check=False)
        if version.returncode != 0:
            raise RuntimeError(f"no Docker engine answers `{self.exe} version`: {version.stderr.strip()[:500]}")
        self.server_version = version.stdout.strip()
        self.sweep_stale()
        register_backend(self)

    def docker(self, args: list[str], *, check: bool = True, input: bytes | str | None = None,
               timeout: float | None = None) -> subprocess.CompletedProcess:
        result = self._run([self.exe, *args], capture_output=True, input=input, timeout=timeout,
                           text=not isinstance(input, bytes))
        if check and result.returncode != 0:
            err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
            raise RuntimeError(f"`{self.exe} {shlex.join(args[:3])} ...` failed: {err.strip()[:1000]}")
        return result

    def sweep_stale(self) -> list[str]:
        """Remove containers whose owning process is gone."""
        listing = self.docker(["ps", "-a", "--filter", f"label={LABEL}", "--format", f'{{{{.ID}}}} {{{{.Label "{LABEL}"}}}}'],
                              check=False)
        stale = [line.split()[0] for line in listing.stdout.splitlines()
                 if len(line.split()) == 2 and not owner_alive(line.split()[1])]
        if stale:
            self.docker(["rm", "-f", *stale], check=False)
        return stale

    def run_args(self, name: str, image: str, workdir: str) -> list[str]:
        c = self.cfg
        return [
            "run", "-d", "--name", name, "--label", f"{LABEL}={self.owner}", "--network", "none",
            "--pids-limit", str(c.processes), "--memory", f"{c.memory_mb}m", "--memory-swap", f"{c.memory_mb}m",
            "--cpus", f"{c.docker.cpus:g}", "--ulimit", f"cpu={c.cpu_seconds}:{c.cpu_seconds}",
            "--ulimit", f"fsize={c.file_size_mb << 20}:{c.file_size_mb << 20}",
            "--ulimit", f"nofile={c.open_files}:{c.open_files}", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--tmpfs", f"/tmp:rw,size={c.tmp_mb}m", "--workdir", workdir,
            "--entrypoint", "sleep", image, "infinity",
        ]

    def create(self, files: Mapping[str, bytes | str] | None = None, *, image: str | None = None,
               workdir: str | None = None) -> "DockerSandbox":
        image = image or self.cfg.docker.image
        workdir = workdir or "/workspace"
        with self._lock:
            name = f"asymptote-{self.owner}-{next(self._counter)}"
        self.docker(self.run_args(name, image, workdir), timeout=600)
        sandbox = DockerSandbox(self, name, workdir)
        with self._lock:
            self._sandboxes.add(sandbox)
        try:
            self.docker(["exec", "-u", "0", name, "mkdir", "-p", TOOLBOX_DIR, workdir])
            self.docker(["cp", str(self.toolbox_file), f"{name}:{self.toolbox}"])
            self.docker(["cp", str(self.toolbox_file.with_name("pytest_run.py")), f"{name}:{TOOLBOX_DIR}/pytest_run.py"])
            if files:
                self.docker(["cp", "-", f"{name}:{workdir}"], input=_tar(files))
        except Exception:
            sandbox.close()
            raise
        return sandbox

    def describe(self) -> str:
        c = self.cfg
        return (
            f"docker (engine {self.server_version}): one container per sandbox, --network none, --pids-limit "
            f"{c.processes}, --memory {c.memory_mb} MiB, --cpus {c.docker.cpus:g}, ulimits cpu {c.cpu_seconds} s, "
            f"files {c.file_size_mb} MiB, {c.open_files} open files, --cap-drop ALL, no-new-privileges; "
            f"wall clock {c.wall_seconds:g} s per command; containers labelled {LABEL}={self.owner}, removed at exit "
            f"or by the next run"
        )

    def close(self) -> None:
        with self._lock:
            sandboxes, self._sandboxes = list(self._sandboxes), set()
        for s in sandboxes:
            s.close()


class DockerSandbox:
    def __init__(self, backend: DockerBackend, name: str, workdir: str):
        self.backend = backend
        self.name = name
        self.workdir = workdir
        self._lock = threading.Lock()
        self._closed = False

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float | None = None,
            env: Mapping[str, str] | None = None) -> ExecResult:
        b = self.backend
        wall = timeout or b.cfg.wall_seconds
        args = ["exec", "-i", "-w", self.workdir]
        for k, v in (env or {}).items():
            args += ["-e", f"{k}={v}"]
        args += [self.name, "timeout", "-s", "KILL", f"{wall:g}", *argv]
        with self._lock:
            if self._closed:
                raise RuntimeError("sandbox is closed")
            start = time.monotonic()
            try:
                result = b._run([b.exe, *args], capture_output=True, input=stdin or b"", timeout=wall + 30)
            except subprocess.TimeoutExpired:
                b.docker(["kill", self.name], check=False)  # even timeout hung: the sandbox is gone
                self._closed = True
                return ExecResult(None, "", "", True, time.monotonic() - start)
        limit = b.cfg.output_kb << 10
        out, err = result.stdout or b"", result.stderr or b""
        timed_out = result.returncode in (124, 137) and time.monotonic() - start >= wall
        return ExecResult(
            None if timed_out else result.returncode, out[:limit].decode(errors="replace"),
            err[:limit].decode(errors="replace"), timed_out, time.monotonic() - start,
            len(out) > limit or len(err) > limit,
        )

    def close(self) -> None:
        with self._lock:
            if self._closed and self not in self.backend._sandboxes:
                return
            self._closed = True
        self.backend.docker(["rm", "-f", self.name], check=False)
        with self.backend._lock:
            self.backend._sandboxes.discard(self)

    def __enter__(self) -> "DockerSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tar(files: Mapping[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(str(safe_relative(rel)))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
