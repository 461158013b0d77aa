"""Multi-field CTR samples with a user behaviour sequence (AMEIR, DIN-style data).

One sample is (user, target item, label) with:

* non-sequential categorical fields, one ID each (user id, gender, age, ...): ``sparse (n, F)``;
* the sequential field: the user's previous ``N`` items in time order, ``history_items (n, N)``,
  right-aligned (the most recent item is in the last column) and 0-padded on the left;
  ``history_length (n,)`` counts the real items;
* the items' multi-hot field (genres) once per item, as a 0-padded ID list ``item_tags
  (n_items, G)`` indexed by item ID: batches gather the target's and the history's tags from it,
  so an ``(n, N, G)`` array is never stored.

Every ID is encoded in ``[1, vocab_size)`` with 0 meaning missing / padding, so every table can
reserve row 0. The :class:`FeatureMap` (field name, kind, vocabulary size) describes the columns
and is saved as JSON next to processed data so a run can be reproduced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from leanrec.data.errors import DataError

FieldKind = Literal["categorical", "multi_hot", "sequence"]


@dataclass(frozen=True)
class FieldSpec:
    """One input field.

    Attributes:
        name: field name (``"user_id"``, ``"genres"``, ``"history"``).
        kind: ``"categorical"`` (one ID per sample, a column of ``sparse``), ``"multi_hot"``
            (a 0-padded ID list per sample: ``target_tags``) or ``"sequence"`` (the behaviour
            sequence: ``history_items``).
        vocab_size: rows of its embedding table, including the reserved 0 row.
        shares_vocabulary_with: name of the field whose IDs (and table) it shares, if any: the
            history shares ``item_id``'s vocabulary, history tags share ``genres``'.
    """

    name: str
    kind: FieldKind
    vocab_size: int
    shares_vocabulary_with: str | None = None


@dataclass(frozen=True)
class FeatureMap:
    """Field layout of a :class:`BehaviorSamples` set.

    Attributes:
        fields: all fields; the ``categorical`` ones in the column order of ``sparse``.
        max_history: ``N``, columns of ``history_items``.
        max_tags: ``G``, columns of ``target_tags`` / last axis of ``history_tags``.
        target_field: the categorical field holding the target item (``"item_id"``).
        tag_field: the multi-hot field of item tags (``"genres"``), or None.
    """

    fields: tuple[FieldSpec, ...]
    max_history: int
    max_tags: int
    target_field: str = "item_id"
    tag_field: str | None = "genres"

    @property
    def categorical(self) -> tuple[FieldSpec, ...]:
        """Fields that are columns of ``sparse``, in order."""
        return tuple(f for f in self.fields if f.kind == "categorical")

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"no field {name!r}; fields: {[f.name for f in self.fields]}")

    def column(self, name: str) -> int:
        """Column of categorical field ``name`` in ``sparse``."""
        names = [f.name for f in self.categorical]
        if name not in names:
            raise KeyError(f"{name!r} is not a categorical field; categorical: {names}")
        return names.index(name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureMap:
        raw = json.loads(text)
        fields = tuple(FieldSpec(**f) for f in raw.pop("fields"))
        return cls(fields=fields, **raw)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureMap:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"feature map not found: {path}")
        return cls.from_json(path.read_text())


@dataclass
class BehaviorBatch:
    """A mini-batch of :class:`BehaviorSamples` as tensors (shapes with batch size ``B``).

    Attributes:
        sparse: ``(B, F)`` int64 categorical IDs.
        target_tags: ``(B, G)`` int64 tag IDs of the target item, 0-padded.
        history_items: ``(B, N)`` int64, right-aligned, 0 = padding.
        history_tags: ``(B, N, G)`` int64.
        history_length: ``(B,)`` int64.
        labels: ``(B,)`` float32 in {0, 1}.
    """

    sparse: torch.Tensor
    target_tags: torch.Tensor
    history_items: torch.Tensor
    history_tags: torch.Tensor
    history_length: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def history_mask(self) -> torch.Tensor:
        """``(B, N)`` bool, True on real history items."""
        return self.history_items > 0


@dataclass
class BehaviorSamples:
    """CTR samples with behaviour sequences as NumPy arrays (see the module docstring).

    Attributes:
        sparse: ``(n, F)`` int64.
        history_items: ``(n, N)`` int32 or int64, right-aligned, 0 = padding.
        history_length: ``(n,)`` int64.
        labels: ``(n,)`` float32.
        item_tags: ``(n_items, G)`` int64, tag IDs of each item ID (row 0: padding item, all 0).
        feature_map: the field layout.
        timestamps: ``(n,)`` int64 event times, or None.
        name: dataset name, for messages.
    """

    sparse: np.ndarray
    history_items: np.ndarray
    history_length: np.ndarray
    labels: np.ndarray
    item_tags: np.ndarray
    feature_map: FeatureMap
    timestamps: np.ndarray | None = None
    name: str = "behavior"

    def __post_init__(self) -> None:
        n = len(self.labels)
        for attr in ("sparse", "history_items", "history_length"):
            if len(getattr(self, attr)) != n:
                raise DataError(
                    f"{self.name}: {attr} has {len(getattr(self, attr))} rows, labels have {n}"
                )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> BehaviorSamples:
        """The samples at ``rows`` (indices or a boolean mask)."""
        return BehaviorSamples(
            sparse=self.sparse[rows],
            history_items=self.history_items[rows],
            history_length=self.history_length[rows],
            labels=self.labels[rows],
            item_tags=self.item_tags,
            feature_map=self.feature_map,
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            name=self.name,
        )

    def batch(self, rows: np.ndarray) -> BehaviorBatch:
        """Rows ``rows`` as a :class:`BehaviorBatch` of tensors."""
        sparse = self.sparse[rows].astype(np.int64, copy=False)
        history = self.history_items[rows].astype(np.int64, copy=False)
        targets = sparse[:, self.feature_map.column(self.feature_map.target_field)]
        return BehaviorBatch(
            sparse=torch.from_numpy(sparse),
            target_tags=torch.from_numpy(self.item_tags[targets]),
            history_items=torch.from_numpy(history),
            history_tags=torch.from_numpy(self.item_tags[history]),
            history_length=torch.from_numpy(self.history_length[rows].astype(np.int64)),
            labels=torch.from_numpy(self.labels[rows].astype(np.float32, copy=False)),
        )

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        rng: np.random.Generator | None = None,
    ) -> Iterator[BehaviorBatch]:
        """Mini-batches over all samples (shuffled with ``rng`` when ``shuffle``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = np.arange(len(self))
        if shuffle:
            (rng if rng is not None else np.random.default_rng()).shuffle(order)
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])
