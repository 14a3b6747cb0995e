"""The math environment: single-turn problems whose answer a verifiable reward checks."""

from __future__ import annotations

from envs.base import EpochOrder, Prompt
from envs.math.config import MathEnvConfig
from envs.math.sources import Problem, dataset_splits, procedural_splits


class MathEnv:
    """Math problems from reasoning-gym families or a JSONL dataset (see MathEnvConfig).

    The training stream is addressed by position: position p is problem perm_e[p mod N] of epoch
    e = p div N, where N = epoch_size and perm_e is a permutation seeded by (seed, e). The same
    position always gives the same prompt, any slice (even across an epoch boundary) can be asked
    for, and a trainer resumes exactly from one stored integer.

    Both splits are built eagerly in the constructor (10000 chain_sum problems take about 0.2 s;
    slower families such as simple_equations about 0.4 s per 1000). No question of the validation
    set is in the training set, and no question repeats within an epoch; procedural_splits and
    dataset_splits in envs/math/sources.py say what happens when a task space is too small.

    Prompt ids are `<family>/<split>/<index>` for tasks (`chain_sum/train/123`) and
    `<file stem>/<split>/<line>` for datasets; `meta` holds the family, split, difficulty settings
    and where the problem came from (all JSON values).
    """

    name = "math"

    def __init__(self, cfg: MathEnvConfig, seed: int):
        self.cfg = cfg
        self.seed = cfg.seed if cfg.seed is not None else seed
        if cfg.tasks:
            self._train, self._val = procedural_splits(cfg.tasks, cfg.train_size, cfg.val_size, self.seed)
        else:
            assert cfg.dataset is not None  # the config guarantees one source
            self._train, self._val = dataset_splits(cfg.dataset, cfg.val_dataset, cfg.val_size, self.seed)
        self._val_prompts = [self._prompt(p) for p in self._val]
        self._order = EpochOrder(len(self._train), self.seed)

    @property
    def epoch_size(self) -> int:
        return len(self._train)

    def train_prompts(self, position: int, count: int) -> list[Prompt]:
        """Prompts at positions [position, position + count) of the training stream."""
        return [self._prompt(self._train[i]) for i in self._order.indices(position, count)]

    def val_prompts(self) -> list[Prompt]:
        """The validation prompts, always in the same (seeded, family-mixing) order."""
        return list(self._val_prompts)

    def gold_completion(self, prompt: Prompt) -> str:
        """The gold answer alone, as `\\boxed{answer}` or `answer` (cfg.answer_format)."""
        if self.cfg.answer_format == "boxed":
            return f"\\boxed{{{prompt.answer}}}"
        return prompt.answer

    def close(self) -> None:
        """Nothing to release (problems live in memory); kept for the Env protocol."""

    def __enter__(self) -> "MathEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prompt(self, problem: Problem) -> Prompt:
        # str.replace, not str.format: the template may hold literal braces such as \boxed{}.
        user = self.cfg.prompt_template.replace("{question}", problem.question)
        messages: tuple[dict[str, str], ...] = ({"role": "user", "content": user},)
        if self.cfg.system_prompt is not None:
            messages = ({"role": "system", "content": self.cfg.system_prompt},) + messages
        return Prompt(id=problem.id, messages=messages, answer=problem.answer, meta=dict(problem.meta))
