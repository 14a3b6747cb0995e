"""The SWE-bench route: the loader of SWE-bench-format instances (as exported from the Hugging
Face datasets, FAIL_TO_PASS a JSON-encoded string there), its errors, and
the harness's grading steps run for real on a small git repository in a bubblewrap sandbox (the
docker backend runs the same steps in the instance's image; no Docker engine runs here)."""

import dataclasses
import json
import sys

import pytest

from envs.swe import tasks as T
from envs.swe.runtime import collect_changes, grade_repository, repository_changes, unified_diff

BUGGY = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
FIXED = BUGGY.replace("a - b", "a + b")
OLD_TESTS = "from calc.ops import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
NEW_TESTS = OLD_TESTS.replace("from calc.ops import mul", "from calc.ops import add, mul") + \
    "\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def instance(**over):
    row = {
        "instance_id": "calc__calc-1", "repo": "calc/calc", "base_commit": "0" * 40, "version": "1.0",
        "problem_statement": "add subtracts", "created_at": "2024-01-01", "hints_text": "",
        "patch": unified_diff({"calc/ops.py": BUGGY}, {"calc/ops.py": FIXED}),
        "test_patch": unified_diff({"tests/test_ops.py": OLD_TESTS, "tests/data.json": "{}"},
                                   {"tests/test_ops.py": NEW_TESTS, "tests/data.json": "[]"}),
        "FAIL_TO_PASS": json.dumps(["tests/test_ops.py::test_add"]),  # a JSON string, as on the hub
        "PASS_TO_PASS": json.dumps(["tests/test_ops.py::test_mul"]),
    }
    row.update(over)
    return row


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_loader_reads_the_hub_format(tmp_path):
    rows = [instance(), instance(instance_id="django__django-11099", FAIL_TO_PASS=["a::b"], PASS_TO_PASS=[],
                                 image_name="my/image:1", test_cmd="./tests/runtests.py")]
    tasks = T.load_swebench(write_jsonl(tmp_path / "instances.jsonl", rows))
    a, b = tasks
    assert a.FAIL_TO_PASS == ("tests/test_ops.py::test_add",) and a.PASS_TO_PASS == ("tests/test_ops.py::test_mul",)
    assert a.needs_docker and a.image == "swebench/sweb.eval.x86_64.calc_1776_calc-1:latest" and a.workdir == "/testbed"
    assert a.test_command[:2] == ("bash", "-c")
    assert a.test_command[2] == f"{T.SWEBENCH_ACTIVATE} && pytest -rA -p no:cacheprovider tests/test_ops.py"  # not data.json
    assert a.patch == rows[0]["patch"] and a.test_patch == rows[0]["test_patch"] and a.base_commit == "0" * 40
    assert a.meta == {"source": "swebench", "version": "1.0"}
    assert b.image == "my/image:1" and b.PASS_TO_PASS == () and b.test_command[2].endswith("./tests/runtests.py tests/test_ops.py")
    # a .json file holding a list reads the same
    (tmp_path / "instances.json").write_text(json.dumps(rows))
    assert T.load_swebench(tmp_path / "instances.json") == tasks
    # tasks round-trip through the task cache's JSONL
    T.save_tasks(tmp_path / "cache.jsonl", tasks)
    assert T.load_tasks(tmp_path / "cache.jsonl") == tasks


@pytest.mark.parametrize("row, message", [
    ({k: v for k, v in instance().items() if k not in ("FAIL_TO_PASS", "test_patch")},
     "calc__calc-1 lacks test_patch, FAIL_TO_PASS (an instance needs instance_id, repo, base_commit"),
    ({k: v for k, v in instance().items() if k != "instance_id"}, "instance ? lacks instance_id"),
    (instance(FAIL_TO_PASS="[tests/test_ops.py::test_add"), "FAIL_TO_PASS must be a list of test ids or a JSON-encoded"),
    (instance(PASS_TO_PASS=5), "PASS_TO_PASS must be a list"),
    (instance(FAIL_TO_PASS="[]"), "FAIL_TO_PASS is empty"),
    (["not", "an", "object"], "must be a JSON object"),
])
def test_loader_errors_name_the_line_and_the_problem(tmp_path, row, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [instance(instance_id="ok__ok-1"), row])
    with pytest.raises(ValueError) as e:
        T.load_swebench(path)
    assert str(e.value).startswith(f"{path}:2: ") and message in str(e.value)


def test_loader_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a file"):
        T.load_swebench(tmp_path / "missing.jsonl")
    (tmp_path / "broken.jsonl").write_text(json.dumps(instance()) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not valid JSON"):
        T.load_swebench(tmp_path / "broken.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no SWE-bench instances"):
        T.load_swebench(tmp_path / "empty.jsonl")
    write_jsonl(tmp_path / "twice.jsonl", [instance(), instance()])
    with pytest.raises(ValueError, match=r"twice.jsonl:2: instance calc__calc-1 appears twice \(first at .*twice.jsonl:1\)"):
        T.load_swebench(tmp_path / "twice.jsonl")
    (tmp_path / "list.json").write_text(json.dumps([instance(), {"instance_id": "x"}]))
    with pytest.raises(ValueError, match=r"list.json\[1\]: SWE-bench instance x lacks repo"):
        T.load_swebench(tmp_path / "list.json")


# ------------------------------------------------------------------------------------------------
# The harness's grading steps on a real git repository
# ------------------------------------------------------------------------------------------------

REPO = {"calc/__init__.py": "", "calc/ops.py": BUGGY, "tests/__init__.py": "", "tests/test_ops.py": OLD_TESTS,
        "tests/data.json": "{}"}
DATE = "2024-01-01T00:00:00+00:00"


@pytest.fixture
def repo(swe_backend):
    """A function that starts a sandbox holding REPO committed at base_commit (as /testbed is in an
    instance image), and the task for it."""
    def start():
        sandbox = swe_backend.create(REPO)
        r = run_in(sandbox, "git init -q && git add -A && git -c user.email=a@b.c -c user.name=a commit -qm base && "
                   "git rev-parse HEAD", GIT_AUTHOR_DATE=DATE, GIT_COMMITTER_DATE=DATE)  # the same commit every time
        return sandbox, r.stdout.strip()

    sandbox, base = start()
    sandbox.close()
    task = T.swebench_task(instance(base_commit=base))
    # the image's conda activation is not here: the same pytest run with this interpreter
    task = dataclasses.replace(task, test_command=("bash", "-c", f"{sys.executable} -m pytest -rA -p no:cacheprovider "
                                                   "tests/test_ops.py"))
    return start, task


def run_in(sandbox, command, **env):
    r = sandbox.run(["bash", "-c", command], env=env)
    assert r.ok, r.output
    return r


def agent_changes(start, task, command):
    """The agent's sandbox: run `command` (its edits), then collect the changes as the env does."""
    sandbox, _ = start()
    with sandbox:
        if command:
            run_in(sandbox, command)
        return collect_changes(sandbox.backend, sandbox, task)


def test_harness_grading_gold_and_no_op(repo):
    start, task = repo
    gold = agent_changes(start, task, f"git apply <<'EOF'\n{task.patch}EOF")
    assert gold.error is None and "-    return a - b" in gold.patch and "+    return a + b" in gold.patch
    sandbox, _ = start()
    with sandbox:
        v = grade_repository(sandbox, task, gold, timeout=60)
    assert v.resolved and v.score() == 1.0, v.test_output
    noop = agent_changes(start, task, None)
    assert noop.patch == ""
    sandbox, _ = start()
    with sandbox:
        v = grade_repository(sandbox, task, noop, timeout=60)
    assert not v.resolved and v.f2p_failed == ["tests/test_ops.py::test_add"] and v.p2p_passed == ["tests/test_ops.py::test_mul"]


def test_harness_grading_undoes_test_edits_and_reports_bad_patches(repo):
    start, task = repo
    # the agent deletes the test file the hidden tests extend and adds a test of its own: the
    # test files are restored to base_commit before the test patch goes in
    cheat = agent_changes(start, task, "printf 'def test_add():\\n    pass\\n' > tests/test_ops.py; echo x > new.txt")
    assert "new.txt" in cheat.patch
    sandbox, _ = start()
    with sandbox:
        v = grade_repository(sandbox, task, cheat, timeout=60)
    assert not v.resolved and v.f2p_failed == ["tests/test_ops.py::test_add"] and v.error is None
    # a model patch that does not apply
    sandbox, _ = start()
    with sandbox:
        v = grade_repository(sandbox, task, dataclasses.replace(cheat, patch=task.patch.replace("a - b", "a / b")), 60)
    assert not v.resolved and v.error == "the model patch does not apply"
    # the changes of a sandbox that is not a repository
    with start()[0] as sandbox:
        run_in(sandbox, "rm -rf .git")
        assert repository_changes(sandbox).error.startswith("git diff failed")
