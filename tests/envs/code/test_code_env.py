"""The code env: the shipped tasks load, split and pass with their reference solutions; recipes."""

from __future__ import annotations

import json

import pytest

from envs import make_env
from envs.code import CodeEnv, CodeEnvConfig, load_tasks
from rl.config import load_recipe


def test_split_stream_and_prompts():
    env = CodeEnv(CodeEnvConfig(val_size=4), seed=0)
    assert env.epoch_size == 18 and len(env.val_prompts()) == 4
    train_ids = {p.id for p in env.train_prompts(0, env.epoch_size)}
    assert len(train_ids) == 18 and not train_ids & {p.id for p in env.val_prompts()}
    assert [p.id for p in env.train_prompts(5, 3)] == [p.id for p in env.train_prompts(0, 8)][5:]
    p = env.val_prompts()[0]
    assert p.id.startswith("basic/val/") and p.meta["tests"] and "```python" in p.messages[-1]["content"]
    assert env.gold_completion(p).startswith("```python\n")
    assert isinstance(make_env(CodeEnvConfig(), seed=1), CodeEnv)


def test_reference_solutions_pass_in_the_sandbox():
    from rewards.code import run_tests
    from tests.conftest import require_bwrap

    require_bwrap()
    env = CodeEnv(CodeEnvConfig(val_size=1), seed=0)
    for p in env.val_prompts() + env.train_prompts(0, env.epoch_size):
        out = run_tests(p.answer, p.meta["tests"])
        assert out["status"] == "ok" and all(out["passed"]), (p.id, out)


def test_bad_task_files_fail_clearly(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q"}) + "\n")
    with pytest.raises(ValueError, match="t.jsonl:1: missing tests; a task needs id, question, tests"):
        load_tasks(path)
    path.write_text(json.dumps({"id": "a", "question": "q", "tests": ["assert f(1) =="]}) + "\n")
    with pytest.raises(ValueError, match="is not valid Python"):
        load_tasks(path)
    path.write_text(json.dumps({"id": "a", "question": "q", "tests": ["pass"]}) + "\n")
    with pytest.raises(ValueError, match=r"val_size \(5\) must leave training tasks: .*t.jsonl has 1"):
        CodeEnv(CodeEnvConfig(dataset=str(path), val_size=5), seed=0)


def test_code_recipe_loads_and_needs_the_code_reward():
    recipe = load_recipe("recipes/code_grpo.yaml", [])
    assert recipe.env.name == "code" and recipe.reward.verifiable == "code_tests"
    from rl.config import RecipeError

    with pytest.raises(RecipeError, match="env code: reward.verifiable is 'math_verify', which cannot score code"):
        load_recipe("recipes/code_grpo.yaml", ["reward.verifiable=math_verify"])
