"""Small random streams shared by the sketching tests."""

from __future__ import annotations

import numpy as np
import torch

from leanrec.search.sketch.streaming import StreamBatch


def random_batch(lengths: list[int], n_items: int = 30, seed: int = 0) -> StreamBatch:
    """Right-padded streams of the given lengths, uniform items and ratings 1-5."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    items = torch.from_numpy(rng.integers(0, n_items, (len(lengths), width)))
    ratings = torch.from_numpy(rng.integers(1, 6, (len(lengths), width)).astype(np.float32))
    return StreamBatch(items, ratings, torch.tensor(lengths))
