"""Rollout engines: hf (transformers generate); vLLM engines plug in behind the same protocol."""

from rl.rollout.base import Completion, Engine, SamplingParams

__all__ = ["Completion", "Engine", "SamplingParams"]
