"""The recipe error, in a module of its own so that the command line can catch it without importing
the trainer (torch, transformers): `asymptote fit` runs in the core install (pyproject.toml)."""


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the source, the key and what is allowed."""


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
