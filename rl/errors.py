"""The recipe error, in a module of its own so that the command line can catch it without importing
the trainer (torch, transformers): `asymptote fit` runs in the core install (pyproject.toml)."""


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the source, the key and what is allowed."""
