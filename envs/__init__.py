"""Environments: math (procedural and datasets), SWE (multi-turn, sandboxed)."""

from envs.base import Env, MultiTurnEnv, Prompt, StepResult, is_multi_turn
from envs.math import MathEnv, MathEnvConfig
from envs.swe import SWEEnv, SWEEnvConfig


def make_env(cfg: MathEnvConfig | SWEEnvConfig, seed: int) -> Env:
    """The environment that `cfg` describes (chosen by `cfg.name`), seeded by the recipe seed
    unless the config sets its own."""
    if cfg.name not in ENVS:
        raise ValueError(f"unknown environment '{cfg.name}'; allowed: {', '.join(ENVS)}")
    return ENVS[cfg.name](cfg, seed)


ENVS = {"math": MathEnv, "swe": SWEEnv}

__all__ = [
    "ENVS", "Env", "MathEnv", "MathEnvConfig", "MultiTurnEnv", "Prompt", "SWEEnv", "SWEEnvConfig", "StepResult",
    "is_multi_turn", "make_env",
]
