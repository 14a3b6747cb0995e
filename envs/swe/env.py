"""The SWE environment: a multi-turn agent loop over tasks in sandboxes, graded by hidden tests.

An episode is one task in its own sandbox. Each assistant turn is parsed for tool calls
(envs/swe/tools.py); each call runs inside the sandbox and its (truncated) output comes back as a
tool message; malformed calls come back as error messages. The episode ends at `submit`, after
max_turns turns, when its tool calls have taken max_episode_seconds (the model's generation time
does not count: it depends on how episodes are batched), or when the rollout runs out of tokens (`finish`); the
agent's changes are then graded in a fresh sandbox by the hidden tests (envs/swe/runtime.py) and
the verdict, with the test output and the model's patch, is the episode's info.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.base import EpochOrder, Prompt, StepResult
from envs.base import derive_seed
from envs.sandbox import make_backend
from envs.sandbox.base import Sandbox
from envs.swe.config import SWEEnvConfig
from envs.swe.generate import cached_tasks
from envs.swe.grading import PYTEST_ENV, Verdict, truncate_middle
from envs.swe.runtime import collect_changes, grade, start, toolbox
from envs.swe.tasks import SWETask, load_swebench
from envs.swe.tools import INTRO, ToolCall, parse_tool_calls, system_prompt

TOOLBOX_DIR = Path(__file__).resolve().parent / "toolbox"
FILE_TOOLS = ("view", "search", "replace", "create")


@dataclass(eq=False)  # episodes are compared (and hashed) by identity
class Episode:
    prompt: Prompt
    task: SWETask
    sandbox: Sandbox | None
    started: float
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    submitted: bool = False
    tool_seconds: float = 0.0
    """Wall-clock time spent in this episode's tool calls (what max_episode_seconds bounds; the
    model's generation time, which depends on how episodes are batched, does not count)."""
    info: dict[str, Any] | None = None
    """Set when the episode has ended."""

    def __post_init__(self) -> None:
        self.lock = threading.Lock()


class SWEEnv:
    """See the module docstring; the stream of prompts works as MathEnv's (addressed by position,
    a seeded permutation per epoch)."""

    name = "swe"

    def __init__(self, cfg: SWEEnvConfig, seed: int):
        self.cfg = cfg
        self.seed = cfg.seed if cfg.seed is not None else seed
        self.max_episode_tokens = cfg.max_episode_tokens
        self.parallel_episodes = cfg.parallel_episodes
        self.backend = make_backend(cfg.sandbox, TOOLBOX_DIR)  # prints the isolation in force
        self._episodes: set[Episode] = set()
        self._lock = threading.Lock()
        try:
            tasks = self._load_tasks()
        except BaseException:
            self.backend.close()
            raise
        if len(tasks) <= cfg.val_size:
            self.backend.close()
            raise ValueError(f"only {len(tasks)} tasks for val_size={cfg.val_size}: nothing left to train on")
        order = np.random.default_rng(derive_seed(self.seed, "swe-split")).permutation(len(tasks))
        self._val = [tasks[i] for i in sorted(order[: cfg.val_size])]
        self._train = [tasks[i] for i in sorted(order[cfg.val_size :])]
        self._order = EpochOrder(len(self._train), self.seed)
        self._tasks = {t.instance_id: t for t in tasks}
        self._system = system_prompt(cfg.tools_prompt, cfg.system_prompt or INTRO)

    def _load_tasks(self) -> list[SWETask]:
        c = self.cfg
        if c.source == "swebench":
            assert c.swebench_path is not None  # the config guarantees it
            return load_swebench(c.swebench_path)
        return cached_tasks(self.backend, c.library, c.train_size + c.val_size, self.seed, tuple(c.kinds),
                            c.visible_tests, c.statement_detail, c.cache_dir)

    # ------------------------------------------------------------------------------------------
    # The prompt stream (Env)
    # ------------------------------------------------------------------------------------------

    @property
    def epoch_size(self) -> int:
        return len(self._train)

    def train_prompts(self, position: int, count: int) -> list[Prompt]:
        return [self.prompt(self._train[i]) for i in self._order.indices(position, count)]

    def val_prompts(self) -> list[Prompt]:
        return [self.prompt(t) for t in self._val]

    def prompt(self, task: SWETask) -> Prompt:
        user = self.cfg.prompt_template.replace("{problem_statement}", task.problem_statement)
        meta = {"instance_id": task.instance_id, "repo": task.repo, "fail_to_pass": len(task.FAIL_TO_PASS),
                "pass_to_pass": len(task.PASS_TO_PASS)}
        meta |= {k: v for k, v in task.meta.items() if k != "gold_edit"}
        return Prompt(id=task.instance_id, messages=({"role": "system", "content": self._system},
                                                     {"role": "user", "content": user}),
                      answer=task.patch, meta=meta)

    def gold_completion(self, prompt: Prompt) -> str:
        """One assistant turn that solves the task: the gold edit as a replace call (or, without
        one, the gold patch through `git apply`), then submit."""
        task = self._tasks[prompt.id]
        edit = task.meta.get("gold_edit")
        if edit:
            fix = ToolCall("replace", dict(edit))
        else:
            fix = ToolCall("run", {"command": f"git apply <<'ASYMPTOTE_PATCH'\n{task.patch}ASYMPTOTE_PATCH"})
        return fix.render() + "\n" + ToolCall("submit", {}).render()

    # ------------------------------------------------------------------------------------------
    # Episodes (MultiTurnEnv)
    # ------------------------------------------------------------------------------------------

    def reset(self, prompt: Prompt) -> Episode:
        task = self._tasks[prompt.id]
        episode = Episode(prompt, task, start(self.backend, task), time.monotonic())
        with self._lock:
            self._episodes.add(episode)
        return episode

    def step(self, episode: Episode, assistant_text: str) -> StepResult:
        c = self.cfg
        with episode.lock:
            if episode.info is not None:
                return StepResult([], True, episode.info)
            episode.turns += 1
            if episode.tool_seconds >= c.max_episode_seconds:
                return self._end(episode, "timeout")
            observations = []
            for i, parsed in enumerate(parse_tool_calls(assistant_text)):
                if i == c.max_calls_per_turn:
                    episode.tool_errors += 1
                    observations.append(self._message(f"Error: at most {c.max_calls_per_turn} tool calls per turn; "
                                                      "the remaining calls were not run"))
                    break
                if parsed.call is None:
                    episode.tool_errors += 1
                    observations.append(self._message(f"Error: {parsed.error}"))
                    continue
                episode.tool_calls += 1
                if parsed.call.name == "submit":
                    episode.submitted = True
                    return self._end(episode, "submit")
                t0 = time.monotonic()
                text, ok = self._execute(episode, parsed.call)
                episode.tool_seconds += time.monotonic() - t0
                episode.tool_errors += not ok
                observations.append(self._message(text))
                if episode.tool_seconds >= c.max_episode_seconds:  # this call spent the time budget
                    return self._end(episode, "timeout")
            if episode.turns >= c.max_turns:
                return self._end(episode, "max_turns")
            return StepResult(observations, False)

    def finish(self, episode: Episode, reason: str) -> dict[str, Any]:
        with episode.lock:
            if episode.info is not None:
                return episode.info
            return self._end(episode, reason).info

    def _execute(self, episode: Episode, call: ToolCall) -> tuple[str, bool]:
        """The observation of one call and whether the tool did its job."""
        c, sandbox = self.cfg, episode.sandbox
        assert sandbox is not None
        timeout = max(1.0, min(c.command_timeout, c.max_episode_seconds - episode.tool_seconds))
        if call.name in FILE_TOOLS:
            result = toolbox(self.backend, sandbox, call.name, call.arguments, timeout=timeout)
            if result.timed_out:
                return f"Error: {call.name} timed out", False
            if result.returncode == 0:
                return result.stdout or "(no output)", True
            if result.returncode == 2:
                return result.stdout, False
            return f"Error: {call.name} failed: {result.output.strip()[-1000:]}", False
        if call.name == "run":
            result = sandbox.run(["bash", "-c", call.arguments["command"]], timeout=timeout)
        else:  # run_tests
            target = call.arguments.get("path") or "tests"
            result = sandbox.run([self.backend.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no",
                                  target], timeout=timeout, env=PYTEST_ENV)
        output = result.output.rstrip("\n")  # one newline before the status line, not a blank line
        if result.timed_out:
            return f"{output}\n[timed out after {timeout:g} s; the command was killed]".lstrip(), True
        return f"{output}\n[exit code {result.returncode}]".lstrip(), True

    def _end(self, episode: Episode, reason: str) -> StepResult:
        c, task = self.cfg, episode.task
        verdict: Verdict | None = None
        patch, error = "", None
        try:
            if episode.sandbox is not None and (episode.submitted or c.grade_unsubmitted):
                changes = collect_changes(self.backend, episode.sandbox, task)
                patch = changes.patch
                episode.sandbox.close()
                verdict = grade(self.backend, task, changes, c.test_timeout)
        except Exception as e:  # noqa: BLE001  (an infrastructure failure scores 0 and is reported)
            error = f"{type(e).__name__}: {e}"
        finally:
            if episode.sandbox is not None:
                episode.sandbox.close()
            with self._lock:
                self._episodes.discard(episode)
        info: dict[str, Any] = {
            "instance_id": task.instance_id, "end_reason": reason, "submitted": episode.submitted,
            "turns": episode.turns, "tool_calls": episode.tool_calls, "tool_errors": episode.tool_errors,
            "seconds": round(time.monotonic() - episode.started, 3), "tool_seconds": round(episode.tool_seconds, 3),
            "model_patch": truncate_middle(patch, 4000),
            "verdict": None, "error": error,
        }
        if verdict is not None:
            v = verdict.to_dict()
            v["test_output"] = truncate_middle(v["test_output"], c.max_test_output_chars)
            info["verdict"] = v
        episode.info = info
        return StepResult([], True, info)

    def _message(self, text: str) -> dict[str, str]:
        return {"role": self.cfg.observation_role, "content": truncate_middle(text, self.cfg.max_observation_chars)}

    def close(self) -> None:
        with self._lock:
            episodes, self._episodes = list(self._episodes), set()
        for e in episodes:
            if e.sandbox is not None:
                e.sandbox.close()
        self.backend.close()

    def __enter__(self) -> "SWEEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
