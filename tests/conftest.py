"""Shared fixtures: a tiny model built once per test session (no downloads)."""

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from rl.models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir):
    """The tiny model, loaded once per test module (engine tests train it and sync engines to it)."""
    from rl.models import load_model

    return load_model(tiny_model_dir)
