"""SWE tasks in the SWE-bench instance format, stored as JSONL; and the SWE-bench loader.

A task is a SWE-bench instance (`instance_id`, `repo`, `base_commit`, `problem_statement`, `patch`
(the gold fix), `test_patch` (the hidden tests), `FAIL_TO_PASS`, `PASS_TO_PASS`) plus how to get
its environment:

- generated tasks (envs/swe/generate.py) carry their repository as `files` (the buggy library with
  the failing tests taken out), the `hidden_tests` written over the workspace for grading, and the
  `editable` paths the grader takes from the agent's workspace; they run under any backend;
- SWE-bench tasks name a Docker `image` holding the repository at `workdir` (/testbed), and run
  under the docker backend only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envs.base import jsonl_objects

SWEBENCH_FIELDS = ("instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch", "FAIL_TO_PASS",
                   "PASS_TO_PASS")
SWEBENCH_IMAGE = "swebench/sweb.eval.x86_64.{id}:latest"
# the SWE-bench images' test environment (conda env `testbed`), as the harness's eval script activates it
SWEBENCH_ACTIVATE = "source /opt/miniconda3/bin/activate && conda activate testbed"
_NON_TEST_EXTS = (".json", ".png", ".csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml")


@dataclass(frozen=True)
class SWETask:
    instance_id: str
    repo: str
    problem_statement: str
    FAIL_TO_PASS: tuple[str, ...]
    PASS_TO_PASS: tuple[str, ...]
    patch: str
    """The gold patch: a unified diff that fixes the issue."""
    test_patch: str = ""
    """The hidden tests as a unified diff (for generated tasks: the test files, added)."""
    base_commit: str = ""
    test_command: tuple[str, ...] = ()
    """argv of the hidden test run in the workspace; "{python}" stands for the sandbox's interpreter."""
    files: dict[str, str] = field(default_factory=dict)
    """Generated tasks: the workspace at the start of an episode (relative path -> text)."""
    hidden_tests: dict[str, str] = field(default_factory=dict)
    """Generated tasks: test files written over the workspace before the hidden test run."""
    editable: tuple[str, ...] = ()
    """Generated tasks: path prefixes whose files the grader takes from the agent's workspace (the
    library's package); everything else (tests, conftest.py, config files) comes from the task."""
    image: str | None = None
    """SWE-bench tasks: the Docker image with the repository and its environment."""
    workdir: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_docker(self) -> bool:
        return self.image is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SWETask":
        d = dict(d)
        for key in ("FAIL_TO_PASS", "PASS_TO_PASS", "test_command", "editable"):
            d[key] = tuple(d.get(key) or ())
        return cls(**d)


def save_tasks(path: Path, tasks: list[SWETask]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(t.to_json() + "\n" for t in tasks))
    tmp.replace(path)


def load_tasks(path: Path) -> list[SWETask]:
    return [SWETask.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# SWE-bench
# --------------------------------------------------------------------------------------------


def _test_list(value: Any, key: str = "FAIL_TO_PASS", instance_id: str = "?") -> tuple[str, ...]:
    """FAIL_TO_PASS / PASS_TO_PASS: a list, or (as on the Hugging Face hub) a JSON string of one."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            value = None
    if value is None or not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"SWE-bench instance {instance_id}: {key} must be a list of test ids or a JSON-encoded list "
                         "of them (as in the Hugging Face dataset)")
    return tuple(value)


def test_files(test_patch: str) -> list[str]:
    """The test files a test patch touches (the harness's test directives for pytest repos)."""
    files = re.findall(r"^diff --git a/.* b/(.*)$", test_patch, flags=re.M)
    return [f for f in files if not f.endswith(_NON_TEST_EXTS)]


def swebench_image(instance_id: str) -> str:
    """The SWE-bench harness's instance image name ("__" is spelt "_1776_" in image names)."""
    return SWEBENCH_IMAGE.format(id=instance_id.lower().replace("__", "_1776_"))


def swebench_task(instance: dict[str, Any]) -> SWETask:
    """One SWE-bench instance as a task for the docker backend.

    The test command is `pytest -rA <files of the test patch>` in the image's conda environment,
    unless the instance gives its own `test_cmd` (the harness keeps per-repository commands in
    MAP_REPO_VERSION_TO_SPECS: Django's runtests.py, sympy's bin/test; copy those in for such
    repositories, since only pytest-style logs are parsed here)."""
    if not isinstance(instance, dict):
        raise ValueError(f"a SWE-bench instance must be a JSON object, not {type(instance).__name__}")
    missing = [k for k in SWEBENCH_FIELDS if k not in instance]
    if missing:
        raise ValueError(f"SWE-bench instance {instance.get('instance_id', '?')} lacks {', '.join(missing)} (an "
                         f"instance needs {', '.join(SWEBENCH_FIELDS)})")
    f2p = _test_list(instance["FAIL_TO_PASS"], "FAIL_TO_PASS", instance["instance_id"])
    p2p = _test_list(instance["PASS_TO_PASS"], "PASS_TO_PASS", instance["instance_id"])
    if not f2p:
        raise ValueError(f"SWE-bench instance {instance['instance_id']}: FAIL_TO_PASS is empty (nothing to fix)")
    directives = " ".join(test_files(instance["test_patch"]))
    test_cmd = instance.get("test_cmd") or "pytest -rA -p no:cacheprovider"
    return SWETask(
        instance_id=instance["instance_id"],
        repo=instance["repo"],
        base_commit=instance["base_commit"],
        problem_statement=instance["problem_statement"],
        patch=instance["patch"],
        test_patch=instance["test_patch"],
        FAIL_TO_PASS=f2p,
        PASS_TO_PASS=p2p,
        test_command=("bash", "-c", f"{SWEBENCH_ACTIVATE} && {test_cmd} {directives}"),
        image=instance.get("image_name") or swebench_image(instance["instance_id"]),
        workdir="/testbed",
        meta={"source": "swebench", "version": instance.get("version")},
    )


def load_swebench(path: str | Path) -> list[SWETask]:
    """SWE-bench-format instances from a .json file (a list) or a .jsonl file (one per line), e.g.
    an export of princeton-nlp/SWE-bench_Verified or SWE-Gym; run them with sandbox.backend: docker.
    A malformed instance fails with the file, the line (or index) and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"swebench_path {str(path)!r} is not a file (a .json list or .jsonl of instances)")
    rows: list[tuple[str, Any]] = []
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        data = data if isinstance(data, list) else [data]
        rows = [(f"{path}[{i}]", r) for i, r in enumerate(data)]
    else:
        rows = [(where, row) for where, _, row in jsonl_objects(path)]
    if not rows:
        raise ValueError(f"{path}: no SWE-bench instances in it")
    tasks, seen = [], {}
    for where, row in rows:
        try:
            task = swebench_task(row)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if task.instance_id in seen:
            raise ValueError(f"{where}: instance {task.instance_id} appears twice (first at {seen[task.instance_id]})")
        seen[task.instance_id] = where
        tasks.append(task)
    return tasks
