"""The math environment's recipe section: procedural task families or a JSONL dataset.

Two sources of problems, exactly one per recipe:

- `tasks`: procedural families from reasoning-gym (Stojanovski et al. 2025, "REASONING GYM:
  Reasoning Environments for Reinforcement Learning with Verifiable Rewards"), mixed by weight, each
  with its own difficulty settings. Unlimited fresh problems at a difficulty you choose: the natural
  source for scaling curves on small models.
- `dataset`: a JSONL file of `{"question": ..., "answer": ...}` lines (MATH, GSM8K, DAPO-17k, ...),
  with the validation split held out from it or given as its own file (`val_dataset`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from envs.schema import Config, KeyedValueError

# The reasoning-gym families whose gold answer is one number that math_verify reads and compares
# reliably (checked on generated samples: every gold answer parses and verifies against itself, and
# an off-by-one answer is rejected). Families left out, and why:
#   fraction_simplification, prime_factorization: the question asks for a *form* of a value it
#     already states; math_verify compares values, so copying the input would score 1.
#   polynomial_multiplication, simple_integration, intermediate_integration: answers in Python
#     syntax (x**2) that math_verify's LaTeX parser misreads.
#   power_function: "3 significant figures" with e-notation answers; bitwise_arithmetic: hex answers;
#   complex_arithmetic, polynomial_equations: complex numbers and root lists in ad-hoc formats;
#   calendar_arithmetic, time_intervals: weekdays, dates and clock times.
# Everything else in reasoning-gym (puzzles, strings, grids, games) has non-numeric answers.
MATH_FAMILIES: tuple[str, ...] = (
    "basic_arithmetic",
    "chain_sum",
    "coin_flip",
    "count_bits",
    "count_primes",
    "decimal_arithmetic",
    "decimal_chain_sum",
    "dice",
    "gcd",
    "gsm_symbolic",
    "lcm",
    "leg_counting",
    "number_format",
    "products",
    "simple_equations",
    "simple_geometry",
)

# Set by the environment, never by the recipe: the seed derives from the env seed, the size from
# train_size / val_size.
_RESERVED_TASK_KEYS = ("seed", "size")


def reasoning_gym_datasets() -> dict[str, tuple[type, type]]:
    """reasoning-gym's registry: name -> (dataset class, config dataclass).

    Imported here rather than at module top: reasoning-gym takes about a second to import, and a
    recipe that reads a JSONL dataset (or the CLI's --help) should not pay for it."""
    import reasoning_gym  # noqa: F401  (importing registers every family)
    from reasoning_gym.factory import DATASETS

    return DATASETS


def allowed_families() -> list[str]:
    """The math families this reasoning-gym install registers."""
    registry = reasoning_gym_datasets()
    return [name for name in MATH_FAMILIES if name in registry]


class TaskConfig(Config):
    """One procedural family of the mixture."""

    name: str
    """A reasoning-gym dataset with numeric answers, e.g. chain_sum ("17 + 4 - 9 ="), basic_arithmetic
    (+ − × ÷ with parentheses), gsm_symbolic (grade-school word problems), simple_equations
    ("Solve for x: 3*x = 12"). An unknown name fails with the list of allowed ones."""
    weight: float = Field(1.0, gt=0.0)
    """Share of this family in the training and validation sets, relative to the other tasks'
    weights (normalised to sum to 1). Each epoch holds exactly its share, rounded."""
    config: dict[str, Any] = {}
    """Difficulty settings passed to reasoning_gym.create_dataset, e.g. for chain_sum
    {min_terms: 2, max_terms: 4, min_digits: 1, max_digits: 2}. The keys are the fields of the
    family's config dataclass (reasoning_gym/<category>/<name>.py); seed and size are set by the
    environment. Empty uses reasoning-gym's defaults."""

    @field_validator("name")
    @classmethod
    def _known_family(cls, name: str) -> str:
        allowed = allowed_families()
        if name in allowed:
            return name
        if name in reasoning_gym_datasets():
            raise ValueError(
                f"reasoning-gym's '{name}' has answers that math_verify cannot check (see MATH_FAMILIES in "
                f"envs/math/config.py); allowed math families: {', '.join(allowed)}"
            )
        raise ValueError(f"unknown reasoning-gym task '{name}'; allowed math families: {', '.join(allowed)}")

    @model_validator(mode="after")
    def _valid_difficulty(self) -> "TaskConfig":
        _, config_cls = reasoning_gym_datasets()[self.name]
        fields = [f.name for f in dataclasses.fields(config_cls) if f.name not in _RESERVED_TASK_KEYS]
        for key in self.config:
            if key in _RESERVED_TASK_KEYS:
                raise ValueError(
                    f"task '{self.name}': config key '{key}' is set by the environment (from the env seed and "
                    f"train_size/val_size); allowed keys: {', '.join(fields)}"
                )
            if key not in fields:
                raise ValueError(f"task '{self.name}': unknown config key '{key}'; allowed keys: {', '.join(fields)}")
        try:
            family_config = config_cls(**self.config)
            if hasattr(family_config, "validate"):
                family_config.validate()
        except (AssertionError, TypeError, ValueError) as e:
            raise ValueError(f"task '{self.name}': invalid config {self.config}: {e}") from None
        return self


class MathEnvConfig(Config):
    """Single-turn math problems with a verifiable numeric answer."""

    name: Literal["math"] = "math"
    """Selects this environment in the recipe's `env` section."""
    tasks: list[TaskConfig] = []
    """Procedural reasoning-gym families mixed by weight, e.g.
    [{name: chain_sum, config: {max_terms: 3}}, {name: basic_arithmetic, weight: 0.5}].
    Exactly one of `tasks` and `dataset` must be given."""
    dataset: str | None = None
    """Path to a JSONL file with one {"question": str, "answer": str or number} object per line
    (other keys are kept in the prompt's meta). Relative paths are taken from the working directory.
    Every line not held out for validation is in the training split (train_size does not apply)."""
    val_dataset: str | None = None
    """With `dataset`: a separate JSONL file for the validation split, used whole (val_size does not
    apply). Training lines whose question also appears here are dropped. None holds val_size lines
    out of `dataset` instead."""
    train_size: int = Field(10000, ge=1)
    """For `tasks`: distinct training problems generated per epoch (the epoch is this long unless
    the families' problem space is too small, see MathEnv). 10000 covers a 600-iteration run of 16
    prompts per iteration without repeating a problem."""
    val_size: int = Field(128, ge=1)
    """Held-out validation problems (generated for `tasks`, held out of `dataset`). 128 gives
    val/accuracy a standard error of about 0.04 at k=1; ScaleRL uses 1000 for its fits."""
    system_prompt: str | None = None
    """A system message put before the user message; None sends none (tiny models are usually
    trained without one)."""
    prompt_template: str = "{question}"
    """The user message; `{question}` is replaced by the problem text. Only `{question}` is
    substituted, so other braces are literal: "{question}\\nPut the final answer in \\boxed{}." works."""
    answer_format: Literal["boxed", "plain"] = "boxed"
    """How gold_completion (the supervised warm start's target) writes the answer: boxed gives
    "\\boxed{42}", what math_verify looks for first; plain gives "42" (the shortest target for a
    tiny model; math_verify then reads the last number)."""
    seed: int | None = None
    """Seeds problem generation, the validation split and the epoch orders. None uses the recipe's
    seed; set it to keep the same data and validation set across runs with different recipe seeds."""

    @field_validator("prompt_template")
    @classmethod
    def _template_has_question(cls, template: str) -> str:
        if "{question}" not in template:
            raise ValueError("prompt_template must contain '{question}' (where the problem text goes)")
        return template

    @model_validator(mode="after")
    def _one_source(self) -> "MathEnvConfig":
        if bool(self.tasks) == (self.dataset is not None):
            given = "both" if self.tasks else "neither"
            raise KeyedValueError(("tasks", "dataset"), (
                f"give exactly one source of problems, `tasks` (procedural reasoning-gym families) or `dataset` "
                f"(a JSONL file); got {given}"
            ))
        if self.val_dataset is not None and self.dataset is None:
            raise KeyedValueError(("val_dataset", "dataset"),
                                  "val_dataset needs `dataset` (procedural tasks generate their own validation set)")
        return self
