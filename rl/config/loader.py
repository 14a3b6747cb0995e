"""Loading a recipe: YAML files with `base:` inheritance, `key.sub=value` overrides, validation against
the Recipe, and error messages that say where and what (the file or override that set the key, the
key as the user wrote it, what is allowed)."""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rl.config.recipe import Recipe
from rl.errors import RecipeError


_OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)=(.*)$", re.S)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys to values, got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict, sources: dict, source: str, prefix: tuple = ()) -> dict:
    """Deep-merge `over` into a copy of `base`, recording which source set each key path (`sources`
    keeps the order in which values were set: bases first, then the recipe, then overrides)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = prefix + (key,)
        # a component of another name (algorithm.loss: {name: cispo} over a ppo_clip) replaces the
        # base's component instead of inheriting options that belong to the other one; the engine's
        # name is not such a component: its sampling settings (max_new_tokens, temperature ...) hold
        # for every engine, so engine.name=hf over a vllm recipe keeps them
        renamed = (key != "engine" or bool(prefix)) and isinstance(value, dict) and isinstance(out.get(key), dict) \
            and value.get("name", out[key].get("name")) != out[key].get("name")
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not renamed:
            out[key] = _merge(out[key], value, sources, source, path)
        else:
            out[key] = copy.deepcopy(value)
            for stale in [p for p in sources if p[: len(path)] == path]:  # what this value replaces
                del sources[stale]
            sources[path] = source  # insertion order = the order the settings were applied
    return out


def _load_with_bases(path: Path, sources: dict, chain: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in chain:
        raise RecipeError(f"{path}: 'base' inheritance loops: " + " -> ".join(str(p) for p in chain + (path,)))
    data = _read_yaml(path)
    base_name = data.pop("base", None)
    merged: dict = {}
    if base_name is not None:
        if not isinstance(base_name, str):
            raise RecipeError(f"{path}: 'base' must be a path to another recipe, got {base_name!r}")
        merged = _load_with_bases((path.parent / base_name), sources, chain + (path,))
    return _merge(merged, data, sources, str(path), ())


def parse_override(text: str) -> tuple[list[str], Any]:
    m = _OVERRIDE.match(text)
    if not m:
        raise RecipeError(f"override {text!r}: expected key.sub=value, e.g. train.iterations=50")
    try:
        value = yaml.safe_load(m.group(2)) if m.group(2).strip() else ""
    except yaml.YAMLError as e:
        raise RecipeError(f"override {text!r}: the value is not valid YAML: {e}") from None
    return m.group(1).split("."), value


def _nest(keys: list[str], value: Any) -> dict:
    out: Any = value
    for key in reversed(keys):
        out = {key: out}
    return out


def _walk(loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """Follow a validation-error location through the schema.

    Returns the key as a user writes it (pydantic puts a discriminated union's tag in the location:
    `algorithm.loss.ppo_clip.clip_low`; the user wrote `algorithm.loss.clip_low`) and the config
    class found there (to list its allowed keys)."""
    keys: list[str] = []
    members: list[type[BaseModel]] = [Recipe]
    union = False  # whether `members` came from a discriminated union (whose tag comes next)
    for part in loc:
        tagged = [m for m in members if _tag(m) == part]
        if union and tagged:
            members, union = tagged, False
            continue
        keys.append(str(part))
        field = _fields(members[0]).get(part) if len(members) == 1 and isinstance(part, str) else None
        members = _union_members(field.annotation) if field is not None else []
        union = field is not None and field.discriminator is not None
    return keys, members[0] if len(members) == 1 and not union else None


def _field_at(keys: list[str]):
    """The pydantic field at a printed key path, or None."""
    members: list[type[BaseModel]] = [Recipe]
    field = None
    for key in keys:
        field = _fields(members[0]).get(key) if len(members) == 1 else None
        if field is None:
            return None
        members = _union_members(field.annotation)
    return field


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A config class's fields by the key a recipe writes (its alias, e.g. `async`, else its name)."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _union_members(tp: Any) -> list[type[BaseModel]]:
    args = typing.get_args(tp)
    if not args:
        return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []
    out: list[type[BaseModel]] = []
    for a in args:
        out.extend(_union_members(a))
    return out


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("name")
    return field.default if field is not None else None


def _setter(keys: list[str], sources: dict) -> tuple[int, str] | None:
    """(order, source) of the last setting that gave the key its value: the key itself or a key
    inside it (algorithm.advantage.baseline for algorithm.advantage), else the nearest mapping above
    it that a file or override set; None if nothing did (a schema default)."""
    path = tuple(keys)
    ordered = list(sources.items())
    inside = [(i, src) for i, (p, src) in enumerate(ordered) if p[: len(path)] == path]
    if inside:
        return max(inside)
    for n in range(len(path) - 1, 0, -1):
        if path[:n] in sources:
            return [p for p, _ in ordered].index(path[:n]), sources[path[:n]]
    return None


def _offending_key(keys: list[str], error: Exception | None, sources: dict) -> list[str]:
    """The key an error is about. A model validator's error sits at the model (`algorithm`); a
    KeyedValueError names the keys involved, and of those the one set last is reported (the setting
    that made the combination invalid: `group_size: 1` in a recipe over a grpo base, not the base)."""
    named = getattr(error, "keys", None)
    if not isinstance(error, ValueError) or not isinstance(named, tuple) or not named:
        return keys
    candidates = [keys + k.split(".") for k in named]
    set_by = [(_setter(c, sources) or (-1, ""), -i) for i, c in enumerate(candidates)]  # ties: the first named
    return candidates[max(range(len(candidates)), key=lambda i: set_by[i])]


def _format_errors(err: ValidationError, sources: dict, main: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        keys, _ = _walk(loc)
        if e["type"] == "value_error":
            keys = _offending_key(keys, e.get("ctx", {}).get("error"), sources)
        key = ".".join(keys) or "<recipe>"
        setter = _setter(keys, sources)
        source = setter[1] if setter else main
        if e["type"] == "extra_forbidden":
            _, parent = _walk(loc[:-1])
            allowed = ", ".join(_fields(parent)) if parent is not None else "?"
            msg = f"unknown key '{loc[-1]}'; allowed keys here: {allowed}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "union_tag_not_found":
            field_members = _union_members(_field_at(keys).annotation) if _field_at(keys) else []
            allowed = ", ".join(repr(_tag(m)) for m in field_members)
            msg = f"missing 'name' (which one?); allowed: {allowed}"
        elif e["type"] == "union_tag_invalid":
            ctx = e["ctx"]
            msg = f"unknown {ctx['discriminator'].strip(chr(39))} {ctx['tag']!r}; allowed: {ctx['expected_tags']}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and not isinstance(e["input"], dict):
                msg += f" (got {e['input']!r})"
        lines.append(f"{source}: {key}: {msg}")
    return "invalid recipe:\n  " + "\n  ".join(lines)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file with its bases, apply `key.sub=value` overrides, validate."""
    path = Path(path)
    sources: dict[tuple, str] = {}
    data = _load_with_bases(path, sources)
    for text in overrides:
        keys, value = parse_override(text)
        data = _merge(data, _nest(keys, value), sources, f"override '{text}'")
    return recipe_from_dict(data, sources, str(path))


def recipe_from_dict(data: dict, sources: dict | None = None, source: str = "<recipe>") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_errors(e, sources or {}, source)) from None


def dump_recipe(recipe: Recipe) -> str:
    """The fully resolved recipe as YAML (written to the run directory)."""
    return yaml.safe_dump(recipe.model_dump(mode="json", by_alias=True), sort_keys=False)
