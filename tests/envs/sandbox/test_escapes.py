"""Each escape attempt of issue 7, one test each, against the bwrap backend: the attempt runs, and
the test shows it was contained (and that the host is left as it was)."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from envs.sandbox.bwrap import uid_pids
from tests.conftest import loopback_server

PY = sys.executable


def host_processes_matching(needle: str) -> list[int]:
    """Live host processes whose command line contains `needle`. Zombies are dead already: a
    process killed with its sandbox is reparented to PID 1, which in a container may never reap it."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if needle in cmdline and state not in ("Z", "X"):
                found.append(int(entry))
    return found


def test_fork_bomb_is_contained(sandbox, bwrap_backend):
    start = time.monotonic()
    result = sandbox.run(["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 2"], timeout=5)
    assert time.monotonic() - start < 15
    # nothing of the bomb survives the command
    assert uid_pids(sandbox.uid) == []
    # and it never got more processes than the limit: count how many children one process can fork
    counter = textwrap.dedent("""
        import os, time
        n = 0
        try:
            while n < 1000:
                if os.fork() == 0:
                    time.sleep(5)
                    os._exit(0)
                n += 1
        except OSError as e:
            print("fork failed:", e.strerror)
        print("forked", n)
    """)
    result = sandbox.run([PY, "-c", counter], timeout=10)
    forked = int(result.stdout.split("forked")[1])
    assert forked < bwrap_backend.cfg.processes
    assert "fork failed" in result.stdout
    assert uid_pids(sandbox.uid) == []


def test_infinite_loop_is_killed_by_the_cpu_limit(sandbox, bwrap_backend):
    start = time.monotonic()
    result = sandbox.run([PY, "-c", "while True: pass"], timeout=15)
    elapsed = time.monotonic() - start
    assert not result.timed_out  # RLIMIT_CPU (3 s) acted before the wall clock (15 s)
    assert result.returncode is not None and result.returncode != 0
    assert elapsed < 12


def test_sleeping_forever_is_killed_by_the_wall_clock(sandbox):
    start = time.monotonic()
    result = sandbox.run(["sleep", "1000"], timeout=1.5)
    assert result.timed_out and result.returncode is None
    assert time.monotonic() - start < 6
    assert uid_pids(sandbox.uid) == []


def test_memory_hog_gets_memory_error(sandbox):
    result = sandbox.run([PY, "-c", "x = bytearray(1 << 30)\nprint('allocated')"])
    assert result.returncode != 0
    assert "MemoryError" in result.stderr
    assert "allocated" not in result.stdout
    # a gradual hog stops at the limit as well
    result = sandbox.run([PY, "-c", "chunks = []\nwhile True: chunks.append(bytearray(16 << 20))"])
    assert result.returncode != 0 and "MemoryError" in result.stderr


def test_huge_file_is_cut_at_the_file_size_limit(sandbox):
    result = sandbox.run(["sh", "-c", "dd if=/dev/zero of=big bs=1M count=200; echo dd-exit=$?"])
    size = (sandbox.workspace / "big").stat().st_size
    assert size <= 1 << 20  # file_size_mb = 1
    assert "File size limit exceeded" in result.stderr or "dd-exit=0" not in result.stdout
    # many files of the maximum size cannot fill the host's memory through /tmp either (tmpfs of 8 MiB)
    result = sandbox.run(["sh", "-c", "for i in $(seq 1 50); do head -c 1000000 /dev/zero > /tmp/f$i || exit 7; done"])
    assert result.returncode == 7 and "No space left" in result.stderr


def test_network_connection_to_the_hosts_loopback_fails(sandbox):
    with loopback_server() as (port, accepted):  # the host itself reaches it (so the test would notice)
        probe = f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('CONNECTED')\n" \
                f"except OSError as e:\n    print('refused:', e)"
        result = sandbox.run([PY, "-c", probe])
        assert "CONNECTED" not in result.stdout
        assert "refused" in result.stdout
        time.sleep(0.3)
        assert len(accepted) == 1  # the sandbox's attempt never arrived


def test_writing_outside_the_workspace_fails(sandbox, tmp_path):
    target = tmp_path / "written-by-sandbox"
    attempts = [str(target), "/usr/pwned", "/etc/pwned", "/opt/asymptote/pwned", "/pwned", "/workspace/../pwned",
                "/proc/sys/kernel/pwned", f"{sandbox.directory}/pwned"]
    script = "; ".join(f"(echo x > {p}) 2>/dev/null && echo WROTE {p}" for p in attempts) + "; echo done"
    result = sandbox.run(["sh", "-c", script])
    assert result.stdout.strip() == "done", result.stdout
    assert not target.exists()
    assert not (sandbox.directory / "pwned").exists()
    for host_path in ("/usr/pwned", "/etc/pwned", "/pwned"):
        assert not os.path.exists(host_path)


def test_reading_a_file_planted_outside_the_workspace_fails(sandbox, bwrap_backend, monkeypatch):
    secret = "TOPSECRET-" + os.urandom(8).hex()
    beside = sandbox.directory / "planted-secret.txt"  # right next to the workspace on the host
    beside.write_text(secret)
    in_root = bwrap_backend.root / "planted-secret.txt"
    in_root.write_text(secret)
    repo_file = Path(__file__).resolve()  # the repository with the hidden tests is not visible either
    monkeypatch.setenv("ASYMPTOTE_PLANTED_SECRET", secret)  # nor the trainer's environment
    with bwrap_backend.create({}) as fresh:  # a sandbox started after the variable was set
        script = (
            f"cat {beside} {in_root} {repo_file} /etc/shadow /root/.bash_history 2>&1; env; "
            f"cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; grep -rs {secret[:12]} / --exclude-dir=proc --exclude-dir=usr; echo end"
        )
        result = fresh.run(["sh", "-c", script], timeout=20)
    assert secret not in result.stdout + result.stderr
    assert "end" in result.stdout
    assert "No such file" in result.stdout


def test_background_process_does_not_outlive_its_command(sandbox):
    marker = f"{317 + os.getpid() % 1000}.5"  # a unique sleep duration to look for on the host
    result = sandbox.run(["sh", "-c", f"sleep {marker} & setsid sleep {marker} & nohup sleep {marker} >/dev/null 2>&1 & "
                                      f"{PY} -c 'import os; os.fork() or os.setsid() or os.execvp(\"sleep\", [\"sleep\", \"{marker}\"])'; "
                                      "echo started"])
    assert result.ok and "started" in result.stdout
    time.sleep(0.2)
    assert host_processes_matching(f"sleep {marker}") == []
    assert uid_pids(sandbox.uid) == []


def test_concurrent_sandboxes_do_not_see_each_other(bwrap_backend):
    a, b = bwrap_backend.create({"who.txt": "a"}), bwrap_backend.create({"who.txt": "b"})
    try:
        assert a.uid != b.uid
        script = textwrap.dedent("""
            import os, sys, time
            other = sys.argv[1]
            open("mark", "w").write(open("who.txt").read())
            time.sleep(1.0)   # both run at once
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            seen = []
            for path in (other, os.path.dirname(other), "/" + os.path.basename(os.path.dirname(other))):
                try:
                    seen.append(open(os.path.join(path, "who.txt")).read())
                except OSError:
                    pass
            print("who", open("who.txt").read(), "procs", len(pids), "seen", seen, "uid", os.getuid())
        """)
        results = {}

        def go(name, s, other):
            results[name] = s.run([PY, "-c", script, str(other.workspace)])

        threads = [threading.Thread(target=go, args=("a", a, b)), threading.Thread(target=go, args=("b", b, a))]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert time.monotonic() - start < 10
        for name in ("a", "b"):
            out = results[name].stdout
            assert f"who {name}" in out and "seen []" in out, out
            assert int(out.split("procs")[1].split()[0]) <= 3  # its own processes only (pid namespace)
        assert (a.workspace / "mark").read_text() == "a" and (b.workspace / "mark").read_text() == "b"
    finally:
        a.close()
        b.close()


def test_sandboxes_die_and_are_swept_when_the_trainer_is_killed(tmp_path, bwrap_available):
    root = tmp_path / "root"
    marker = f"{421 + os.getpid() % 1000}.25"
    trainer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from pathlib import Path
        from envs.sandbox import SandboxConfig
        from envs.sandbox.bwrap import BwrapBackend
        backend = BwrapBackend(SandboxConfig(root={str(root)!r}, wall_seconds=100), Path({str(Path(__file__).resolve().parents[3] / "envs/swe/toolbox")!r}))
        sandbox = backend.create({{"f.txt": "x"}})
        print(sandbox.uid, flush=True)
        sandbox.run(["sh", "-c", "sleep {marker} & sleep {marker}"])
    """)
    proc = subprocess.Popen([sys.executable, "-c", trainer], stdout=subprocess.PIPE, text=True)
    uid = int(proc.stdout.readline())
    deadline = time.monotonic() + 10
    while not host_processes_matching(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes_matching(f"sleep {marker}")
    # bwrap's init in the pid namespace sets its own parent-death signal only after it has started
    # the command (bubblewrap do_init): on a loaded machine that can come after the sleeps appear,
    # and a kill inside that window leaves the sandbox to the sweep below. Give it time first.
    time.sleep(1.0)
    proc.kill()  # SIGKILL: no handler, no atexit
    proc.wait()
    deadline = time.monotonic() + 15  # a loaded CI box may take seconds to tear a namespace down
    while (host_processes_matching(f"sleep {marker}") or uid_pids(uid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = host_processes_matching(f"sleep {marker}")
    assert left == [] and uid_pids(uid) == [], subprocess.run(["ps", "-o", "pid,ppid,uid,stat,cmd", "-p", ",".join(map(str, left))], capture_output=True, text=True).stdout[:3000]
    leftovers = [p.name for p in root.iterdir() if p.name.startswith("run-")]
    assert len(leftovers) == 1  # the killed run's workspaces are still on disk ...
    from envs.sandbox import sweep_stale

    assert sweep_stale(root) == leftovers  # ... until the next run sweeps them
    assert not any(p.name.startswith("run-") for p in root.iterdir())


def test_sigterm_closes_the_sandboxes(tmp_path, bwrap_available):
    root = tmp_path / "root"
    trainer = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
        from pathlib import Path
        from envs.sandbox import SandboxConfig
        from envs.sandbox.bwrap import BwrapBackend
        backend = BwrapBackend(SandboxConfig(root={str(root)!r}), Path({str(Path(__file__).resolve().parents[3] / "envs/swe/toolbox")!r}))
        sandbox = backend.create({{"f.txt": "x"}})
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", trainer], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert any(p.name.startswith("run-") for p in root.iterdir())
    proc.terminate()
    assert proc.wait(timeout=10) == 128 + 15
    assert not any(p.name.startswith("run-") for p in root.iterdir())
