"""Task generation on the real pocketlib library in a real bubblewrap sandbox: every kept task is
valid (its gold patch scores 1 and a no-op scores 0 through the grading path an agent's changes
take), invalid mutations are dropped, and task sets are cached."""

import dataclasses
import json

import pytest

from envs.base import Prompt
from envs.swe.generate import (
    apply_in_sandbox, cached_tasks, generate_tasks, load_library, ordered_candidates, validate,
)
from envs.swe.grading import parse_pytest_log, passed
from envs.swe.inject import KINDS, Injection
from envs.swe.runtime import collect_changes, grade, start
from envs.swe.tasks import load_tasks
from rewards.swe import swe_tests


def _reward(task, verdict, partial_credit=False):
    """The swe_tests reward of an episode whose report carries `verdict`."""
    prompt = Prompt(id=task.instance_id, messages=(), answer=task.patch,
                    meta={"env_info": {"verdict": verdict.to_dict(), "error": None}})
    return swe_tests("", prompt, partial_credit=partial_credit)


def test_generated_tasks_are_well_formed(swe_tasks):
    assert len(swe_tasks) == 3
    assert len({t.instance_id for t in swe_tasks}) == 3
    lib = load_library("pocketlib")
    for t in swe_tasks:
        assert t.FAIL_TO_PASS and t.PASS_TO_PASS and not set(t.FAIL_TO_PASS) & set(t.PASS_TO_PASS)
        assert t.meta["kind"] in KINDS and t.meta["gold_edit"]["path"] == t.meta["file"]
        # the workspace holds the bug; the failing tests are hidden from it, the others stay visible
        assert t.files[t.meta["file"]] != lib.files[t.meta["file"]]
        for test in t.FAIL_TO_PASS:
            path, name = test.split("::")
            name = name.split("[")[0]
            assert f"def {name}(" not in t.files[path]
            assert f"def {name}(" in t.hidden_tests[path]
        visible = next(p for p in t.PASS_TO_PASS if p.split("::")[0] not in {f.split("::")[0] for f in t.FAIL_TO_PASS})
        assert f"def {visible.split('::')[1].split('[')[0]}(" in t.files[visible.split("::")[0]]
        assert t.hidden_tests == {p: s for p, s in lib.files.items() if p.startswith("tests/")}
        assert "these tests fail" in t.problem_statement and t.FAIL_TO_PASS[0] in t.problem_statement


def test_gold_patch_scores_1_and_no_op_scores_0(swe_backend, swe_tasks):
    for task in swe_tasks:
        gold = grade(swe_backend, task, apply_in_sandbox(swe_backend, task, task.patch), timeout=60)
        assert gold.resolved, (task.instance_id, gold.f2p_failed, gold.p2p_failed, gold.error)
        assert _reward(task, gold) == 1.0 and _reward(task, gold, partial_credit=True) == 1.0
        statuses = parse_pytest_log(gold.test_output)
        assert all(passed(t, statuses) for t in task.FAIL_TO_PASS + task.PASS_TO_PASS)

        with start(swe_backend, task) as sandbox:  # the agent changes nothing
            changes = collect_changes(swe_backend, sandbox, task)
        assert changes.patch == "" and changes.error is None
        noop = grade(swe_backend, task, changes, timeout=60)
        assert not noop.resolved and noop.error is None
        assert noop.f2p_failed == list(task.FAIL_TO_PASS) and noop.p2p_failed == []  # the bug, nothing else
        assert _reward(task, noop) == 0.0 and _reward(task, noop, partial_credit=True) == 0.0
        assert "FAILED " + task.FAIL_TO_PASS[0] in noop.test_output


def test_a_patch_that_does_not_apply_scores_0(swe_backend, swe_tasks):
    task = swe_tasks[0]
    changes = apply_in_sandbox(swe_backend, task, "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert changes.error and "git apply failed" in changes.error
    verdict = grade(swe_backend, task, changes)
    assert not verdict.resolved and verdict.error == changes.error and _reward(task, verdict) == 0.0


def _baseline(backend, lib):
    from envs.swe.generate import _run_suite

    result, statuses, _ = _run_suite(backend, lib.files, 60)
    assert result.ok, result.output[-2000:]
    return sorted(statuses)


def test_validation_drops_invalid_mutations(swe_backend):
    lib = load_library("pocketlib")
    baseline = _baseline(swe_backend, lib)
    path = "pocketlib/text.py"
    original = lib.files[path]

    # a mutation no test catches
    unnoticed = Injection("wrong_constant", path, "<module>", 1, "an unused constant", original,
                          original + "\n_UNUSED = 2\n")
    task, reason = validate(swe_backend, lib, unnoticed, baseline, True, "failures", 60)
    assert task is None and reason == "no test fails"

    # a mutation that makes the tests hang
    hang = Injection("remove_statement", path, "<module>", 1, "a loop at import", original,
                     original + "\nwhile True:\n    pass\n")
    task, reason = validate(swe_backend, lib, hang, baseline, True, "failures", 3)
    assert task is None and reason == "the tests hang"

    # a real bug whose "fix" does not restore the library: the gold patch must pass or the task goes
    real = ordered_candidates(lib, KINDS, 0)[0]
    ok, reason = validate(swe_backend, lib, real, baseline, True, "failures", 60)
    assert ok is not None and reason == "ok"
    broken_fix = dataclasses.replace(real, original="raise RuntimeError('broken')\n" + real.original)
    task, reason = validate(swe_backend, lib, broken_fix, baseline, True, "failures", 60)
    assert task is None and reason.startswith("the gold patch does not pass")


def test_generation_is_deterministic_and_cached(swe_backend, swe_tasks, swe_cache_dir, tmp_path):
    # the cache file holds the task set; asking again loads it without generating
    files = list((swe_cache_dir / "swe_tasks").glob("pocketlib-*.jsonl"))
    assert len(files) == 1 and load_tasks(files[0]) == swe_tasks
    logged = []
    again = cached_tasks(swe_backend, "pocketlib", 3, 0, KINDS, True, "failures", str(swe_cache_dir), log=logged.append)
    assert again == swe_tasks and logged == []  # nothing generated
    # generated afresh with the same seed: the same first task
    first = generate_tasks(swe_backend, "pocketlib", 1, 0, log=logged.append)
    assert first == swe_tasks[:1] and logged and "generated 1 pocketlib tasks" in logged[0]
    # anything that changes the task set changes the key: a new file, generated, then cached too
    logged.clear()
    names = cached_tasks(swe_backend, "pocketlib", 1, 0, ("wrong_constant",), True, "names", str(tmp_path), log=logged.append)
    assert len(names) == 1 and names[0].meta["kind"] == "wrong_constant" and len(logged) == 1
    assert "- " not in names[0].problem_statement.split("\n\n")[1]  # statement_detail names: no failure reasons
    assert len(list((tmp_path / "swe_tasks").glob("*.jsonl"))) == 1
    assert cached_tasks(swe_backend, "pocketlib", 1, 0, ("wrong_constant",), True, "names", str(tmp_path),
                        log=logged.append) == names and len(logged) == 1
    # the cache is plain JSONL in the SWE-bench instance format
    row = json.loads((tmp_path / "swe_tasks").glob("*.jsonl").__next__().read_text().splitlines()[0])
    assert {"instance_id", "repo", "base_commit", "problem_statement", "patch", "test_patch", "FAIL_TO_PASS",
            "PASS_TO_PASS"} <= set(row)


@pytest.mark.slow  # ~25 s on 2 busy cores
def test_every_bug_kind_yields_valid_tasks(swe_backend):
    """One task of each kind, generated and so validated (its tests catch the bug, its gold patch scores 1)."""
    for kind in KINDS:
        logged = []
        tasks = generate_tasks(swe_backend, "pocketlib", 1, 7, kinds=(kind,), log=logged.append)
        assert len(tasks) == 1 and tasks[0].meta["kind"] == kind and tasks[0].FAIL_TO_PASS, logged
