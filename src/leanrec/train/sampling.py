"""Vectorised negative sampling: no per-user Python loops."""

from __future__ import annotations

import numpy as np

from leanrec.data.interactions import Interactions


class NegativeSampler:
    """Draws, for each (user, positive) pair, items the user has not interacted with in ``train``.

    Membership is tested for a whole batch at once by ``searchsorted`` over the sorted keys
    ``user * I + item``, with the queries sorted first: consecutive queries then read nearby
    keys, so the search stays in cache however large the key array grows (queries in random
    order walk ``log2(n)`` levels of an array that outgrows the caches: at 16M training
    interactions that was 4.8x slower per query than at 0.4M, against 2x sorted).
    Collisions are redrawn for ``max_rounds`` rounds (each round only redraws the colliding
    entries). A user who has interacted with every item cannot get a true negative; after
    ``max_rounds`` the remaining collisions are left as they are (counted in
    :attr:`unresolved`).

    Args:
        train: the interactions that define what is positive.
        rng: the run's random generator.
        max_rounds: redraw rounds before giving up on a collision.
    """

    def __init__(self, train: Interactions, rng: np.random.Generator, max_rounds: int = 50) -> None:
        self.n_items = train.n_items
        self.keys = train.sorted_keys()
        self.rng = rng
        self.max_rounds = max_rounds
        self.unresolved = 0

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask, same shape as ``users``: is ``(user, item)`` a training interaction?"""
        keys = (users.astype(np.int64) * self.n_items + items).reshape(-1)
        order = np.argsort(keys)  # searched in key order, answered in the callers' order
        ordered = keys[order]
        pos = np.searchsorted(self.keys, ordered)
        np.minimum(pos, len(self.keys) - 1, out=pos)
        found = np.empty(len(keys), dtype=bool)
        found[order] = self.keys[pos] == ordered
        return found.reshape(np.shape(users))

    def sample(self, users: np.ndarray, n_negatives: int = 1) -> np.ndarray:
        """Negatives for ``users`` (B,): shape ``(B,)`` if ``n_negatives == 1`` else ``(B, n)``."""
        shape = (len(users),) if n_negatives == 1 else (len(users), n_negatives)
        user_grid = users if n_negatives == 1 else np.repeat(users[:, None], n_negatives, 1)
        items = self.rng.integers(0, self.n_items, size=shape, dtype=np.int64)
        bad = self.is_positive(user_grid, items)
        for _ in range(self.max_rounds):
            if not bad.any():
                break
            items[bad] = self.rng.integers(0, self.n_items, size=int(bad.sum()), dtype=np.int64)
            bad[bad] = self.is_positive(user_grid[bad], items[bad])
        self.unresolved += int(bad.sum())
        return items
