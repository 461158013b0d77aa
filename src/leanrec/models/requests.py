"""Checks of what a caller asks a model for: the IDs to rank for and the list length.

``torch.as_tensor([1.7], dtype=torch.int64)`` is ``tensor([1])``: without a check, a float ID
ranks for another user or item without a word. The ranking and next-item models check their
requests here, before any scoring, so the API refuses what the command line refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

NO_ITEM = -1
"""The item of a list position past a user's unrankable items (every other item excluded):
its score is ``-inf``, as FAISS marks a missing neighbour."""


def integer_ids(values: Any, what: str) -> np.ndarray:
    """``values`` (a list, array or tensor of integer IDs) as a flat int64 array.

    Raises:
        TypeError: a value that is not an integer (a float such as ``1.7``, a bool, a string:
            raw IDs go through the vocabulary first), naming the first one.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype.kind not in "iu":
        flat = array.reshape(-1)
        bad = next(
            (v for v in flat.tolist() if isinstance(v, bool) or not isinstance(v, int)), flat[0]
        )
        raise TypeError(
            f"{what} must be integer indices, got {bad!r} ({type(bad).__name__}); raw IDs are "
            "mapped to indices by the vocabulary (raw_ids=True, or vocab.to_index)"
        )
    return array.astype(np.int64, copy=False).reshape(-1)


def check_list_length(k: Any, n_items: int) -> int:
    """``k`` as an int in ``[1, n_items]``.

    Raises:
        TypeError: ``k`` is not an integer (``2.5``, ``True``).
        ValueError: ``k`` outside ``[1, n_items]``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k must be an integer, got {k!r} ({type(k).__name__})")
    if not 1 <= int(k) <= n_items:
        raise ValueError(f"k must be in [1, {n_items}] (the model's items), got {k}")
    return int(k)


def check_histories(histories: Any) -> Sequence[Sequence[int]]:
    """``histories`` as a sequence of item-ID sequences.

    Raises:
        TypeError: a flat list of IDs (one history is ``[[1, 2, 3]]``), or a history holding a
            value that is not an integer (position named).
    """
    if isinstance(histories, torch.Tensor | np.ndarray) and histories.ndim == 2:
        integer_ids(histories, "history item IDs")  # a float array is not truncated either
        return histories.tolist()  # type: ignore[no-any-return]
    if not isinstance(histories, Sequence) or isinstance(histories, str):
        kind = type(histories).__name__
        raise TypeError(f"histories must be a list of item-ID lists, got {kind}")
    for row, history in enumerate(histories):
        if not isinstance(history, Sequence | np.ndarray | torch.Tensor) or isinstance(
            history, str
        ):
            raise TypeError(
                f"history {row} is {history!r}, not a list of item IDs: one history is passed as "
                "[[1, 2, 3]]"
            )
        integer_ids(history, f"history {row}'s item IDs")
    return histories  # type: ignore[no-any-return]


def pad_past_unrankable(items: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """``items`` with :data:`NO_ITEM` wherever ``scores`` is ``-inf`` (an excluded item that
    ``topk`` took because fewer than ``k`` were left)."""
    return items.masked_fill(scores == -torch.inf, NO_ITEM)


__all__ = [
    "NO_ITEM",
    "check_histories",
    "check_list_length",
    "integer_ids",
    "pad_past_unrankable",
]
