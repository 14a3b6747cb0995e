"""SWEEnv's agent loop driven by scripted assistant turns (the text a model would write, in the
chat template's tool-call format) on real generated tasks in real bubblewrap sandboxes: every
tool does what it says, malformed calls get error observations, the step/time/token budgets end
the episode, long observations are cut, and the hidden tests' verdict is the reward."""

import time

import pytest

from envs.sandbox import SandboxConfig
from envs.swe import SWEEnv, SWEEnvConfig
from envs.swe.tools import ToolCall
from rewards.swe import swe_tests
from rl.rollout.base import Completion
from rl.rollout.multiturn import episode_prompt
from tests.conftest import SWE_TASKS


def call(name: str, **arguments) -> str:
    return ToolCall(name, arguments).render()


def make_env(tmp_path, cache_dir, **over) -> SWEEnv:
    """An SWEEnv over the session's generated tasks (found in the cache, not generated again)."""
    sandbox = SandboxConfig(backend="bwrap", root=str(tmp_path / "sandboxes"), **over.pop("sandbox", {}))
    cfg = SWEEnvConfig(train_size=SWE_TASKS["count"] - 1, val_size=1, seed=SWE_TASKS["seed"],
                       cache_dir=str(cache_dir), sandbox=sandbox, **over)
    return SWEEnv(cfg, seed=123)


def reward(prompt, info, partial_credit=False) -> float:
    """The swe_tests reward as the trainer computes it: the episode's report rides on the prompt."""
    completion = Completion(prompt_ids=[], token_ids=[], logprobs=[], finish_reason="stop", text="", policy_versions=[],
                            env_info=info)
    return swe_tests("", episode_prompt(prompt, completion), partial_credit=partial_credit)


@pytest.fixture(scope="module")
def env(tmp_path_factory, swe_tasks, swe_cache_dir):
    with make_env(tmp_path_factory.mktemp("env"), swe_cache_dir) as e:
        yield e


@pytest.fixture(scope="module")
def tasks(swe_tasks):
    return {t.instance_id: t for t in swe_tasks}


def prompt_of(env, task):
    return next(p for p in env.train_prompts(0, env.epoch_size) + env.val_prompts() if p.id == task.instance_id)


def test_the_env_reports_its_isolation_and_uses_the_cached_tasks(tmp_path, swe_tasks, swe_cache_dir, capsys):
    with make_env(tmp_path, swe_cache_dir) as e:
        out = capsys.readouterr().out
        assert "[asymptote] sandbox: bubblewrap" in out and "network: cut" in out and "writable /workspace only" in out
        assert "generated" not in out  # the session's tasks came from the cache
        ids = sorted(p.id for p in e.train_prompts(0, e.epoch_size) + e.val_prompts())
        assert ids == sorted(t.instance_id for t in swe_tasks)
        assert len(e.val_prompts()) == 1 and e.epoch_size == 2
        p = e.val_prompts()[0]
        assert p.messages[0]["role"] == "system" and "<tool_call>" in p.messages[0]["content"]
        assert all(name in p.messages[0]["content"] for name in ("view", "search", "replace", "create", "run_tests"))
        assert p.messages[1]["role"] == "user" and "these tests fail" in p.messages[1]["content"]
        assert "gold_edit" not in p.meta  # the fix never reaches the model


def test_each_tool_does_what_it_says(env, swe_tasks):
    task = swe_tasks[0]
    path = task.meta["file"]
    lines = task.files[path].splitlines()
    ep = env.reset(prompt_of(env, task))
    try:
        # view: a whole file, a range of lines, a directory
        r = env.step(ep, call("view", path=path) + "\n" + call("view", path=path, start_line=2, end_line=3) + "\n"
                     + call("view", path="."))
        assert not r.done and [m["role"] for m in r.observations] == ["tool"] * 3
        whole, part, listing = (m["content"] for m in r.observations)
        assert whole.splitlines()[0] == f"{1:6d}\t{lines[0]}" and len(whole.splitlines()) == len(lines)
        assert part == f"{2:6d}\t{lines[1]}\n{3:6d}\t{lines[2]}"
        assert "pocketlib/" in listing and "tests/" in listing and path in listing
        # search: path:line: text
        function = task.meta["function"].split(".")[-1]
        r = env.step(ep, call("search", pattern=rf"def {function}\(", path="pocketlib"))
        line_no = next(i for i, line in enumerate(lines, 1) if f"def {function}(" in line)
        assert r.observations[0]["content"].startswith(f"{path}:{line_no}: def {function}(")
        # replace a unique string; then the file holds the new text
        r = env.step(ep, call("replace", path=path, old=lines[line_no - 1], new=lines[line_no - 1] + "  # edited"))
        assert r.observations[0]["content"].startswith(f"Edited {path}") and "# edited" in r.observations[0]["content"]
        r = env.step(ep, call("view", path=path, start_line=line_no, end_line=line_no))
        assert r.observations[0]["content"].endswith("# edited")
        # create a file; run a command that reads it; its exit code is reported
        r = env.step(ep, call("create", path="notes/a.txt", content="hello\n") + call("run", command="cat notes/a.txt; exit 3"))
        assert r.observations[0]["content"] == "Created notes/a.txt (1 lines)"
        assert r.observations[1]["content"] == "hello\n[exit code 3]"
        # run the tests (the visible ones)
        r = env.step(ep, call("run_tests"))
        assert " passed" in r.observations[0]["content"] and r.observations[0]["content"].endswith("[exit code 0]")
        r = env.step(ep, call("run_tests", path=next(iter(task.PASS_TO_PASS))))
        assert "1 passed" in r.observations[0]["content"]
        # tool errors are observations, the episode goes on
        r = env.step(ep, call("replace", path=path, old="\n", new="\n") + call("replace", path=path, old="no such text",
                     new="x") + call("create", path="notes/a.txt", content="") + call("view", path="missing.py"))
        errors = [m["content"] for m in r.observations]
        assert "occurs" in errors[0] and "times" in errors[0] and "include more context" in errors[0]
        assert "did not appear verbatim" in errors[1]
        assert "already exists" in errors[2]
        assert "missing.py does not exist" in errors[3]
        assert not r.done and all(e.startswith("Error") for e in errors)
        r = env.step(ep, call("search", pattern="(") + call("view", path=path, start_line=len(lines) + 5)
                     + call("view", path=path, start_line="2", end_line="2"))  # integers as strings are taken
        assert "invalid regular expression" in r.observations[0]["content"]
        assert "invalid line range" in r.observations[1]["content"]
        assert r.observations[2]["content"] == f"{2:6d}\t{lines[1]}"
        assert ep.tool_errors == 6 and ep.tool_calls == 17
        # submit ends the episode with the verdict; later turns get the same report
        r = env.step(ep, call("submit"))
        assert r.done and r.observations == [] and r.info["end_reason"] == "submit" and r.info["submitted"]
        assert "# edited" in r.info["model_patch"] and "notes/a.txt" not in r.info["model_patch"]  # only pocketlib/
        assert env.step(ep, call("view", path=".")).info is r.info
    finally:
        env.finish(ep, "test")
    assert ep.sandbox is None or ep.sandbox._closed


def test_malformed_calls_are_answered_with_errors(env, swe_tasks):
    ep = env.reset(prompt_of(env, swe_tasks[1]))
    try:
        turns = {
            "I think the bug is in text.py.": "no tool call found",
            '<tool_call>{"name": "view", "arguments": {"path": "x"</tool_call>': "not valid JSON",
            '<tool_call>{"name": "delete", "arguments": {}}</tool_call>': "unknown tool 'delete'",
            '<tool_call>{"name": "replace", "arguments": {"path": "a.py"}}</tool_call>': "missing old, new",
            '<tool_call>{"name": "view", "arguments": {"path": 3}}</tool_call>': "'path' must be a string",
            '<tool_call>["view"]</tool_call>': "must be a JSON object",
            '<tool_call>{"name": "view", "arguments": {"path": "."}}': "not closed",
            "\x00\x01<tool_call>\udcff</tool_call>": "not valid JSON",
        }
        for text, error in turns.items():
            r = env.step(ep, text)
            assert not r.done and len(r.observations) == 1
            assert r.observations[0]["content"].startswith("Error: ") and error in r.observations[0]["content"], text
        assert ep.tool_errors == len(turns) and ep.tool_calls == 0
    finally:
        info = env.finish(ep, "test")
    assert info["tool_errors"] == len(turns) and info["verdict"] is not None


def test_gold_fix_through_replace_scores_1(env, swe_tasks):
    task = swe_tasks[0]
    prompt = prompt_of(env, task)
    ep = env.reset(prompt)
    r = env.step(ep, "I will fix it.\n" + call("replace", **task.meta["gold_edit"]))
    assert not r.done and r.observations[0]["content"].startswith("Edited ")
    r = env.step(ep, call("run_tests"))
    r = env.step(ep, call("submit"))
    assert r.done and r.info["verdict"]["resolved"] and r.info["error"] is None
    assert r.info["verdict"]["FAIL_TO_PASS"]["failure"] == [] and r.info["verdict"]["PASS_TO_PASS"]["failure"] == []
    assert f"PASSED {task.FAIL_TO_PASS[0]}" in r.info["verdict"]["test_output"]  # kept for samples.jsonl
    assert r.info["turns"] == 3 and r.info["tool_calls"] == 3
    assert reward(prompt, r.info) == 1.0 and reward(prompt, r.info, partial_credit=True) == 1.0
    # the environment's own gold completion does the same in one turn
    ep = env.reset(prompt)
    r = env.step(ep, env.gold_completion(prompt))
    assert r.done and reward(prompt, r.info) == 1.0
    # and so does the gold patch through `git apply` in a run call (gold_completion's way without a gold edit)
    ep = env.reset(prompt)
    r = env.step(ep, call("run", command=f"git apply <<'ASYMPTOTE_PATCH'\n{task.patch}ASYMPTOTE_PATCH") + call("submit"))
    assert r.done and reward(prompt, r.info) == 1.0 and r.info["model_patch"] == task.patch


def test_submitting_without_a_fix_scores_0(env, swe_tasks):
    for task in swe_tasks[:2]:
        prompt = prompt_of(env, task)
        ep = env.reset(prompt)
        r = env.step(ep, call("view", path=task.meta["file"]) + call("submit"))
        assert r.done and r.info["submitted"] and r.info["verdict"]["resolved"] is False
        assert r.info["verdict"]["FAIL_TO_PASS"]["failure"] == list(task.FAIL_TO_PASS)
        assert reward(prompt, r.info) == 0.0 and reward(prompt, r.info, partial_credit=True) == 0.0


def test_partial_credit_is_the_fraction_of_tests(env, swe_tasks):
    """The gold fix plus a function broken elsewhere: unresolved (0), but partial credit gives the
    FAIL_TO_PASS fraction fixed times the PASS_TO_PASS fraction kept."""
    task = next(t for t in swe_tasks if not any(x.startswith("tests/test_numbers.py") for x in t.FAIL_TO_PASS)
                and t.meta["file"] != "pocketlib/numbers.py")
    prompt = prompt_of(env, task)
    ep = env.reset(prompt)
    # two functions that fail when called (an import error would fail the whole collection)
    breaks = "printf 'def fibonacci(n):\\n    return 0\\ndef clamp(x, low, high):\\n    return 0\\n' >> pocketlib/numbers.py"
    r = env.step(ep, call("replace", **task.meta["gold_edit"]) + call("run", command=breaks) + call("submit"))
    v = r.info["verdict"]
    broken = v["PASS_TO_PASS"]["failure"]
    assert broken == ["tests/test_numbers.py::test_clamp", "tests/test_numbers.py::test_fibonacci"]
    assert v["FAIL_TO_PASS"]["failure"] == []
    kept = 1 - len(broken) / len(task.PASS_TO_PASS)
    assert reward(prompt, r.info) == 0.0
    assert reward(prompt, r.info, partial_credit=True) == pytest.approx(kept) and 0 < kept < 1


def test_edits_to_tests_and_pytest_hooks_never_reach_the_grader(env, swe_tasks):
    """A conftest.py that reports every test as passed fools the agent's own test run, not the
    hidden one: only the library's package is carried over into the grading sandbox."""
    task = swe_tasks[1]
    prompt = prompt_of(env, task)
    hook = ("import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    outcome.get_result().outcome = 'passed'\n")
    ep = env.reset(prompt)
    r = env.step(ep, call("create", path="conftest.py", content=hook)
                 + call("run", command="echo 'def test_x(): assert False' > tests/test_zz.py")
                 + call("run_tests"))
    assert "failed" not in r.observations[-1]["content"]  # the hook fools the visible run
    r = env.step(ep, call("submit"))
    assert r.info["verdict"]["resolved"] is False and reward(prompt, r.info) == 0.0
    assert r.info["model_patch"] == ""


def test_too_many_calls_in_one_turn(tmp_path, swe_tasks, swe_cache_dir):
    with make_env(tmp_path, swe_cache_dir, max_calls_per_turn=2) as e:
        ep = e.reset(e.val_prompts()[0])
        r = e.step(ep, call("run", command="echo 1") + call("run", command="echo 2") + call("run", command="echo 3"))
        assert [m["content"] for m in r.observations][:2] == ["1\n[exit code 0]", "2\n[exit code 0]"]
        assert r.observations[2]["content"].startswith("Error: at most 2 tool calls per turn")
        e.finish(ep, "test")


def test_step_budget_ends_and_grades_the_episode(tmp_path, swe_tasks, swe_cache_dir):
    with make_env(tmp_path, swe_cache_dir, max_turns=2) as e:
        prompt = e.val_prompts()[0]
        ep = e.reset(prompt)
        assert not e.step(ep, call("view", path=".")).done
        r = e.step(ep, "no call at all")
        assert r.done and r.info["end_reason"] == "max_turns" and not r.info["submitted"]
        assert r.info["verdict"] is not None and reward(prompt, r.info) == 0.0  # graded on its final workspace
        # a gold fix in the last turn counts (grade_unsubmitted, as R2E-Gym and SkyRL do)
        task = next(t for t in swe_tasks if t.instance_id == prompt.id)
        ep = e.reset(prompt)
        e.step(ep, call("view", path="."))
        r = e.step(ep, call("replace", **task.meta["gold_edit"]))
        assert r.done and r.info["end_reason"] == "max_turns" and reward(prompt, r.info) == 1.0
    with make_env(tmp_path, swe_cache_dir, max_turns=1, grade_unsubmitted=False) as e:
        prompt = e.val_prompts()[0]
        ep = e.reset(prompt)
        r = e.step(ep, call("replace", **task.meta["gold_edit"]))
        assert r.done and r.info["verdict"] is None and reward(prompt, r.info) == 0.0  # not submitted, not graded


def test_time_budget_kills_the_command_and_ends_the_episode(tmp_path, swe_tasks, swe_cache_dir):
    with make_env(tmp_path, swe_cache_dir, max_episode_seconds=2.0) as e:
        ep = e.reset(e.val_prompts()[0])
        r = e.step(ep, call("run", command="sleep 1.2"))
        assert not r.done and r.observations[0]["content"] == "[exit code 0]"
        time.sleep(1.0)  # the model thinking: generation time does not count
        t0 = time.monotonic()
        r = e.step(ep, call("run", command="echo started; sleep 30") + call("run", command="echo never"))
        assert time.monotonic() - t0 < 8  # killed when the budget ran out (at least 1 s per command)
        assert r.done and r.info["end_reason"] == "timeout" and r.info["verdict"] is not None
        assert r.info["tool_seconds"] >= 2.0 and r.info["tool_calls"] == 2


def test_token_budget_end_is_graded(env, swe_tasks):
    """The rollout ends an episode that runs out of tokens with finish(); it is graded like any end."""
    task = swe_tasks[0]
    prompt = prompt_of(env, task)
    ep = env.reset(prompt)
    env.step(ep, call("replace", **task.meta["gold_edit"]))
    info = env.finish(ep, "max_tokens")
    assert info["end_reason"] == "max_tokens" and reward(prompt, info) == 1.0
    assert env.finish(ep, "again") is info and env.step(ep, call("submit")).info is info


def test_long_observations_keep_head_and_tail(tmp_path, swe_tasks, swe_cache_dir):
    with make_env(tmp_path, swe_cache_dir, max_observation_chars=200, observation_role="user") as e:
        ep = e.reset(e.val_prompts()[0])
        r = e.step(ep, call("run", command="echo BEGIN; head -c 20000 /dev/zero | tr '\\0' x; echo; echo END"))
        m = r.observations[0]
        assert m["role"] == "user"
        assert m["content"].startswith("BEGIN\nxxx") and m["content"].endswith("END\n[exit code 0]")
        assert "characters truncated" in m["content"] and len(m["content"]) < 300
        e.finish(ep, "test")


def test_concurrent_episodes_do_not_see_each_other(env, swe_tasks):
    prompt = prompt_of(env, swe_tasks[0])
    a, b = env.reset(prompt), env.reset(prompt)
    try:
        env.step(a, call("create", path="mine.txt", content="a\n"))
        r = env.step(b, call("view", path="mine.txt") + call("run", command="ls -a /workspace; ls /tmp"))
        assert "does not exist" in r.observations[0]["content"] and "mine.txt" not in r.observations[1]["content"]
        r = env.step(a, call("view", path="mine.txt"))
        assert r.observations[0]["content"] == f"{1:6d}\ta"
    finally:
        env.finish(a, "test")
        env.finish(b, "test")


def test_closing_the_env_closes_live_episodes(tmp_path, swe_tasks, swe_cache_dir):
    e = make_env(tmp_path, swe_cache_dir)
    ep = e.reset(e.val_prompts()[0])
    e.step(ep, call("run", command="sleep 0.1 && echo hi > x.txt"))
    workspace = ep.sandbox.workspace
    assert (workspace / "x.txt").is_file()
    e.close()
    assert not workspace.exists()
    assert [p.name for p in (tmp_path / "sandboxes").iterdir() if p.name != "uids"] == []
