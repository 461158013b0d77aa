"""Per-user time-ordered interaction streams, and splits of *users* (not interactions).

A stream is what a sketching policy sees: one user's interactions, oldest first, arriving one
at a time. :class:`UserStreams` stores all of them CSR-style (one ``items`` array, one
``ratings`` array, ``offsets`` marking where each user's stream starts), so a batch of users is
padded into ``(B, L)`` tensors with one fancy-indexing call and no per-user Python loop.

:func:`user_split` splits the *users* (DiPS: 60/20/20 of the users for training, validation and
test), so validation and test users are never seen in training; the item vocabulary is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary, Interactions


@dataclass
class UserStreams:
    """Every user's interactions in time order.

    Attributes:
        offsets: start of each stream in ``items``, shape ``(n_streams + 1,)``, int64;
            stream ``s`` is ``items[offsets[s]:offsets[s + 1]]``.
        items: item index per event, shape ``(n_events,)``, int64, in ``[0, len(item_vocab))``.
        ratings: explicit rating per event, shape ``(n_events,)``, float32, or None (implicit).
        users: index (in ``user_vocab``) of the user behind each stream, shape ``(n_streams,)``.
        user_vocab: raw user IDs of the source interactions.
        item_vocab: raw item IDs (shared by every split of these streams).
        name: dataset name, for messages.
    """

    offsets: np.ndarray
    items: np.ndarray
    ratings: np.ndarray | None
    users: np.ndarray
    user_vocab: IdVocabulary
    item_vocab: IdVocabulary
    name: str = "streams"

    def __post_init__(self) -> None:
        self.offsets = np.ascontiguousarray(self.offsets, dtype=np.int64)
        self.items = np.ascontiguousarray(self.items, dtype=np.int64)
        self.users = np.ascontiguousarray(self.users, dtype=np.int64)
        if self.ratings is not None:
            self.ratings = np.ascontiguousarray(self.ratings, dtype=np.float32)
        if len(self.offsets) != len(self.users) + 1 or self.offsets[-1] != len(self.items):
            raise ValueError("offsets must have one entry per stream plus one, ending at n_events")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must be non-decreasing")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_interactions(cls, data: Interactions, min_length: int = 1) -> UserStreams:
        """Order each user's interactions by timestamp (ties keep file order).

        Args:
            data: interactions; without timestamps the row order is taken as time order.
            min_length: users with fewer interactions are left out (DiPS keeps users with at
                least 2: one event to sketch, one to predict).

        Raises:
            DataError: when no user has ``min_length`` interactions.
        """
        keys = data.timestamps if data.timestamps is not None else np.arange(len(data))
        order = np.lexsort((np.arange(len(data)), keys, data.users))
        users_sorted = data.users[order]
        counts = np.bincount(users_sorted, minlength=data.n_users)
        kept_users = np.flatnonzero(counts >= max(1, min_length))
        if len(kept_users) == 0:
            raise DataError(
                f"dataset {data.name!r}: no user has at least {min_length} interactions"
            )
        keep_event = (counts >= max(1, min_length))[users_sorted]
        order = order[keep_event]
        lengths = counts[kept_users]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return cls(
            offsets=offsets,
            items=data.items[order],
            ratings=None if data.ratings is None else data.ratings[order],
            users=kept_users,
            user_vocab=data.user_vocab,
            item_vocab=data.item_vocab,
            name=data.name,
        )

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        """Events per stream, shape ``(n_streams,)``."""
        return np.diff(self.offsets)

    @property
    def explicit(self) -> bool:
        return self.ratings is not None

    def stream(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Items (and ratings) of one stream, oldest first."""
        lo, hi = self.offsets[index], self.offsets[index + 1]
        return self.items[lo:hi], None if self.ratings is None else self.ratings[lo:hi]

    # ------------------------------------------------------------------ views
    def subset(self, streams: Sequence[int] | np.ndarray, name: str | None = None) -> UserStreams:
        """The given streams (in the given order), sharing the vocabularies."""
        streams = np.asarray(streams, dtype=np.int64)
        lengths = self.lengths[streams]
        event_index = _ranges(self.offsets[streams], lengths)
        return UserStreams(
            offsets=np.concatenate([[0], np.cumsum(lengths)]),
            items=self.items[event_index],
            ratings=None if self.ratings is None else self.ratings[event_index],
            users=self.users[streams],
            user_vocab=self.user_vocab,
            item_vocab=self.item_vocab,
            name=name or self.name,
        )

    def padded(
        self, streams: Sequence[int] | np.ndarray, max_length: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch of streams as right-padded arrays.

        Args:
            streams: stream indices, shape ``(B,)``.
            max_length: keep at most this many events per stream, the *first* ones (None: all).

        Returns:
            ``items`` ``(B, L)`` int64 (padding 0), ``ratings`` ``(B, L)`` float32 (zeros when
            implicit), ``lengths`` ``(B,)`` int64, with ``L`` the longest kept stream.
        """
        streams = np.asarray(streams, dtype=np.int64)
        lengths = self.lengths[streams]
        if max_length is not None:
            lengths = np.minimum(lengths, max_length)
        width = int(lengths.max()) if len(lengths) else 0
        position = np.arange(width)
        valid = position[None, :] < lengths[:, None]
        source = self.offsets[streams][:, None] + position[None, :]
        source = np.where(valid, source, 0)
        items = np.where(valid, self.items[source], 0)
        if self.ratings is None:
            ratings = np.zeros(items.shape, dtype=np.float32)
        else:
            ratings = np.where(valid, self.ratings[source], 0.0).astype(np.float32)
        return items, ratings, lengths

    def describe(self) -> dict[str, float | int | str]:
        lengths = self.lengths
        return {
            "name": self.name,
            "streams": len(self),
            "items": self.n_items,
            "events": self.n_events,
            "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
            "max_length": int(lengths.max()) if len(lengths) else 0,
        }


@dataclass
class StreamSplit:
    """Disjoint train / validation / test users, each with their whole streams."""

    train: UserStreams
    valid: UserStreams
    test: UserStreams

    def describe(self) -> dict[str, int]:
        return {
            "train_users": len(self.train),
            "valid_users": len(self.valid),
            "test_users": len(self.test),
            "items": self.train.n_items,
        }


def user_split(
    streams: UserStreams,
    ratios: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int | np.random.Generator = 0,
) -> StreamSplit:
    """Split the users at random into train / validation / test (DiPS: 60/20/20).

    The part sizes are ``rint(n * cumulative ratio)``, so they sum to ``n`` exactly.

    Raises:
        DataError: when a part would get no user.
    """
    total = float(sum(ratios))
    if total <= 0 or min(ratios) < 0:
        raise ValueError(f"ratios must be non-negative with a positive sum, got {ratios}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = len(streams)
    order = rng.permutation(n)
    first = int(np.rint(n * ratios[0] / total))
    second = int(np.rint(n * (ratios[0] + ratios[1]) / total))
    parts = (order[:first], order[first:second], order[second:])
    for label, part, ratio in zip(("train", "validation", "test"), parts, ratios, strict=True):
        if len(part) == 0 and ratio > 0:
            raise DataError(
                f"user split of {streams.name!r}: {n} users leave the {label} part empty"
            )
    return StreamSplit(
        train=streams.subset(np.sort(parts[0]), name=f"{streams.name}-train"),
        valid=streams.subset(np.sort(parts[1]), name=f"{streams.name}-valid"),
        test=streams.subset(np.sort(parts[2]), name=f"{streams.name}-test"),
    )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n), vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    group_offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    within = np.arange(total) - np.repeat(group_offsets, lengths)
    return np.repeat(starts, lengths) + within
