"""Seeds of one recipe: runs grouped by their resolved recipe (or wandb group), and labelled."""

from __future__ import annotations

import json

from analysis.readers.base import Run


# recipe sections that say where and how a run is recorded or run, not what it learns
_BOOKKEEPING = ("name", "seed", "logging", "checkpoint", "resources")


def _without_nulls(value):
    """A setting that is null (a default-off option) says the same as one that is absent: a recipe
    written before the option existed groups with one written after."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def recipe_key(run: Run) -> str:
    """What runs of one recipe share: the wandb group if set, else the recipe without its name, its
    seed and its bookkeeping (logging, checkpoint, resources: where the run was written, how often it
    was checkpointed, how many threads it used), nulls dropped."""
    if run.group:
        return f"group:{run.group}"
    if not run.recipe:
        return f"run:{run.name}"
    rest = {k: v for k, v in run.recipe.items() if k not in _BOOKKEEPING}
    return json.dumps(_without_nulls(rest), sort_keys=True, default=str)


def group_label(runs: list[Run]) -> str:
    """A name for a group of seeds: the wandb group, else the runs' common name prefix."""
    if runs[0].group:
        return runs[0].group
    if len(runs) == 1:
        return runs[0].name
    names = [r.name for r in runs]
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip("-_.")
    if prefix.endswith(("seed", "-s", "_s")):
        prefix = prefix.removesuffix("seed").removesuffix("-s").removesuffix("_s").rstrip("-_.")
    return prefix or "+".join(names)


def group_runs(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by recipe (seeds of one recipe together), labelled, in order of first appearance."""
    by_key: dict[str, list[Run]] = {}
    for r in runs:
        by_key.setdefault(recipe_key(r), []).append(r)
    out: dict[str, list[Run]] = {}
    for members in by_key.values():
        label = group_label(members)
        while label in out:
            label += "'"
        out[label] = members
    return out
