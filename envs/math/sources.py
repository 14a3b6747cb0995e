"""Where math problems come from: reasoning-gym families or JSONL files, split into train and val.

Both sources return two lists of `Problem` (train, val) with no question text in common and no
question repeated within a list. Everything is a function of the arguments, seed included.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.base import derive_seed, jsonl_objects  # derive_seed: re-exported for envs.math users
from envs.math.config import TaskConfig, reasoning_gym_datasets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """A question with its gold answer, before the prompt template is applied."""

    id: str
    question: str
    answer: str
    meta: dict[str, Any]


def allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integer parts proportional to `weights` (largest remainder; ties go to the
    earlier entry), so the parts sum exactly to `total`."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _json_safe(value: Any) -> Any:
    """reasoning-gym metadata as plain JSON types (tuples become lists, odd objects strings)."""
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------------------------
# Procedural: reasoning-gym families
# --------------------------------------------------------------------------------------------


def task_labels(tasks: list[TaskConfig]) -> list[str]:
    """The name that prefixes a task's prompt ids: the family name, or `name.i` (i its position in
    `tasks`) when the same family is listed twice (e.g. an easy and a hard chain_sum)."""
    names = [t.name for t in tasks]
    return [t.name if names.count(t.name) == 1 else f"{t.name}.{i}" for i, t in enumerate(tasks)]


def _draw(task: TaskConfig, label: str, split: str, count: int, seed: int, seen: set[str]) -> list[Problem]:
    """Up to `count` problems of one family whose questions are not in `seen` (which grows).

    reasoning-gym datasets are generated in chunks, each a fresh dataset with its own derived seed,
    until `count` new questions are found, or the family looks exhausted: the last
    max(256, 10·Q) draws brought nothing new, Q being the distinct questions met so far (for a space
    of Q questions, the chance that one is still unseen is then below 10·e^-10), or the draws reach
    20·count + 1000."""
    dataset_cls, config_cls = reasoning_gym_datasets()[task.name]
    problems: list[Problem] = []
    met: set[str] = set()
    drawn = misses = chunk = 0
    while len(problems) < count and misses < max(256, 10 * len(met)) and drawn < 20 * count + 1000:
        size = max(count - len(problems), 64)
        chunk_seed = derive_seed(seed, label, split, chunk)
        dataset = dataset_cls(config=config_cls(**task.config, seed=chunk_seed, size=size))
        for index in range(size):
            item = dataset[index]
            question = item["question"]
            drawn += 1
            met.add(question)
            if question in seen:
                misses += 1
                if misses >= max(256, 10 * len(met)):
                    break
                continue
            seen.add(question)
            misses = 0
            difficulty = item.get("metadata", {}).get("difficulty", {})
            problems.append(
                Problem(
                    id=f"{label}/{split}/{len(problems)}",
                    question=question,
                    answer=str(item["answer"]),
                    meta={
                        "family": task.name,
                        "split": split,
                        "difficulty": _json_safe(difficulty),
                        # create_dataset(family, seed=source_seed, **config)[source_index] regenerates it.
                        "source_seed": chunk_seed,
                        "source_index": index,
                    },
                )
            )
            if len(problems) == count:
                break
        chunk += 1
    return problems


def procedural_splits(
    tasks: list[TaskConfig], train_size: int, val_size: int, seed: int
) -> tuple[list[Problem], list[Problem]]:
    """Train and val sets of a weighted mixture of reasoning-gym families.

    Each family gets its weight's share of `train_size` and of `val_size` (largest-remainder
    rounding). The validation set is drawn first, from seeds of its own; then the training set,
    skipping every question already drawn, so no question is in both and none repeats within one.

    A family whose problem space is too small (chain_sum with 2 one-digit terms has 200 distinct
    questions) cannot fill its share: the validation set must be filled (ValueError otherwise); the
    training set keeps what there is, with a warning, and the epoch is shorter than train_size (its
    mixture shifts away from that family). A family left with no training problem is a ValueError.
    The validation set is returned in a seeded shuffle, so that any prefix of it mixes the families.
    """
    labels = task_labels(tasks)
    weights = [t.weight for t in tasks]
    seen: set[str] = set()

    val: list[Problem] = []
    for task, label, count in zip(tasks, labels, allocate(val_size, weights)):
        drawn = _draw(task, label, "val", count, seed, seen)
        if len(drawn) < count:
            raise ValueError(
                f"task '{label}' has only {len(drawn)} distinct questions for its {count} validation problems "
                f"(config {task.config}); widen its difficulty range or lower val_size"
            )
        val += drawn

    train: list[Problem] = []
    for task, label, count in zip(tasks, labels, allocate(train_size, weights)):
        if count == 0:
            raise ValueError(
                f"task '{label}' gets 0 of train_size={train_size} training problems at weight {task.weight}; "
                "raise its weight or train_size"
            )
        drawn = _draw(task, label, "train", count, seed, seen)
        if not drawn:
            raise ValueError(
                f"task '{label}' has no training problems left after holding out its validation questions "
                f"(config {task.config}); widen its difficulty range or lower val_size"
            )
        if len(drawn) < count:
            log.warning(
                "task '%s' has only %d distinct training questions besides the validation set (asked for %d); "
                "its epoch share is smaller",
                label,
                len(drawn),
                count,
            )
        train += drawn

    order = np.random.default_rng(derive_seed(seed, "val_order")).permutation(len(val))
    return train, [val[i] for i in order]


# --------------------------------------------------------------------------------------------
# Datasets: JSONL files
# --------------------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; each object has a non-empty string
    `question` and an `answer` (a string or a number). Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: JSONL file not found")
    rows = []
    for _, line_no, row in jsonl_objects(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{line_no}: expected an object with 'question' and 'answer'")
        question, answer = row.get("question"), row.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{path}:{line_no}: 'question' must be a non-empty string, got {question!r}")
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or str(answer).strip() == "":
            raise ValueError(f"{path}:{line_no}: 'answer' must be a non-empty string or a number, got {answer!r}")
        rows.append((line_no, row))
    if not rows:
        raise ValueError(f"{path}: no problems (the file is empty)")
    return rows


def _problem(path: Path, split: str, line_no: int, row: dict[str, Any]) -> Problem:
    extra = {k: v for k, v in row.items() if k not in ("question", "answer")}
    meta: dict[str, Any] = {"family": path.stem, "split": split, "source": str(path), "line": line_no}
    if extra:
        meta["fields"] = extra
    return Problem(id=f"{path.stem}/{split}/{line_no}", question=row["question"], answer=str(row["answer"]), meta=meta)


def dataset_splits(
    dataset: str, val_dataset: str | None, val_size: int, seed: int
) -> tuple[list[Problem], list[Problem]]:
    """Train and val sets from JSONL files. Ids are `<file stem>/<split>/<line number>`.

    With `val_dataset`, it is the whole validation set and the training set is `dataset` less any
    line whose question is in it (a warning says how many). Without, `val_size` of its questions,
    chosen by a shuffle seeded with `seed`, are held out. Either way a question repeated within a
    file is kept once (its first line), and the validation set is returned in a seeded shuffle (so
    any prefix of it is a fair sample)."""
    path = Path(dataset)
    rows = _unique(read_jsonl(path))
    if val_dataset is not None:
        val_path = Path(val_dataset)
        val = [_problem(val_path, "val", n, row) for n, row in _unique(read_jsonl(val_path))]
    else:
        if len(rows) <= val_size:
            raise ValueError(
                f"{path}: {len(rows)} distinct questions cannot give {val_size} validation problems and a "
                "non-empty training set; lower val_size or give val_dataset"
            )
        held = np.random.default_rng(derive_seed(seed, "holdout")).permutation(len(rows))[:val_size]
        val = [_problem(path, "val", *rows[i]) for i in held]

    val_questions = {p.question for p in val}
    train = [_problem(path, "train", n, row) for n, row in rows if row["question"] not in val_questions]
    if val_dataset is not None and len(train) < len(rows):
        log.warning("%s: dropped %d training lines whose question is in %s", path, len(rows) - len(train), val_dataset)
    if not train:
        raise ValueError(f"{path}: no training problems left after removing the validation questions")

    order = np.random.default_rng(derive_seed(seed, "val_order")).permutation(len(val))
    return train, [val[i] for i in order]


def _unique(rows: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """Rows with the first occurrence of each question only, in file order."""
    seen: set[str] = set()
    out = []
    for n, row in rows:
        if row["question"] not in seen:
            seen.add(row["question"])
            out.append((n, row))
    return out
