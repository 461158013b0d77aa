"""A sketching policy as a plain streaming operator: events in, ``K`` items per user kept.

This is what serving runs: no base model, no gradients. The state is ``O(K + τ)`` numbers per
user (item, rating and arrival index of each sketch slot and pending event, plus an event
counter). Events of many users are processed together: a chunk of events is cut into *rounds*
(the first event of every user in the chunk, then the second, ...), each round is one vectorised
step, so throughput grows with the number of users interleaved in a chunk.

Only model-free policies run here: a learned DiPS scorer, or reservoir sampling (Random).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from leanrec.data.loaders.sequences import positions_within_user
from leanrec.search.sketch.baselines import ReservoirDecider
from leanrec.search.sketch.policy import LearnedDecider, SketchScorer
from leanrec.search.sketch.policy_io import load_policy
from leanrec.search.sketch.streaming import Candidates, DecisionInputs, SketchDecider


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
        self.decider: SketchDecider = (
            ReservoirDecider() if scorer is None else LearnedDecider(scorer, update_period == 1)
        )
        width = sketch_size + update_period
        # candidate table: K sketch slots then τ pending slots, per user
        self.items = torch.zeros((n_users, width), dtype=torch.long)
        self.ratings = torch.zeros((n_users, width), dtype=torch.float32)
        self.arrival = torch.full((n_users, width), -1, dtype=torch.long)
        self.n_pending = torch.zeros(n_users, dtype=torch.long)
        self.seen = torch.zeros(n_users, dtype=torch.long)
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def from_policy(cls, path: str | Path, n_users: int, seed: int = 0) -> StreamingSketcher:
        scorer, meta = load_policy(path)
        return cls(n_users, meta["sketch_size"], meta["update_period"], scorer, seed)

    def state_bytes(self) -> int:
        """Bytes of per-user state held (``O(K + τ)`` per user)."""
        tensors = (self.items, self.ratings, self.arrival, self.n_pending, self.seen)
        return sum(t.numel() * t.element_size() for t in tensors)

    def process(
        self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray | None = None
    ) -> None:
        """Feed events (in time order within each user), shape ``(n,)`` each."""
        users = np.asarray(users, dtype=np.int64)
        if len(users) == 0:
            return
        if users.min() < 0 or users.max() >= self.n_users:
            raise ValueError(f"user index out of range [0, {self.n_users})")
        rounds = positions_within_user(users)
        order = np.argsort(rounds, kind="stable")
        bounds = np.searchsorted(rounds[order], np.arange(int(rounds.max()) + 2))
        item_t = torch.from_numpy(np.asarray(items, dtype=np.int64))
        rating_t = (
            torch.zeros(len(users))
            if ratings is None
            else torch.from_numpy(np.asarray(ratings, dtype=np.float32))
        )
        user_t = torch.from_numpy(users)
        order_t = torch.from_numpy(order)
        with torch.no_grad():
            for r in range(len(bounds) - 1):
                chosen = order_t[bounds[r] : bounds[r + 1]]
                self._step(user_t[chosen], item_t[chosen], rating_t[chosen])

    def _step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        """One event for each of ``users`` (distinct)."""
        column = self.sketch_size + self.n_pending[users]
        self.items[users, column] = items
        self.ratings[users, column] = ratings
        self.arrival[users, column] = self.seen[users]
        self.seen[users] += 1
        self.n_pending[users] += 1
        due = users[self.n_pending[users] == self.update_period]
        if len(due) == 0:
            return
        arrival = self.arrival[due]
        valid = arrival >= 0
        is_new = torch.zeros_like(valid)
        is_new[:, self.sketch_size :] = valid[:, self.sketch_size :]
        latest = self.seen[due].unsqueeze(1) - 1
        candidates = Candidates(
            positions=arrival,
            items=self.items[due],
            ratings=self.ratings[due],
            age=torch.where(valid, latest - arrival, torch.zeros_like(arrival)),
            is_new=is_new,
            valid=valid,
            step=0,
        )
        decided = valid.sum(dim=1) > self.sketch_size
        keep = valid.clone()
        if bool(decided.any()):
            inputs = DecisionInputs(
                candidates, self.sketch_size, None, None, None, self.generator, False
            )
            keep = torch.where(decided.unsqueeze(1), self.decider.keep(inputs), valid)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
        width = self.items.shape[1]
        kept_sorted = keep.gather(1, order)
        new_items = self.items[due].gather(1, order)
        new_ratings = self.ratings[due].gather(1, order)
        new_arrival = torch.where(kept_sorted, arrival.gather(1, order), -1)
        new_arrival[:, self.sketch_size :] = -1
        self.items[due] = new_items
        self.ratings[due] = new_ratings
        self.arrival[due] = new_arrival
        self.n_pending[due] = 0
        assert width == new_items.shape[1]

    def sketch(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """The events user ``user`` has in their sketch (not the pending ones), oldest first."""
        arrival = self.arrival[user, : self.sketch_size]
        held = torch.nonzero(arrival >= 0).squeeze(1)
        held = held[torch.argsort(arrival[held])]
        return self.items[user, held].numpy(), self.ratings[user, held].numpy()
