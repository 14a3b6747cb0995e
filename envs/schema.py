"""The foundation of every recipe schema: the pydantic base of the config classes, and the error a
validator raises about particular keys.

It lives in envs/, the bottom layer, so that every package's config can import it without an
upward import: envs/ may import nothing of rewards/ or rl/, rewards/ nothing of rl/, and the
schemas of all three (the env's section, the reward's, the trainer's components) share this base.
It needs pydantic and nothing else: importing a schema never loads torch, transformers or a
verifier (rl/config/ assembles the schemas into the Recipe and stays that light).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class KeyedValueError(ValueError):
    """A schema validator's error about particular keys, given relative to the config that raises it
    (`KeyedValueError(("group_size", "advantage"), "...")` in AlgorithmConfig). pydantic reports a
    model validator's error at the model itself (`algorithm`), so the loader would name the file that
    set the `algorithm` mapping (often a base recipe); with the keys it names the key and the file or
    override that set the offending value instead: of the keys named, the one set last (the setting
    that made the combination invalid). Torch-free and dependency-free: envs/ raise it too."""

    def __init__(self, keys: str | tuple[str, ...] | list[str], message: str):
        super().__init__(message)
        self.keys = (keys,) if isinstance(keys, str) else tuple(keys)


class Config(BaseModel):
    """A recipe section: unknown keys are errors, attribute docstrings are the fields' documentation,
    and a validated config is immutable."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _default_component_names(cls, data: Any) -> Any:
        """A component given without `name` (e.g. the override algorithm.loss.clip_high=0.28)
        keeps the default component's name. Shared by every section, since the loader merges every
        section alike (a component of another name replaces the base's); a no-op for a config with
        no component field (a discriminated union with a default)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, field in cls.model_fields.items():
            default_name = getattr(field.default, "name", None)
            if field.discriminator and default_name and isinstance(data.get(key), dict) and "name" not in data[key]:
                data[key] = {**data[key], "name": default_name}
        return data
