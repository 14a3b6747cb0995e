"""The SWE recipe section's checks: they fail before any model loads, saying what to change."""

import pytest

from envs.sandbox import SandboxConfig
from envs.swe import SWEEnvConfig
from rl.config import RecipeError, load_recipe


def test_swebench_needs_a_path_and_docker():
    with pytest.raises(ValueError, match="needs swebench_path"):
        SWEEnvConfig(source="swebench", sandbox=SandboxConfig(backend="docker"))
    with pytest.raises(ValueError, match="set sandbox.backend: docker"):
        SWEEnvConfig(source="swebench", swebench_path="x.jsonl")
    SWEEnvConfig(source="swebench", swebench_path="x.jsonl", sandbox=SandboxConfig(backend="docker"))


def test_env_section_errors():
    with pytest.raises(ValueError, match="must contain '{problem_statement}'"):
        SWEEnvConfig(prompt_template="Fix the bug.")
    with pytest.raises(ValueError, match="unknown bug kinds \\['typo'\\]; allowed: flip_operator"):
        SWEEnvConfig(kinds=["typo"])
    with pytest.raises(ValueError, match="allow_unsafe: true"):
        SWEEnvConfig(sandbox=SandboxConfig(backend="unsafe_local"))


@pytest.mark.parametrize("override, message", [
    ("algorithm.length.thinking_budget=16", "thinking_budget interrupts one long completion"),
    ("algorithm.length.overlong_buffer=8", "overlong_buffer measures a completion against engine.max_new_tokens"),
])
def test_single_completion_length_controls_are_refused_for_episodes(override, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("recipes/tiny/swe_pocketlib.yaml", [override])
    assert load_recipe("recipes/tiny/swe_pocketlib.yaml", ["algorithm.length.mask_truncated=true"])


def test_swe_recipes_load():
    for path in ("recipes/swe_grpo.yaml", "recipes/swe_swebench.yaml", "recipes/tiny/swe_pocketlib.yaml"):
        r = load_recipe(path)
        assert r.env.name == "swe" and r.reward.verifiable == "swe_tests"
    assert load_recipe("recipes/swe_swebench.yaml").env.sandbox.backend == "docker"
