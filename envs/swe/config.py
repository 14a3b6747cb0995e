"""The SWE environment's recipe section: where tasks come from, the agent loop's budgets, the sandbox."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from envs.sandbox.config import SandboxConfig
from envs.schema import Config
from envs.swe.inject import KINDS


class SWEEnvConfig(Config):
    """Multi-turn software engineering: the model edits a repository in a sandbox with tools and is
    rewarded by hidden tests (R2E-Gym, SWE-Gym, SWE-smith style)."""

    name: Literal["swe"] = "swe"
    """Selects this environment in the recipe's `env` section."""
    source: Literal["generated", "swebench"] = "generated"
    """generated: bugs injected into a library shipped with Asymptote (envs/swe/data/), validated in
    the sandbox, offline; swebench: SWE-bench-format instances from `swebench_path` (Docker images)."""
    library: str = "pocketlib"
    """For generated tasks: the library under envs/swe/data/ to inject bugs into."""
    kinds: list[str] = list(KINDS)
    """For generated tasks: the bug kinds, drawn equally often: flip_operator, off_by_one,
    remove_statement, swap_arguments, wrong_constant."""
    train_size: int = Field(64, ge=1)
    """Training tasks (generated: that many are generated and validated, once, then cached)."""
    val_size: int = Field(16, ge=1)
    """Held-out tasks for val/accuracy (never in the training stream)."""
    visible_tests: bool = True
    """Generated tasks: keep the library's test suite in the workspace minus the failing tests
    (as a repository's existing tests are), so run_tests means something; False hides all tests."""
    statement_detail: Literal["failures", "names"] = "failures"
    """Generated tasks' problem statement: the failing tests with pytest's one-line reasons, or
    only their names (harder)."""
    swebench_path: str | None = None
    """source swebench: a .json or .jsonl file of instances (instance_id, repo, base_commit,
    problem_statement, patch, test_patch, FAIL_TO_PASS, PASS_TO_PASS; optional image_name, test_cmd)."""
    cache_dir: str | None = None
    """Where generated task sets are cached; None: $ASYMPTOTE_CACHE or ~/.cache/asymptote."""
    seed: int | None = None
    """Seeds task generation, the train/val split and the epoch orders; None uses the recipe's seed."""

    system_prompt: str | None = None
    """The first paragraph of the system message; the tool descriptions follow it. None: a
    one-sentence role (envs/swe/tools.py INTRO)."""
    prompt_template: str = (
        "{problem_statement}\n\nThe repository is your working directory; paths are relative to it. Fix it with "
        "the tools, then call submit."
    )
    """The user message; `{problem_statement}` is replaced by the task's statement (str.replace, so
    other braces are literal)."""
    tools_prompt: Literal["full", "compact"] = "full"
    """full: the tools' JSON schemas in Qwen2.5's tool-prompt words (for real models); compact: one
    line (for the tiny CPU model, whose context is 1024 characters)."""
    observation_role: Literal["tool", "user"] = "tool"
    """Role of tool results in the chat; "user" for chat templates without a tool role."""
    max_turns: int = Field(30, ge=1)
    """Assistant turns per episode; the episode ends (and is graded) after the last."""
    max_episode_tokens: int = Field(32768, ge=16)
    """Prompt, all turns and all observations, in tokens (the model's context budget); the
    per-turn budget is engine.max_new_tokens."""
    max_episode_seconds: float = Field(900.0, gt=0.0)
    """Wall-clock budget of an episode's tool calls (generation time does not count); each command's
    timeout is at most what is left, and the call that spends it ends the episode."""
    max_calls_per_turn: int = Field(8, ge=1)
    """Tool calls executed per assistant turn; further ones are answered with an error."""
    max_observation_chars: int = Field(6000, ge=64)
    """A tool result longer than this keeps its head and tail around a truncation note."""
    command_timeout: float = Field(60.0, gt=0.0)
    """Wall-clock limit of one run / run_tests call (the sandbox kills the command past it)."""
    test_timeout: float = Field(300.0, gt=0.0)
    """Wall-clock limit of the hidden test run at grading."""
    grade_unsubmitted: bool = True
    """Grade episodes that end without submit (turns, tokens or time ran out) on their final
    workspace, as R2E-Gym and SkyRL do; False scores them 0 without running the tests."""
    max_test_output_chars: int = Field(4000, ge=0)
    """Test output kept per episode in samples.jsonl."""
    parallel_episodes: int = Field(8, ge=1)
    """Episodes whose tool calls run at once (threads; each command is its own sandboxed process)."""
    sandbox: SandboxConfig = SandboxConfig()

    @field_validator("prompt_template")
    @classmethod
    def _template_has_statement(cls, template: str) -> str:
        if "{problem_statement}" not in template:
            raise ValueError("prompt_template must contain '{problem_statement}' (where the task's statement goes)")
        return template

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds:
            raise ValueError(f"unknown bug kinds {unknown}; allowed: {', '.join(KINDS)}")
        return kinds

    @model_validator(mode="after")
    def _source_needs(self) -> "SWEEnvConfig":
        if self.source == "swebench":
            if self.swebench_path is None:
                raise ValueError("source 'swebench' needs swebench_path (a .json or .jsonl file of instances)")
            if self.sandbox.backend != "docker":
                raise ValueError("SWE-bench tasks run in their Docker images: set sandbox.backend: docker")
        return self
