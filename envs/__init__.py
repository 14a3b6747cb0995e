"""Environments: math (procedural and datasets), SWE (multi-turn, sandboxed)."""

from envs.base import Env, Prompt
from envs.math import MathEnv, MathEnvConfig


def make_env(cfg: MathEnvConfig, seed: int) -> Env:
    """The environment that `cfg` describes (chosen by `cfg.name`), seeded by the recipe seed
    unless the config sets its own."""
    if cfg.name not in ENVS:
        raise ValueError(f"unknown environment '{cfg.name}'; allowed: {', '.join(ENVS)}")
    return ENVS[cfg.name](cfg, seed)


ENVS = {"math": MathEnv}

__all__ = ["ENVS", "Env", "MathEnv", "MathEnvConfig", "Prompt", "make_env"]
