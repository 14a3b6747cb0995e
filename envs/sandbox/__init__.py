"""Sandboxes that contain whatever code a model writes: bwrap (here), docker (clusters), and an
unsafe local fallback that must be asked for by name.

    backend = make_backend(SandboxConfig(), toolbox_dir)   # logs the isolation in force
    with backend.create({"pkg/mod.py": "..."}) as sandbox:
        result = sandbox.run(["python3", "-m", "pytest", "-q"])
"""

from __future__ import annotations

import logging
from pathlib import Path

from envs.sandbox.base import ExecResult, Sandbox, SandboxBackend, sweep_stale
from envs.sandbox.config import DockerConfig, SandboxConfig

log = logging.getLogger(__name__)


def make_backend(cfg: SandboxConfig, toolbox_dir: Path, announce: bool = True) -> SandboxBackend:
    """The backend `cfg` asks for; `auto` is bwrap, and without bwrap an error (or, only with
    allow_unsafe, the unsafe local backend). Prints the isolation in force unless told not to."""
    from envs.sandbox.bwrap import BwrapBackend, bwrap_path

    name = cfg.backend
    if name == "auto":
        if bwrap_path() is not None:
            name = "bwrap"
        elif cfg.allow_unsafe:
            name = "unsafe_local"
        else:
            raise RuntimeError(
                "no sandbox available: bubblewrap (bwrap) is not installed. Install it (`apt-get install -y bubblewrap`, "
                "which `make install` does as root), use sandbox.backend: docker on a machine with a Docker engine, or "
                "set sandbox.allow_unsafe: true to run model-written code with NO isolation"
            )
    if name == "bwrap":
        backend: SandboxBackend = BwrapBackend(cfg, toolbox_dir)
    elif name == "docker":
        from envs.sandbox.docker import DockerBackend

        backend = DockerBackend(cfg, toolbox_dir)
    else:
        from envs.sandbox.local import LocalBackend

        backend = LocalBackend(cfg, toolbox_dir)
    if announce:
        message = f"[asymptote] sandbox: {backend.describe()}"
        print(message)
        log.info(message)
    return backend


__all__ = ["DockerConfig", "ExecResult", "Sandbox", "SandboxBackend", "SandboxConfig", "make_backend", "sweep_stale"]
