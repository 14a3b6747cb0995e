"""The sandbox's recipe section: which backend, and the limits every command runs under."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from envs.schema import Config


class DockerConfig(Config):
    """The docker backend (clusters with a Docker engine; SWE-bench images)."""

    image: str = "python:3.11-slim"
    """Image for tasks that bring their files (generated tasks); SWE-bench tasks name their own image."""
    python: str = "python3"
    """The interpreter inside the container that runs the file tools (stdlib only, Python >= 3.6)."""
    cpus: float = Field(1.0, gt=0.0)
    """`docker run --cpus`: the container's share of CPU cores."""
    executable: str = "docker"
    """The docker client (or a compatible one, e.g. podman)."""


class SandboxConfig(Config):
    """Where untrusted commands run and the limits on each of them.

    Backends, strongest first:
    - bwrap: bubblewrap namespaces (mount, pid, network, ipc, uts) with a read-only view of the
      system, a private writable workspace, a per-sandbox unprivileged uid, rlimits and (when the
      machine lets us create cgroups) a memory and pids cgroup. Needs `bwrap` and root.
    - docker: one container per sandbox with --network none, --pids-limit, --memory, ulimits.
    - unsafe_local: a plain subprocess in a temporary directory with rlimits. It isolates
      NOTHING (the command can read and write every file the trainer can and reach the network);
      it is refused unless allow_unsafe is true.
    """

    backend: Literal["auto", "bwrap", "docker", "unsafe_local"] = "auto"
    """auto: bwrap when it is installed and works, else an error (or unsafe_local with allow_unsafe)."""
    allow_unsafe: bool = False
    """Permit the unsafe_local backend, which isolates nothing. For debugging on machines
    without bubblewrap only."""
    cpu_seconds: int = Field(30, ge=1)
    """RLIMIT_CPU of every process in the sandbox (SIGKILL past it)."""
    wall_seconds: float = Field(60.0, gt=0.0)
    """Default wall-clock limit of one command; the whole process tree is killed past it."""
    memory_mb: int = Field(1024, ge=16)
    """RLIMIT_AS (address space) of every process, and the memory limit of the sandbox's cgroup
    when cgroups are available (then it bounds all its processes together)."""
    processes: int = Field(64, ge=4)
    """Processes and threads the sandbox may run at once (RLIMIT_NPROC of its own uid, and
    pids.max of its cgroup when available)."""
    file_size_mb: int = Field(16, ge=1)
    """RLIMIT_FSIZE: the largest file a process may write (SIGXFSZ past it)."""
    open_files: int = Field(256, ge=16)
    """RLIMIT_NOFILE."""
    tmp_mb: int = Field(64, ge=1)
    """Size of the sandbox's private /tmp (a tmpfs)."""
    output_kb: int = Field(256, ge=1)
    """stdout and stderr kept per command (each); the rest is dropped and the result says so."""
    root: str | None = None
    """Directory for workspaces (one subdirectory per process, swept when its process is gone).
    None: $ASYMPTOTE_SANDBOX_ROOT or /tmp/asymptote-sandboxes."""
    uid_base: int = Field(200000, ge=1000)
    """Sandboxes run as uids uid_base .. uid_base + uid_count - 1, one per live sandbox (locked
    with flock so that concurrent trainers never share one); these uids own nothing on the host."""
    uid_count: int = Field(4096, ge=1)
    cgroup: Literal["auto", "off"] = "auto"
    """auto: put each command in its own memory and pids cgroup, nested under this process's
    cgroup, when the cgroup filesystem is writable (v1 or delegated v2); off: rlimits only."""
    docker: DockerConfig = DockerConfig()

    @model_validator(mode="after")
    def _unsafe_needs_consent(self) -> "SandboxConfig":
        if self.backend == "unsafe_local" and not self.allow_unsafe:
            raise ValueError(
                "backend 'unsafe_local' runs model-written code with no isolation at all; set allow_unsafe: true to "
                "accept that, or use 'bwrap' (apt-get install bubblewrap) or 'docker'"
            )
        return self
