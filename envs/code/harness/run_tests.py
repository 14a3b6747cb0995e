"""Runs a candidate solution against unit tests, inside the sandbox (stdlib only).

stdin: one JSON object {"secret", "solution", "tests": [test source, ...], "timeout"}.
Each test runs in a fresh interpreter as `solution + test + print(token)`, with its own wall-clock
limit; it passes when that interpreter exits 0 and its last output line is a token drawn here per
test (so `os._exit(0)` or `sys.exit()` in the solution does not pass). The outcome is printed as one
line `<secret> <json>`, the secret coming from stdin, which the tests never see.
"""

import json
import os
import secrets
import subprocess
import sys


def main():
    job = json.loads(sys.stdin.read())
    secret, solution, tests, timeout = job["secret"], job["solution"], job["tests"], float(job["timeout"])
    out = {"passed": [], "status": "ok", "error": ""}
    try:
        compile(solution, "<solution>", "exec")
    except (SyntaxError, ValueError) as e:
        out.update(status="syntax_error", error=f"{type(e).__name__}: {e}", passed=[False] * len(tests))
        print(secret, json.dumps(out), flush=True)
        return
    timeouts = 0
    for i, test in enumerate(tests):
        token = secrets.token_hex(16)
        source = f"{solution}\n\n{test}\nprint({token!r})\n"
        path = f"/tmp/test_{i}.py"
        with open(path, "w") as f:
            f.write(source)
        os.chmod(path, 0o600)
        try:
            r = subprocess.run([sys.executable, "-I", path], capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            lines = r.stdout.strip().splitlines()
            ok = r.returncode == 0 and bool(lines) and lines[-1] == token
            if not ok and not out["error"]:
                out["error"] = f"test {i}: " + (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:300]
        except subprocess.TimeoutExpired:
            ok = False
            timeouts += 1
            if not out["error"]:
                out["error"] = f"test {i}: timed out after {timeout:g} s"
        finally:
            try:
                os.remove(path)
            except OSError:
                pass
        out["passed"].append(ok)
    if timeouts:
        out["status"] = "timeout"
    print(secret, json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
