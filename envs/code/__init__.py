"""Single-turn coding tasks scored by unit tests run in a sandbox (rewards/code.py)."""

from envs.code.config import CodeEnvConfig
from envs.code.env import CodeEnv, load_tasks

__all__ = ["CodeEnv", "CodeEnvConfig", "load_tasks"]
