"""The math environment: procedural reasoning-gym families or JSONL datasets, verified by math_verify."""

from envs.math.config import MathEnvConfig, TaskConfig
from envs.math.env import MathEnv

__all__ = ["MathEnv", "MathEnvConfig", "TaskConfig"]
