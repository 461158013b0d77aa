"""Seeding torch for one block of code without touching the caller's generator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_seeded(seed: int | None) -> Iterator[None]:
    """Run the block on a fork of torch's CPU generator, seeded with ``seed``.

    What the block draws (initial weights, say) then depends on ``seed`` alone, not on what ran
    before it in the process: torch's default generator starts from a different seed in every
    process. The caller's generator is left exactly as it was. ``seed=None`` forks without
    reseeding: the block draws from the caller's stream, which does not advance.

    Example:
        >>> with torch_seeded(0):
        ...     layer = torch.nn.Linear(4, 2)  # the same weights in every process
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        yield
