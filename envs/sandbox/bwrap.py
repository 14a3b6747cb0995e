"""The bubblewrap backend: Linux namespaces, a per-sandbox uid, rlimits and cgroups.

Each command runs as

    sh (joins the command's cgroup) -> prlimit (rlimits) -> bwrap (namespaces, mounts)
        -> setpriv (per-sandbox uid, no capabilities, no_new_privs) -> the command

- bwrap gives new mount, pid, network, ipc and uts namespaces. The filesystem is an empty tmpfs
  with, read-only: /usr (and the /bin, /lib symlinks), the Python installation, a few /etc files
  (the dynamic linker's cache, and a passwd naming only root and the sandbox user); read-write:
  the workspace at /workspace and a private size-limited tmpfs at /tmp. Nothing else of the host
  (home directories, other workspaces, the repository, /etc/shadow, environment variables) exists
  inside. The network namespace has only its own loopback: no route to the host or anywhere.
  `--die-with-parent` kills the sandbox when the process that started it dies (trainer killed
  with SIGKILL included), and when the command exits the pid namespace's init exits, which kills
  every process the command left behind.
- setpriv drops to a uid of its own (uid_base + n, locked per live sandbox), with no capabilities
  and no_new_privs, so RLIMIT_NPROC counts this sandbox's processes only (root is exempt from
  it) and no file of the host belongs to it.
- As root bwrap runs without a user namespace (the uid change needs a real uid); as a normal
  user it uses one (`--unshare-user`), there is no uid change and no process limit unless a
  cgroup is available.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Mapping

from envs.sandbox.base import (
    ExecResult,
    kill_until_gone,
    make_private_dir,
    owner_name,
    read_capped,
    register_backend,
    remove_tree,
    sandbox_root,
    sweep_stale,
    write_files,
)
from envs.sandbox.cgroup import PREFIX as CGROUP_PREFIX
from envs.sandbox.cgroup import Cgroups, sweep_stale_cgroups
from envs.sandbox.config import SandboxConfig

WORKDIR = "/workspace"
TOOLBOX_DIR = "/opt/asymptote"
# The first process of every command: `setpriv --pdeathsig KILL` makes it (and, through exec,
# bwrap) die with the thread that started it, from the first instruction on (bwrap's own
# --die-with-parent is set a little later, and a trainer killed in between would leave the
# sandbox running); the shell then checks that its parent has not died already, joins the
# command's cgroups and execs prlimit -> bwrap.
_LAUNCHER = (
    'read -r _ _ _ ppid _ < /proc/$$/stat; [ "$ppid" = "$ASYMPTOTE_PARENT" ] || exit 125; '
    'for d in $ASYMPTOTE_CG; do echo $$ > "$d/cgroup.procs" || exit 125; done; exec "$@"'
)
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def bwrap_version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown version"
    return out.strip() or "unknown version"


class UidPool:
    """Unprivileged uids, one per live sandbox, locked with flock in `lock_dir` so that any
    number of processes on the host never hand out the same one (locks die with their process)."""

    def __init__(self, lock_dir: Path, base: int, count: int):
        self.lock_dir = make_private_dir(lock_dir)
        self.base, self.count = base, count

    def acquire(self) -> tuple[int, int]:
        """(uid, fd of its held lock)."""
        start = random.randrange(self.count)
        for i in range(self.count):
            uid = self.base + (start + i) % self.count
            fd = os.open(self.lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            kill_uid(uid)  # nothing of a previous holder may survive (defence in depth)
            return uid, fd
        raise RuntimeError(f"all {self.count} sandbox uids from {self.base} are in use; raise sandbox.uid_count")


def kill_uid(uid: int) -> int:
    """SIGKILL every process whose real uid is `uid`; returns how many were found."""
    return kill_until_gone(lambda: uid_pids(uid), rounds=20)


def uid_pids(uid: int) -> list[int]:
    """Live processes running as `uid` (zombies are dead already: a container's PID 1 may never
    reap what a killed sandbox leaves)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return pids


class BwrapBackend:
    name = "bwrap"
    toolbox = f"{TOOLBOX_DIR}/toolbox.py"

    def __init__(self, cfg: SandboxConfig, toolbox_dir: Path):
        path = bwrap_path()
        if path is None:
            raise RuntimeError("bubblewrap is not installed (apt-get install -y bubblewrap, or `make install` as root)")
        self.cfg = cfg
        self.bwrap = path
        self.version = bwrap_version(path)
        self.privileged = os.geteuid() == 0
        self.python = sys.executable
        self.toolbox_dir = Path(toolbox_dir).resolve()
        self.root = sandbox_root(cfg.root)
        make_private_dir(self.root, 0o711)
        sweep_stale(self.root)
        self.home = make_private_dir(self.root / owner_name())
        self.uids = UidPool(self.root / "uids", cfg.uid_base, cfg.uid_count) if self.privileged else None
        self.cgroups = Cgroups.detect() if cfg.cgroup == "auto" else None
        if self.cgroups is not None:
            sweep_stale_cgroups(self.cgroups)
        self._static = self._static_args()
        self._sandboxes: set[BwrapSandbox] = set()
        self._lock = threading.Lock()
        self._counter = itertools.count()
        register_backend(self)
        self.verified = self._verify()

    # ------------------------------------------------------------------------------------------

    def create(self, files: Mapping[str, bytes | str] | None = None, *, image: str | None = None,
               workdir: str | None = None) -> "BwrapSandbox":
        if image is not None:
            raise ValueError(f"the bwrap backend runs on the host's files; image {image!r} needs the docker backend")
        if workdir not in (None, WORKDIR):
            raise ValueError(f"the bwrap backend's workspace is always {WORKDIR}")
        with self._lock:
            name = f"sbx-{next(self._counter)}"
        sandbox = BwrapSandbox(self, self.home / name, files or {})
        with self._lock:
            self._sandboxes.add(sandbox)
        return sandbox

    def close(self) -> None:
        with self._lock:
            sandboxes, self._sandboxes = list(self._sandboxes), set()
        for s in sandboxes:
            s.close()
        remove_tree(self.home)

    def describe(self) -> str:
        c = self.cfg
        who = (
            f"as uid {c.uid_base}+n (one per live sandbox), no capabilities, no_new_privs"
            if self.privileged else "in a user namespace as the calling user (not root: no per-sandbox uid)"
        )
        nproc = f"{c.processes} processes (RLIMIT_NPROC of the sandbox uid)" if self.privileged else "no RLIMIT_NPROC"
        return (
            f"bubblewrap ({self.version}, {self.bwrap}): new mount, pid, network, ipc and uts namespaces; "
            f"network: {self.verified.get('network', '?')}; filesystem: read-only /usr and Python "
            f"({sys.base_prefix}), private /tmp tmpfs of {c.tmp_mb} MiB, writable {WORKDIR} only, nothing else of "
            f"the host; commands run {who}; rlimits per process: cpu {c.cpu_seconds} s, address space "
            f"{c.memory_mb} MiB, {nproc}, files {c.file_size_mb} MiB, {c.open_files} open files; "
            + (self.cgroups.describe() + f": {c.memory_mb} MiB and {c.processes} pids per command; "
               if self.cgroups else "no cgroup (rlimits only): memory is bounded per process, not per sandbox; ")
            + f"wall clock {c.wall_seconds:g} s per command, then the process group and namespace are killed; "
            f"--die-with-parent; workspaces under {self.root}, swept when their process is gone"
        )

    # ------------------------------------------------------------------------------------------

    def _static_args(self) -> list[str]:
        args = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        if not self.privileged:
            args += ["--unshare-user", "--disable-userns"]
        args += ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
        for d in ("/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin"):
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for name in _ETC_FILES:
            if os.path.exists(f"/etc/{name}"):
                args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        # the private /tmp first: bwrap mounts in order, so a Python prefix under /tmp (a venv made
        # there) bound before it would be hidden by it
        args += ["--dev", "/dev", "--proc", "/proc",
                 "--size", str(self.cfg.tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp"]
        made: set[str] = {"/", "/usr", "/etc", "/dev", "/proc", "/tmp"}
        for prefix in sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}):
            if prefix.startswith("/usr/"):
                continue
            args += _ancestors(prefix, made) + ["--ro-bind", prefix, prefix]
        args += _ancestors(TOOLBOX_DIR, made) + ["--ro-bind", str(self.toolbox_dir), TOOLBOX_DIR]
        return args

    def _verify(self) -> dict[str, str]:
        """Run a probe in a throwaway sandbox: the network must be cut and the uid not root."""
        probe = (
            "import os, json\n"
            "ifaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]]\n"
            "print(json.dumps({'uid': os.getuid(), 'ifaces': ifaces, 'root_visible': os.path.exists('/root/.ssh')}))\n"
        )
        sandbox = self.create({})
        try:
            result = sandbox.run([self.python, "-I", "-c", probe], timeout=30)
        finally:
            sandbox.close()
        if not result.ok:
            raise RuntimeError(f"bubblewrap does not work on this machine: {result.output.strip()[:2000]}")
        import json

        facts = json.loads(result.stdout.strip().splitlines()[-1])
        if facts["ifaces"] != ["lo"]:
            raise RuntimeError(f"the sandbox's network namespace has interfaces {facts['ifaces']}, expected only lo")
        if self.privileged and facts["uid"] == 0:
            raise RuntimeError("the sandbox runs as root: setpriv did not drop the uid")
        return {"network": "cut (verified: only a private loopback)", "uid": str(facts["uid"])}


def _ancestors(path: str, made: set[str]) -> list[str]:
    """--dir for each missing ancestor of `path`, world-traversable (bwrap makes them 0700)."""
    args = []
    parts = Path(path).parts
    for i in range(2, len(parts)):
        d = str(Path(*parts[:i]))
        if d not in made:
            made.add(d)
            args += ["--perms", "0755", "--dir", d]
    return args


class BwrapSandbox:
    workdir = WORKDIR

    def __init__(self, backend: BwrapBackend, directory: Path, files: Mapping[str, bytes | str]):
        self.backend = backend
        self.directory = make_private_dir(directory)
        self.workspace = self.directory / "workspace"
        self.io = make_private_dir(self.directory / "io")
        self.uid, self._uid_lock = backend.uids.acquire() if backend.uids else (os.getuid(), None)
        self._lock = threading.Lock()
        self._closed = False
        self.workspace.mkdir()
        write_files(self.workspace, files)
        etc = make_private_dir(self.directory / "etc", 0o755)
        (etc / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nsandbox:x:{self.uid}:{self.uid}::/tmp:/bin/sh\n")
        (etc / "group").write_text(f"root:x:0:\nsandbox:x:{self.uid}:\n")
        if backend.privileged:
            for dirpath, dirnames, filenames in os.walk(self.workspace):
                for n in [dirpath] + [os.path.join(dirpath, x) for x in dirnames + filenames]:
                    os.lchown(n, self.uid, self.uid)

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout: float | None = None,
            env: Mapping[str, str] | None = None) -> ExecResult:
        if not argv:
            raise ValueError("empty command")
        with self._lock:
            if self._closed:
                raise RuntimeError("sandbox is closed")
            return self._run(list(argv), stdin, timeout or self.backend.cfg.wall_seconds, env or {})

    def _run(self, argv: list[str], stdin: bytes | None, timeout: float, env: Mapping[str, str]) -> ExecResult:
        b, c = self.backend, self.backend.cfg
        command = list(b._static)
        command += ["--bind", str(self.workspace), WORKDIR, "--chdir", WORKDIR,
                    "--ro-bind", str(self.directory / "etc" / "passwd"), "/etc/passwd",
                    "--ro-bind", str(self.directory / "etc" / "group"), "/etc/group", "--clearenv"]
        variables = {
            "PATH": f"{os.path.dirname(b.python)}:/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
            "USER": "sandbox", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", **env,
        }
        for k, v in variables.items():
            command += ["--setenv", k, v]
        command.append("--")
        if b.privileged:
            command += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        command += argv
        limits = ["prlimit", f"--cpu={c.cpu_seconds}", f"--as={c.memory_mb << 20}", f"--fsize={c.file_size_mb << 20}",
                  f"--nofile={c.open_files}", "--core=0"]
        if b.privileged:
            limits.append(f"--nproc={c.processes}")
        command = limits + ["--"] + command

        group = None
        host_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ASYMPTOTE_PARENT": str(os.getpid())}
        if b.cgroups is not None:
            group = b.cgroups.create(f"{CGROUP_PREFIX}{owner_name()}-{self.directory.name}-{time.monotonic_ns()}",
                                     c.memory_mb << 20, c.processes)
            host_env["ASYMPTOTE_CG"] = " ".join(str(d) for d in group.dirs)
        command = ["setpriv", "--pdeathsig", "KILL", "--", "/bin/sh", "-c", _LAUNCHER, "sh"] + command

        out_path, err_path = self.io / "stdout", self.io / "stderr"
        start = time.monotonic()
        timed_out = False
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                stdin_file = subprocess.DEVNULL
                if stdin is not None:
                    (self.io / "stdin").write_bytes(stdin)
                    stdin_file = open(self.io / "stdin", "rb")
                try:
                    proc = subprocess.Popen(command, stdin=stdin_file, stdout=out, stderr=err, env=host_env,
                                            start_new_session=True, close_fds=True)
                finally:
                    if stdin is not None:
                        stdin_file.close()
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _kill_group(proc)
                    if group is not None:
                        group.kill_all()
                    proc.wait()
        finally:
            if group is not None:
                group.remove()
        duration = time.monotonic() - start
        limit = c.output_kb << 10
        stdout, t1 = read_capped(out_path, limit)
        stderr, t2 = read_capped(err_path, limit)
        code = None if timed_out else proc.returncode
        return ExecResult(returncode=code, stdout=stdout, stderr=stderr, timed_out=timed_out, duration=duration,
                          truncated=t1 or t2)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._uid_lock is not None:
            kill_uid(self.uid)
            os.close(self._uid_lock)
        remove_tree(self.directory)
        with self.backend._lock:
            self.backend._sandboxes.discard(self)

    def __enter__(self) -> "BwrapSandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command's process group: bwrap dies, and --die-with-parent takes the namespace."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
