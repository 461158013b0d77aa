"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run the test with one torch thread (tiny tensors: more threads only add waiting, and
    one thread makes float reductions repeatable); the previous count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read the shared real datasets carry the ``realdata`` marker: they run in the
    default test run (and CI) when ``../shared/data`` is there, and ``-m 'not realdata'``
    leaves them out."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
