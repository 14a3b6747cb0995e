"""The recipe error, in a module of its own so that the command line can catch it without importing
the trainer (torch, transformers): `asymptote fit` runs in the core install (pyproject.toml).

KeyedValueError lives in envs/schema.py (the bottom layer, whose env configs raise it too); it is
re-exported here for the importers that name rl.errors."""

from envs.schema import KeyedValueError

__all__ = ["KeyedValueError", "RecipeError"]


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the source, the key and what is allowed."""
