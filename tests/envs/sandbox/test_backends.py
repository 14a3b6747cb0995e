"""Backend selection, the unsafe local backend, and the docker backend's commands (no Docker
engine runs here: a fake docker CLI records the calls)."""

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from envs.sandbox import SandboxConfig, make_backend
from envs.sandbox.base import owner_name, safe_relative, sweep_stale
from envs.sandbox.docker import LABEL, DockerBackend
from envs.sandbox.local import LocalBackend

TOOLBOX_DIR = Path(__file__).resolve().parents[3] / "envs" / "swe" / "toolbox"


def test_unsafe_local_needs_explicit_consent():
    with pytest.raises(ValueError, match="allow_unsafe"):
        SandboxConfig(backend="unsafe_local")
    with pytest.raises(RuntimeError, match="isolates nothing"):
        LocalBackend(SandboxConfig(), TOOLBOX_DIR)


def test_auto_without_bwrap_refuses_unless_unsafe_is_allowed(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("envs.sandbox.bwrap.bwrap_path", lambda: None)
    with pytest.raises(RuntimeError, match="bubblewrap"):
        make_backend(SandboxConfig(root=str(tmp_path)), TOOLBOX_DIR)
    with pytest.warns(UserWarning, match="UNSAFE"):
        backend = make_backend(SandboxConfig(root=str(tmp_path), allow_unsafe=True), TOOLBOX_DIR)
    try:
        assert backend.name == "unsafe_local"
        assert "NO isolation" in capsys.readouterr().out  # announced at start-up
        with backend.create({"a/b.txt": "hello"}) as s:
            result = s.run(["cat", "a/b.txt"])
            assert result.ok and result.stdout == "hello"
            assert s.run(["sleep", "5"], timeout=0.5).timed_out
    finally:
        backend.close()


def test_workspace_paths_must_stay_inside():
    for bad in ("/etc/passwd", "../x", "a/../../x", ""):
        with pytest.raises(ValueError):
            safe_relative(bad)
    assert str(safe_relative("pkg/mod.py")) == "pkg/mod.py"


def test_sweep_removes_only_directories_of_dead_owners(tmp_path):
    (tmp_path / owner_name()).mkdir()  # this process: alive
    (tmp_path / "run-999999999-1").mkdir()  # no such process
    (tmp_path / "unrelated").mkdir()
    assert sweep_stale(tmp_path) == ["run-999999999-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([owner_name(), "unrelated"])


class FakeDocker:
    """Records docker CLI calls and answers like an engine would."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, capture_output=True, input=None, timeout=None, text=False):
        self.calls.append((argv, input))
        args = argv[1:]
        out = ""
        if args[0] == "version":
            out = "27.1.0\n"
        elif args[0] == "ps":
            out = "abc123 run-999999999-1\n"  # a container of a dead owner
        elif args[0] == "exec" and "timeout" in args:
            out = b"ran\n"
        if not text and isinstance(out, str):
            out = out.encode()
        return subprocess.CompletedProcess(argv, 0, out, b"" if not text else "")


def test_docker_backend_commands(tmp_path):
    fake = FakeDocker()
    backend = DockerBackend(SandboxConfig(backend="docker", processes=50, memory_mb=2048), TOOLBOX_DIR, runner=fake)
    assert ["docker", "rm", "-f", "abc123"] in [c[0] for c in fake.calls]  # the stale container was swept
    sandbox = backend.create({"pkg/mod.py": "x = 1\n"}, image="swebench/sweb.eval.x86_64.a_1776_b-1:latest",
                             workdir="/testbed")
    run = next(c[0] for c in fake.calls if c[0][1] == "run")
    for flag, value in (("--network", "none"), ("--pids-limit", "50"), ("--memory", "2048m"), ("--cap-drop", "ALL"),
                        ("--label", f"{LABEL}={owner_name()}"), ("--workdir", "/testbed")):
        assert run[run.index(flag) + 1] == value
    assert run[-2:] == ["swebench/sweb.eval.x86_64.a_1776_b-1:latest", "infinity"]
    copy = next(c for c in fake.calls if c[0][1] == "cp" and c[0][2] == "-")
    with tarfile.open(fileobj=io.BytesIO(copy[1])) as tar:
        assert tar.extractfile("pkg/mod.py").read() == b"x = 1\n"
    result = sandbox.run(["python3", "-c", "print(1)"], timeout=7)
    assert result.stdout == "ran\n"
    exec_call = fake.calls[-1][0]
    assert exec_call[:5] == ["docker", "exec", "-i", "-w", "/testbed"]
    assert exec_call[6:10] == ["timeout", "-s", "KILL", "7"]
    backend.close()
    assert fake.calls[-1][0] == ["docker", "rm", "-f", sandbox.name]


def test_docker_backend_without_engine_says_so():
    def no_engine(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, "", "Cannot connect to the Docker daemon")

    with pytest.raises(RuntimeError, match="no Docker engine"):
        DockerBackend(SandboxConfig(backend="docker"), TOOLBOX_DIR, runner=no_engine)
