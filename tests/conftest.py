"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/conftest.py -> parents: [0] tests, [1] the repo (/work/main), [2] its parent (/work).
# Equivalent to ``Path(__file__).resolve().parents[3]`` from a file in tests/<pkg>/.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets shared next to the repo (never copied into it); the test is
    skipped when it is absent (e.g. on CI machines without the data)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not available at {SHARED_DATA}")
    return SHARED_DATA
