"""The code environment: single-turn Python function tasks whose unit tests the code_tests reward runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from envs.base import EpochOrder, Prompt, jsonl_objects
from envs.code.config import CodeEnvConfig
from envs.base import derive_seed

REQUIRED = ("id", "question", "tests")


def load_tasks(path: str | Path) -> list[dict]:
    """The tasks of a JSONL file, checked: every line has id, question and a non-empty list of
    test snippets that compile; ids are unique."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"code tasks file {path} does not exist")
    tasks, seen = [], set()
    for where, _, task in jsonl_objects(path):
        missing = [k for k in REQUIRED if k not in task]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}; a task needs {', '.join(REQUIRED)}")
        tests = task["tests"]
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"{where}: 'tests' must be a non-empty list of Python snippets (strings)")
        for t in tests:
            try:
                compile(t, where, "exec")
            except SyntaxError as e:
                raise ValueError(f"{where}: test {t!r} is not valid Python ({e.msg})") from None
        if task["id"] in seen:
            raise ValueError(f"{where}: task id {task['id']!r} repeats; ids must be unique")
        seen.add(task["id"])
        tasks.append(task)
    return tasks


class CodeEnv:
    """Tasks of a JSONL file, split into train and val by a seeded shuffle; the training stream is
    addressed by position like MathEnv's (epoch e, seeded permutation). Prompt ids are
    `<file stem>/<split>/<task id>`; meta holds the tests (read by the code_tests reward) and the
    entry point."""

    name = "code"

    def __init__(self, cfg: CodeEnvConfig, seed: int):
        self.cfg = cfg
        self.seed = cfg.seed if cfg.seed is not None else seed
        tasks = load_tasks(cfg.dataset)
        if cfg.val_size >= len(tasks):
            raise ValueError(f"env.val_size ({cfg.val_size}) must leave training tasks: {cfg.dataset} has {len(tasks)}")
        order = np.random.default_rng(derive_seed(self.seed, "code-split")).permutation(len(tasks))
        stem = Path(cfg.dataset).stem
        self._val = [self._prompt(tasks[i], stem, "val") for i in order[: cfg.val_size]]
        self._train = [self._prompt(tasks[i], stem, "train") for i in order[cfg.val_size :]]
        self._order = EpochOrder(len(self._train), self.seed)

    @property
    def epoch_size(self) -> int:
        return len(self._train)

    def train_prompts(self, position: int, count: int) -> list[Prompt]:
        return [self._train[i] for i in self._order.indices(position, count)]

    def val_prompts(self) -> list[Prompt]:
        return list(self._val)

    def gold_completion(self, prompt: Prompt) -> str:
        if not prompt.answer:
            raise ValueError(f"task {prompt.id} has no reference solution for a gold completion")
        code = prompt.answer.rstrip("\n")
        return f"```python\n{code}\n```" if self.cfg.gold_format == "fenced" else code

    def close(self) -> None:
        pass

    def __enter__(self) -> "CodeEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prompt(self, task: dict, stem: str, split: str) -> Prompt:
        user = self.cfg.prompt_template.replace("{question}", task["question"])
        messages: tuple[dict[str, str], ...] = ({"role": "user", "content": user},)
        if self.cfg.system_prompt is not None:
            messages = ({"role": "system", "content": self.cfg.system_prompt},) + messages
        meta = {"tests": list(task["tests"]), "entry_point": task.get("entry_point"), "split": split, "task": task["id"]}
        return Prompt(id=f"{stem}/{split}/{task['id']}", messages=messages, answer=task.get("solution", ""), meta=meta)
