"""A sketching policy as a plain streaming operator: events in, ``K`` items per user kept.

This is what serving runs: no base model, no gradients, no torch. The state is ``O(K + τ)``
numbers per user (item, rating and arrival index of each sketch slot and pending event, plus two
counters). Events of many users are processed together: a chunk of events is cut into *rounds*
(the first event of every user in the chunk, then the second, ...), each round is one vectorised
NumPy step, so throughput grows with the number of users interleaved in a chunk.

Only model-free policies run here: a learned DiPS scorer (greedy, as evaluated), or reservoir
sampling (Random). Decisions match :func:`~leanrec.search.sketch.trainer.evaluate_sketch`'s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leanrec.data.loaders.sequences import positions_within_user
from leanrec.search.sketch.policy import NumpyScorer, SketchScorer
from leanrec.search.sketch.policy_io import load_policy


class StreamingSketcher:
    """Keeps a ``K``-item sketch for each of ``n_users`` users as their events arrive.

    Args:
        n_users: users are indices ``0 .. n_users - 1``.
        sketch_size: ``K``.
        update_period: ``τ`` (1: online).
        scorer: a learned policy; None runs reservoir sampling.
        seed: seeds reservoir sampling.

    Example::

        sketcher = StreamingSketcher.from_policy("policy_dips_K4_tau1.pt", n_users=1000)
        sketcher.process(users, items, ratings)     # any number of events, any order of users
        items, ratings = sketcher.sketch(42)        # user 42's current sketch
    """

    def __init__(
        self,
        n_users: int,
        sketch_size: int,
        update_period: int = 1,
        scorer: SketchScorer | None = None,
        seed: int = 0,
    ) -> None:
        self.n_users = n_users
        self.sketch_size = sketch_size
        self.update_period = update_period
        self.scorer: NumpyScorer | None = None if scorer is None else scorer.numpy_scorer()
        width = sketch_size + update_period
        # candidate table per user: K sketch slots, then τ pending slots
        self.items = np.zeros((n_users, width), dtype=np.int64)
        self.ratings = np.zeros((n_users, width), dtype=np.float32)
        self.arrival = np.full((n_users, width), -1, dtype=np.int64)
        self.n_pending = np.zeros(n_users, dtype=np.int64)
        self.seen = np.zeros(n_users, dtype=np.int64)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_policy(cls, path: str | Path, n_users: int, seed: int = 0) -> StreamingSketcher:
        scorer, meta = load_policy(path)
        return cls(n_users, meta["sketch_size"], meta["update_period"], scorer, seed)

    def state_bytes(self) -> int:
        """Bytes of per-user state held (``O(K + τ)`` per user)."""
        arrays = (self.items, self.ratings, self.arrival, self.n_pending, self.seen)
        return sum(a.nbytes for a in arrays)

    def process(
        self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray | None = None
    ) -> None:
        """Feed events (in time order within each user), shape ``(n,)`` each."""
        users = np.asarray(users, dtype=np.int64)
        if len(users) == 0:
            return
        if users.min() < 0 or users.max() >= self.n_users:
            raise ValueError(f"user index out of range [0, {self.n_users})")
        items = np.asarray(items, dtype=np.int64)
        ratings = (
            np.zeros(len(users), dtype=np.float32)
            if ratings is None
            else np.asarray(ratings, dtype=np.float32)
        )
        rounds = positions_within_user(users)
        order = np.argsort(rounds, kind="stable")
        bounds = np.searchsorted(rounds[order], np.arange(int(rounds.max()) + 2))
        for r in range(len(bounds) - 1):
            chosen = order[bounds[r] : bounds[r + 1]]
            self._step(users[chosen], items[chosen], ratings[chosen])

    def _step(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> None:
        """One event for each of ``users`` (distinct)."""
        k = self.sketch_size
        column = k + self.n_pending[users]
        self.items[users, column] = items
        self.ratings[users, column] = ratings
        self.arrival[users, column] = self.seen[users]
        self.seen[users] += 1
        self.n_pending[users] += 1
        due = users[self.n_pending[users] == self.update_period]
        if len(due) == 0:
            return
        self.n_pending[due] = 0
        arrival = self.arrival[due]
        valid = arrival >= 0
        decided = valid.sum(axis=1) > k
        if not decided.any():  # the sketch is not full yet: everything stays
            self._store(due, valid)
            return
        rows = due[decided]
        keep = valid.copy()
        keep[decided] = self._decide(rows, valid[decided])
        self._store(due, keep)

    def _decide(self, rows: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Keep mask ``(R, K + τ)`` for users ``rows`` whose candidates exceed ``K``."""
        k = self.sketch_size
        arrival = self.arrival[rows]
        if self.scorer is None:
            return self._reservoir(arrival, valid)
        is_new = np.zeros_like(valid)
        is_new[:, k:] = valid[:, k:]
        latest = self.seen[rows][:, None] - 1
        age = np.where(valid, latest - arrival, 0)
        scores = self.scorer(self.items[rows], self.ratings[rows], age, is_new, valid)
        masked = np.where(valid, scores, -np.inf)
        keep = np.zeros_like(valid)
        if self.update_period == 1:  # remove the most likely under softmax(-f): the lowest f
            keep[:] = valid
            keep[np.arange(len(rows)), np.argmin(np.where(valid, scores, np.inf), axis=1)] = False
        else:
            top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
            np.put_along_axis(keep, top, True, axis=1)
            keep &= valid
        return keep

    def _reservoir(self, arrival: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Vitter's reservoir: the ``t``-th event enters with probability ``K / t``."""
        k = self.sketch_size
        count = len(arrival)
        holder = np.where(valid[:, :k], np.arange(k)[None, :], -1)
        for column in range(k, arrival.shape[1]):
            present = valid[:, column]
            seen = arrival[:, column] + 1
            empty = holder < 0
            has_empty = empty.any(axis=1)
            first_empty = np.argmax(empty, axis=1)
            accept = self.rng.random(count) < k / np.maximum(seen, 1)
            victim = self.rng.integers(0, k, count)
            slot = np.where(has_empty, first_empty, victim)
            write = present & (has_empty | accept)
            holder[np.flatnonzero(write), slot[write]] = column
        keep = np.zeros_like(valid)
        rows, slots = np.nonzero(holder >= 0)
        keep[rows, holder[rows, slots]] = True
        return keep & valid

    def _store(self, users: np.ndarray, keep: np.ndarray) -> None:
        """Move the kept candidates to the sketch slots; clear the pending slots."""
        order = np.argsort(~keep, axis=1, kind="stable")
        kept = np.take_along_axis(keep, order, axis=1)
        self.items[users] = np.take_along_axis(self.items[users], order, axis=1)
        self.ratings[users] = np.take_along_axis(self.ratings[users], order, axis=1)
        arrival = np.where(kept, np.take_along_axis(self.arrival[users], order, axis=1), -1)
        arrival[:, self.sketch_size :] = -1
        self.arrival[users] = arrival

    def sketch(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """The events user ``user`` has in their sketch (not the pending ones), oldest first."""
        arrival = self.arrival[user, : self.sketch_size]
        held = np.flatnonzero(arrival >= 0)
        held = held[np.argsort(arrival[held])]
        return self.items[user, held], self.ratings[user, held]
