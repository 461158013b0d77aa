"""The interactions container every part of leanrec reads from.

An :class:`Interactions` holds parallel arrays of (user, item[, rating][, timestamp]) with users
and items already mapped to contiguous integer indices ``0..n-1`` by an :class:`IdVocabulary`.
Splits of one dataset share the same vocabularies (and so the same ``n_users`` / ``n_items``),
which is what lets a model trained on ``train`` be evaluated on ``test`` without remapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from leanrec.data.errors import DataError


class IdVocabulary:
    """Maps raw IDs (any hashable: int, str) to contiguous indices ``0..n-1`` and back.

    Example:
        >>> vocab = IdVocabulary.from_raw(["b", "a", "b", "c"])
        >>> vocab.to_index(["a", "c"]).tolist()
        [0, 2]
        >>> vocab.to_raw([2]).tolist()
        ['c']
    """

    def __init__(self, raw_ids: Sequence[Any] | np.ndarray, name: str = "id") -> None:
        raw = np.asarray(raw_ids)
        if raw.ndim != 1:
            raise ValueError(f"{name} vocabulary needs a 1-d array of raw IDs, got {raw.shape}")
        self.name = name
        self._raw = raw
        self._index: dict[Any, int] = {r: i for i, r in enumerate(raw.tolist())}
        if len(self._index) != len(raw):
            raise ValueError(f"{name} vocabulary has duplicate raw IDs")

    @classmethod
    def from_raw(cls, raw_ids: Sequence[Any] | np.ndarray, name: str = "id") -> IdVocabulary:
        """Vocabulary of the distinct values in ``raw_ids``, sorted (numbers numerically)."""
        return cls(np.unique(np.asarray(raw_ids)), name=name)

    @classmethod
    def identity(cls, n: int, name: str = "id") -> IdVocabulary:
        """Vocabulary whose raw IDs are already ``0..n-1``."""
        return cls(np.arange(n, dtype=np.int64), name=name)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, raw_id: object) -> bool:
        return raw_id in self._index

    @property
    def raw_ids(self) -> np.ndarray:
        """Raw IDs in index order, shape ``(n,)``."""
        return self._raw

    def to_index(self, raw_ids: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Indices of ``raw_ids``; raises :class:`KeyError` naming the first unknown raw ID."""
        raw = np.asarray(raw_ids)
        if self._raw.dtype.kind in "iu" and raw.dtype.kind in "iu" and self._is_sorted():
            pos = np.searchsorted(self._raw, raw)
            pos_clipped = np.minimum(pos, len(self._raw) - 1)
            bad = (pos >= len(self._raw)) | (self._raw[pos_clipped] != raw)
            if bad.any():
                raise KeyError(self._unknown_message(raw[bad][0].item()))
            return pos.astype(np.int64)
        out = np.empty(len(raw), dtype=np.int64)
        for i, r in enumerate(raw.tolist()):
            try:
                out[i] = self._index[r]
            except KeyError:
                raise KeyError(self._unknown_message(r)) from None
        return out

    def _unknown_message(self, raw_id: Any) -> str:
        """``unknown user ID 999999 (not among the 943 known user IDs)`` (a plain Python value,
        never ``np.int64(...)``)."""
        value = raw_id.item() if isinstance(raw_id, np.generic) else raw_id
        known = f"{len(self):,} known {self.name} IDs"
        return f"unknown {self.name} ID {value!r} (not among the {known})"

    def to_raw(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Raw IDs of ``indices``; raises :class:`KeyError` for an index out of range."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self._raw)):
            raise KeyError(f"{self.name} index out of range [0, {len(self._raw)})")
        return self._raw[idx]

    def _is_sorted(self) -> bool:
        if not hasattr(self, "_sorted"):
            self._sorted = bool(len(self._raw) < 2 or np.all(self._raw[1:] > self._raw[:-1]))
        return self._sorted

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IdVocabulary)
            and len(self) == len(other)
            and bool(np.all(self._raw == other._raw))
        )

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return id(self)

    def __repr__(self) -> str:
        return f"IdVocabulary({self.name}, n={len(self)})"


@dataclass
class Interactions:
    """User-item interactions with contiguous indices.

    Attributes:
        users: user index per interaction, shape ``(n,)``, int64 in ``[0, n_users)``.
        items: item index per interaction, shape ``(n,)``, int64 in ``[0, n_items)``.
        ratings: optional explicit rating per interaction, shape ``(n,)``, float32.
        timestamps: optional time per interaction (any monotone unit), shape ``(n,)``, int64.
        user_vocab: raw user IDs <-> indices; ``len(user_vocab) == n_users``.
        item_vocab: raw item IDs <-> indices; ``len(item_vocab) == n_items``.
        name: dataset name, used in messages and run directories.
    """

    users: np.ndarray
    items: np.ndarray
    user_vocab: IdVocabulary
    item_vocab: IdVocabulary
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    name: str = "interactions"
    side: dict[str, Any] = field(default_factory=dict)
    """Optional side information (user/item feature tables) carried along, keyed by name."""

    def __post_init__(self) -> None:
        self.users = np.ascontiguousarray(self.users, dtype=np.int64)
        self.items = np.ascontiguousarray(self.items, dtype=np.int64)
        n = len(self.users)
        if len(self.items) != n:
            raise ValueError("users and items must have the same length")
        if self.ratings is not None:
            self.ratings = np.ascontiguousarray(self.ratings, dtype=np.float32)
            if len(self.ratings) != n:
                raise ValueError("ratings must have one value per interaction")
        if self.timestamps is not None:
            self.timestamps = np.ascontiguousarray(self.timestamps, dtype=np.int64)
            if len(self.timestamps) != n:
                raise ValueError("timestamps must have one value per interaction")
        if n:
            if self.users.min() < 0 or self.users.max() >= self.n_users:
                raise ValueError(f"user index out of range [0, {self.n_users})")
            if self.items.min() < 0 or self.items.max() >= self.n_items:
                raise ValueError(f"item index out of range [0, {self.n_items})")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_raw(
        cls,
        raw_users: Sequence[Any] | np.ndarray,
        raw_items: Sequence[Any] | np.ndarray,
        ratings: Sequence[float] | np.ndarray | None = None,
        timestamps: Sequence[int] | np.ndarray | None = None,
        name: str = "interactions",
        user_vocab: IdVocabulary | None = None,
        item_vocab: IdVocabulary | None = None,
    ) -> Interactions:
        """Build from raw IDs, creating vocabularies (sorted distinct raw IDs) unless given."""
        raw_u = np.asarray(raw_users)
        raw_i = np.asarray(raw_items)
        if len(raw_u) == 0:
            raise DataError(f"dataset {name!r} is empty: no interactions")
        if user_vocab is None:
            uniq_u, users = np.unique(raw_u, return_inverse=True)
            user_vocab = IdVocabulary(uniq_u, name="user")
        else:
            users = user_vocab.to_index(raw_u)
        if item_vocab is None:
            uniq_i, items = np.unique(raw_i, return_inverse=True)
            item_vocab = IdVocabulary(uniq_i, name="item")
        else:
            items = item_vocab.to_index(raw_i)
        return cls(
            users=np.asarray(users).reshape(-1),
            items=np.asarray(items).reshape(-1),
            user_vocab=user_vocab,
            item_vocab=item_vocab,
            ratings=None if ratings is None else np.asarray(ratings, dtype=np.float32),
            timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
            name=name,
        )

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def density(self) -> float:
        return len(self) / max(1, self.n_users * self.n_items)

    # ------------------------------------------------------------------ views
    def subset(self, mask_or_index: np.ndarray, name: str | None = None) -> Interactions:
        """Interactions selected by a boolean mask or an index array, same vocabularies."""
        sel = np.asarray(mask_or_index)
        if sel.dtype != np.bool_:
            sel = sel.astype(np.int64)
        return Interactions(
            users=self.users[sel],
            items=self.items[sel],
            user_vocab=self.user_vocab,
            item_vocab=self.item_vocab,
            ratings=None if self.ratings is None else self.ratings[sel],
            timestamps=None if self.timestamps is None else self.timestamps[sel],
            name=name or self.name,
            side=self.side,
        )

    def to_csr(self, values: str | None = None) -> sp.csr_matrix:
        """Users x items CSR matrix, shape ``(n_users, n_items)``.

        Args:
            values: ``None`` for ones (duplicates collapsed to 1), ``"rating"`` for ratings.
        """
        if values == "rating":
            if self.ratings is None:
                raise ValueError(f"{self.name} has no ratings")
            data = self.ratings.astype(np.float32)
        else:
            data = np.ones(len(self), dtype=np.float32)
        mat = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        mat.sum_duplicates()
        if values is None:
            mat.data[:] = 1.0
        mat.sort_indices()
        return mat

    def user_items(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR structure (``indptr`` of shape ``(n_users + 1,)``, sorted unique ``indices``)."""
        csr = self.to_csr()
        return csr.indptr.astype(np.int64), csr.indices.astype(np.int64)

    def item_popularity(self) -> np.ndarray:
        """Number of interactions per item, shape ``(n_items,)``."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    def user_popularity(self) -> np.ndarray:
        """Number of interactions per user (activity), shape ``(n_users,)``."""
        return np.bincount(self.users, minlength=self.n_users).astype(np.int64)

    def sorted_keys(self) -> np.ndarray:
        """Sorted unique ``user * n_items + item`` keys: O(n) membership tests by searchsorted."""
        keys = np.sort(self.users * np.int64(self.n_items) + self.items)
        if len(keys) > 1:
            keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
        return keys

    def concat(self, other: Interactions, name: str | None = None) -> Interactions:
        """Union of two interaction sets over the same vocabularies."""
        if self.user_vocab is not other.user_vocab and self.user_vocab != other.user_vocab:
            raise ValueError("cannot concatenate interactions with different user vocabularies")
        if self.item_vocab is not other.item_vocab and self.item_vocab != other.item_vocab:
            raise ValueError("cannot concatenate interactions with different item vocabularies")

        def cat(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None or b is None else np.concatenate([a, b])

        return Interactions(
            users=np.concatenate([self.users, other.users]),
            items=np.concatenate([self.items, other.items]),
            user_vocab=self.user_vocab,
            item_vocab=self.item_vocab,
            ratings=cat(self.ratings, other.ratings),
            timestamps=cat(self.timestamps, other.timestamps),
            name=name or self.name,
            side=self.side,
        )

    def describe(self) -> dict[str, float | int | str]:
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self),
            "density": round(self.density, 6),
            "has_ratings": self.ratings is not None,
            "has_timestamps": self.timestamps is not None,
        }

    def __repr__(self) -> str:
        return (
            f"Interactions({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"n={len(self)})"
        )


@dataclass
class Split:
    """Train / validation / test interactions over shared vocabularies.

    ``valid`` may be empty (zero interactions) when a protocol has no validation carve-out.
    """

    train: Interactions
    valid: Interactions
    test: Interactions

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def describe(self) -> dict[str, int]:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
        }
