"""Environments: math (procedural and datasets), code (unit tests in a sandbox), SWE (multi-turn, sandboxed)."""

from envs.base import Env, MultiTurnEnv, Prompt, StepResult, is_multi_turn
from envs.code import CodeEnv, CodeEnvConfig
from envs.math import MathEnv, MathEnvConfig
from envs.swe import SWEEnv, SWEEnvConfig


def make_env(cfg: MathEnvConfig | CodeEnvConfig | SWEEnvConfig, seed: int) -> Env:
    """The environment that `cfg` describes (chosen by `cfg.name`), seeded by the recipe seed
    unless the config sets its own."""
    if cfg.name not in ENVS:
        raise ValueError(f"unknown environment '{cfg.name}'; allowed: {', '.join(ENVS)}")
    return ENVS[cfg.name](cfg, seed)


ENVS = {"math": MathEnv, "code": CodeEnv, "swe": SWEEnv}

__all__ = [
    "ENVS", "CodeEnv", "CodeEnvConfig", "Env", "MathEnv", "MathEnvConfig", "MultiTurnEnv", "Prompt", "SWEEnv", "SWEEnvConfig", "StepResult",
    "is_multi_turn", "make_env",
]
