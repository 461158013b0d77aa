"""One torch thread for the sequential-model tests (tiny tensors; threads only add waiting)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Every test here uses the shared ``one_torch_thread`` fixture of tests/conftest.py."""
