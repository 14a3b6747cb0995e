"""A bwrap backend with small limits, shared by the sandbox tests.

Tests that need bubblewrap FAIL when it is missing (CI installs it with `make install`); set
ASYMPTOTE_ALLOW_NO_BWRAP=1 to skip them instead on a machine where it cannot be installed.
"""

from pathlib import Path

import pytest

from envs.sandbox import SandboxConfig
from envs.sandbox.bwrap import BwrapBackend
from tests.conftest import require_bwrap

TOOLBOX_DIR = Path(__file__).resolve().parents[3] / "envs" / "swe" / "toolbox"

SMALL_LIMITS = SandboxConfig(
    cpu_seconds=3, wall_seconds=20, memory_mb=256, processes=32, file_size_mb=1, tmp_mb=8, output_kb=64
)


@pytest.fixture(scope="session")
def bwrap_available() -> None:
    require_bwrap()


@pytest.fixture(scope="session")
def bwrap_backend(tmp_path_factory):
    require_bwrap()
    cfg = SMALL_LIMITS.model_copy(update={"root": str(tmp_path_factory.mktemp("sandboxes"))})
    backend = BwrapBackend(cfg, TOOLBOX_DIR)
    yield backend
    backend.close()


@pytest.fixture
def sandbox(bwrap_backend):
    with bwrap_backend.create({"hello.txt": "hi\n"}) as s:
        yield s
