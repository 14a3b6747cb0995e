"""Environments: math (procedural and datasets), SWE (multi-turn, sandboxed)."""

from envs.base import Env, Prompt

__all__ = ["Env", "Prompt"]
