"""Fixtures for the analysis tests; the run-directory helpers are in synthetic_runs.py."""

from pathlib import Path

import pytest

from synthetic_runs import COMMITTED_RUN


@pytest.fixture
def committed_run() -> Path:
    return COMMITTED_RUN
