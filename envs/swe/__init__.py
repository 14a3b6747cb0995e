"""SWE environments: multi-turn agents that edit code in a sandbox, rewarded by hidden tests."""

from envs.swe.config import SWEEnvConfig
from envs.swe.env import SWEEnv

__all__ = ["SWEEnv", "SWEEnvConfig"]
