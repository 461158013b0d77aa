"""No look-ahead along a stream: a growing ID vocabulary and running per-ID frequency counters.

:class:`StreamVocabulary` sees one chunk of keys at a time. A key it has never seen gets the
next index (in order of first appearance, also inside a chunk); every key's counter only grows
(it never resets). For each event it returns the index and the number of *earlier* events of the
same ID at the time of the event, which is what a frequency-aware policy may know then (the
count includes earlier events of the same chunk, never the event itself or later ones).

Keys are non-negative integers of a dense-ish range, e.g. the first-appearance codes of an
:class:`~leanrec.data.events.EventStream` (then index == code; the vocabulary still checks
nothing is skipped). The key -> index map is a dense int64 array grown by doubling, so every
operation is vectorised and O(chunk) amortised, with no hashing and no per-ID Python loop.
:class:`StreamCounters` holds one vocabulary per ID field of a stream.

Example (a chunk where ``7`` repeats; by hand: first 7 -> index 0, seen 0 times before; 3 ->
index 1; second 7 -> index 0, seen once before):
    >>> vocab = StreamVocabulary("user")
    >>> index, before = vocab.observe([7, 3, 7])
    >>> index.tolist(), before.tolist()
    ([0, 1, 0], [0, 0, 1])
    >>> vocab.observe([3, 9])[1].tolist(), vocab.size
    ([1, 0], 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leanrec.data.events import Chunk, EventStream


def _grown(array: np.ndarray, needed: int, fill: int) -> np.ndarray:
    """``array`` with length at least ``needed`` (doubling), new entries set to ``fill``."""
    if needed <= len(array):
        return array
    capacity = max(needed, 2 * len(array), 16)
    out = np.full(capacity, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out


def occurrence_rank(index: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same value, shape ``(n,)``.

    Example: ``[5, 2, 5, 5, 2] -> [0, 0, 1, 2, 1]``. Vectorised: one stable argsort.
    """
    n = len(index)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    position = np.arange(n, dtype=np.int64)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = sorted_index[1:] != sorted_index[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, position, 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = position - group_start
    return rank


class StreamVocabulary:
    """A growing vocabulary of one ID field with per-ID counters that never reset.

    State (all grown by doubling): ``index_of_key`` (key -> index or -1), ``key_of_index``
    (index -> key) and ``counts`` (index -> events seen so far).

    Args:
        name: field name, for messages.
    """

    def __init__(self, name: str = "id") -> None:
        self.name = name
        self.size = 0
        """Distinct keys seen so far (indices ``0..size-1`` are in use)."""
        self._index_of_key = np.full(0, -1, dtype=np.int64)
        self._key_of_index = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ stream step
    def observe(self, keys: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See one chunk of events in order; assign indices to new keys and count them.

        Args:
            keys: key per event, shape ``(n,)``, non-negative integers.

        Returns:
            ``(index, count_before)``, each shape ``(n,)`` int64: the vocabulary index of each
            event's key, and how many events of that key came before this event (earlier
            chunks plus earlier positions in this chunk).
        """
        keys = np.asarray(keys, dtype=np.int64)
        if len(keys) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        if keys.min() < 0:
            raise ValueError(f"{self.name} keys must be non-negative, got {int(keys.min())}")
        self._index_of_key = _grown(self._index_of_key, int(keys.max()) + 1, -1)
        index = self._index_of_key[keys]
        is_new = index < 0
        if is_new.any():
            new_keys, first_position = np.unique(keys[is_new], return_index=True)
            new_keys = new_keys[np.argsort(first_position)]  # first-appearance order
            new_index = self.size + np.arange(len(new_keys), dtype=np.int64)
            self._index_of_key[new_keys] = new_index
            self._key_of_index = _grown(self._key_of_index, self.size + len(new_keys), -1)
            self._key_of_index[new_index] = new_keys
            self.size += len(new_keys)
            self._counts = _grown(self._counts, self.size, 0)
            index = self._index_of_key[keys]
        count_before = self._counts[index] + occurrence_rank(index)
        seen, times = np.unique(index, return_counts=True)
        self._counts[seen] += times
        return index, count_before

    # ------------------------------------------------------------------ queries
    def index_of(self, keys: Sequence[int] | np.ndarray) -> np.ndarray:
        """Index of each key, -1 for a key not seen yet, shape ``(n,)`` (no state change)."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.full(len(keys), -1, dtype=np.int64)
        known = (keys >= 0) & (keys < len(self._index_of_key))
        out[known] = self._index_of_key[keys[known]]
        return out

    def keys(self) -> np.ndarray:
        """Key of each index, shape ``(size,)`` (a copy)."""
        return self._key_of_index[: self.size].copy()

    def counts(self) -> np.ndarray:
        """Events seen so far per index, shape ``(size,)`` (a copy)."""
        return self._counts[: self.size].copy()

    def nbytes(self) -> int:
        """Bytes this vocabulary holds (allocated arrays, not just the used part): per-ID state
        that counts towards embedding bytes."""
        return int(self._index_of_key.nbytes + self._key_of_index.nbytes + self._counts.nbytes)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """The used part of the state (arrays copied): enough to continue after a restart."""
        return {
            "name": self.name,
            "keys": self.keys(),
            "counts": self.counts(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StreamVocabulary:
        """A vocabulary continuing exactly where the one that wrote ``state`` stopped."""
        vocab = cls(str(state["name"]))
        keys = np.asarray(state["keys"], dtype=np.int64)
        counts = np.asarray(state["counts"], dtype=np.int64)
        if len(keys) != len(counts):
            raise ValueError("vocabulary state: keys and counts differ in length")
        vocab.size = len(keys)
        if len(keys):
            vocab._index_of_key = _grown(vocab._index_of_key, int(keys.max()) + 1, -1)
            vocab._index_of_key[keys] = np.arange(len(keys), dtype=np.int64)
        vocab._key_of_index = _grown(vocab._key_of_index, len(keys), -1)
        vocab._key_of_index[: len(keys)] = keys
        vocab._counts = _grown(vocab._counts, len(keys), 0)
        vocab._counts[: len(keys)] = counts
        return vocab

    def __repr__(self) -> str:
        return f"StreamVocabulary({self.name}, size={self.size})"


@dataclass
class ObservedEvents:
    """What the counters knew about each event of a chunk, at the time of the event.

    Attributes:
        index: per ID field, the vocabulary index of each event's ID, shape ``(n,)``.
        count_before: per ID field, the number of earlier events of that ID, shape ``(n,)``.
        sizes: per ID field, the vocabulary size after the chunk (rows a model may need).
    """

    index: dict[str, np.ndarray]
    count_before: dict[str, np.ndarray]
    sizes: dict[str, int]

    @property
    def user_index(self) -> np.ndarray:
        return self.index["user"]

    @property
    def item_index(self) -> np.ndarray:
        return self.index["item"]

    @property
    def user_count(self) -> np.ndarray:
        return self.count_before["user"]

    @property
    def item_count(self) -> np.ndarray:
        return self.count_before["item"]


class StreamCounters:
    """One :class:`StreamVocabulary` per ID field of an :class:`EventStream`.

    Args:
        fields: ID fields to follow (default ``("user", "item")``).
    """

    def __init__(self, fields: Sequence[str] = ("user", "item")) -> None:
        self.vocabularies = {name: StreamVocabulary(name) for name in fields}

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.vocabularies)

    def observe(self, events: EventStream) -> ObservedEvents:
        """Observe the events of one chunk (in stream order) for every followed field."""
        index: dict[str, np.ndarray] = {}
        count_before: dict[str, np.ndarray] = {}
        for name, vocab in self.vocabularies.items():
            if name not in events.ids:
                raise KeyError(f"the stream has no ID field {name!r}; fields: {list(events.ids)}")
            index[name], count_before[name] = vocab.observe(events.ids[name].codes)
        sizes = {name: vocab.size for name, vocab in self.vocabularies.items()}
        return ObservedEvents(index, count_before, sizes)

    def replay(self, stream: EventStream, chunks: Sequence[Chunk]) -> None:
        """Observe ``chunks`` of ``stream`` without a model: rebuilds the counters of a run that
        stopped after them (cheap: counting only)."""
        for chunk in chunks:
            self.observe(stream[chunk])

    def nbytes(self) -> int:
        """Bytes held by all vocabularies (per-ID state)."""
        return sum(vocab.nbytes() for vocab in self.vocabularies.values())

    def state_dict(self) -> dict[str, Any]:
        return {name: vocab.state_dict() for name, vocab in self.vocabularies.items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StreamCounters:
        counters = cls(tuple(state))
        counters.vocabularies = {
            name: StreamVocabulary.from_state_dict(s) for name, s in state.items()
        }
        return counters
