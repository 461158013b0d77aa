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

This module holds the data types and the array building blocks every builder shares
(:func:`temporal_split_counts`, :func:`right_aligned_history`). Builders live with the loaders:
:func:`leanrec.data.loaders.movielens_ctr.build_movielens_ctr` turns MovieLens-1M
(``ratings.dat`` with timestamps, ``users.dat``, ``movies.dat``) into a :class:`BehaviorSplit`
(per-user temporal train / valid / test), cached as ``.npz`` + ``feature_map.json``; the registry
name is ``"ml-1m-ctr"`` (see :func:`leanrec.data.registry.load_behavior_dataset`).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

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


# ================================================================================ split container
SPLIT_NAMES: tuple[str, str, str] = ("train", "valid", "test")
_ARRAYS_FILE = "arrays.npz"
_FEATURE_MAP_FILE = "feature_map.json"
_PARAMS_FILE = "params.json"
_SAMPLE_ARRAYS = ("sparse", "history_items", "history_length", "labels", "timestamps")


@dataclass
class BehaviorSplit:
    """Train / validation / test :class:`BehaviorSamples` of one dataset, one shared layout.

    The three parts share ``feature_map`` and the ``item_tags`` table (the same array object).

    Attributes:
        train: training samples.
        valid: validation samples (model selection, early stopping).
        test: test samples.
        feature_map: the field layout of all three.
        name: dataset name, e.g. ``"ml-1m-ctr"``.
        params: how the split was built (builder parameters and input file fingerprints);
            saved as ``params.json`` and compared before a cached copy is reused.
        cache_path: directory the split was saved to / loaded from, or None.
    """

    train: BehaviorSamples
    valid: BehaviorSamples
    test: BehaviorSamples
    feature_map: FeatureMap
    name: str = "behavior"
    params: dict[str, object] = field(default_factory=dict)
    cache_path: Path | None = None

    @property
    def item_tags(self) -> np.ndarray:
        """``(n_items, G)`` int64 tag IDs per item ID, shared by the three parts."""
        return self.train.item_tags

    def parts(self) -> dict[str, BehaviorSamples]:
        """``{"train": ..., "valid": ..., "test": ...}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def describe(self) -> dict[str, float | int]:
        """Sample counts and positive rates per part (for logs and reports)."""
        out: dict[str, float | int] = {}
        for part, samples in self.parts().items():
            out[f"{part}_samples"] = len(samples)
            out[f"{part}_positive_rate"] = float(samples.labels.mean()) if len(samples) else 0.0
        return out

    def save(self, directory: str | Path) -> Path:
        """Write ``arrays.npz`` (uncompressed), ``feature_map.json`` and ``params.json``.

        Each file is written under a temporary name and moved into place; ``params.json`` is
        written last, so a directory with a ``params.json`` is complete.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _PARAMS_FILE).unlink(missing_ok=True)
        arrays: dict[str, Any] = {"item_tags": self.item_tags}  # Any: numpy's savez stub
        for part, samples in self.parts().items():
            for attr in _SAMPLE_ARRAYS:
                value = getattr(samples, attr)
                if value is not None:
                    arrays[f"{part}/{attr}"] = value
        _atomic_write(folder / _ARRAYS_FILE, lambda handle: np.savez(handle, **arrays))
        _atomic_write(folder / _FEATURE_MAP_FILE, self.feature_map.to_json().encode())
        params = {"name": self.name, **self.params}
        _atomic_write(folder / _PARAMS_FILE, json.dumps(params, indent=2).encode())
        return folder

    @classmethod
    def from_parts(
        cls,
        parts: Mapping[str, BehaviorSamples],
        feature_map: FeatureMap,
        name: str,
        params: dict[str, object] | None = None,
        cache_path: Path | None = None,
    ) -> BehaviorSplit:
        """The split of ``parts`` keyed by :data:`SPLIT_NAMES` (``train``, ``valid``, ``test``)."""
        return cls(
            train=parts["train"],
            valid=parts["valid"],
            test=parts["test"],
            feature_map=feature_map,
            name=name,
            params=params if params is not None else {},
            cache_path=cache_path,
        )

    @classmethod
    def load(cls, directory: str | Path) -> BehaviorSplit:
        """Read a split written by :meth:`save`.

        Raises:
            DataError: a missing file, or arrays that do not fit the feature map (the message
                names the file).
        """
        folder = Path(directory)
        params_path = folder / _PARAMS_FILE
        if not params_path.is_file():
            raise DataError("saved behaviour split incomplete (missing file)", path=params_path)
        params = json.loads(params_path.read_text())
        name = str(params.pop("name", folder.name))
        feature_map = FeatureMap.load(folder / _FEATURE_MAP_FILE)
        arrays_path = folder / _ARRAYS_FILE
        if not arrays_path.is_file():
            raise DataError("saved behaviour split incomplete (missing file)", path=arrays_path)
        with np.load(arrays_path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        item_tags = arrays.get("item_tags")
        if item_tags is None or item_tags.ndim != 2 or item_tags.shape[1] != feature_map.max_tags:
            raise DataError(
                f"item_tags missing or not (n_items, {feature_map.max_tags})", path=arrays_path
            )
        parts: dict[str, BehaviorSamples] = {}
        for part in SPLIT_NAMES:
            missing = [a for a in _SAMPLE_ARRAYS[:4] if f"{part}/{a}" not in arrays]
            if missing:
                raise DataError(f"no {part} arrays {missing}", path=arrays_path)
            samples = BehaviorSamples(
                sparse=arrays[f"{part}/sparse"],
                history_items=arrays[f"{part}/history_items"],
                history_length=arrays[f"{part}/history_length"],
                labels=arrays[f"{part}/labels"],
                item_tags=item_tags,
                feature_map=feature_map,
                timestamps=arrays.get(f"{part}/timestamps"),
                name=f"{name}:{part}",
            )
            if samples.sparse.shape[1:] != (len(feature_map.categorical),) or (
                samples.history_items.shape[1:] != (feature_map.max_history,)
            ):
                raise DataError(
                    f"{part} arrays do not fit the feature map: sparse {samples.sparse.shape}, "
                    f"history_items {samples.history_items.shape}",
                    path=arrays_path,
                )
            parts[part] = samples
        return cls.from_parts(parts, feature_map, name, params=params, cache_path=folder)

    @classmethod
    def load_matching(
        cls, directory: str | Path, name: str, params: dict[str, object]
    ) -> BehaviorSplit | None:
        """The split saved in ``directory`` if its name and parameters equal ``params``, else
        None (also when the saved files are unreadable: the caller rebuilds and overwrites them).
        """
        params_path = Path(directory) / _PARAMS_FILE
        if not params_path.is_file():
            return None
        try:
            stored = json.loads(params_path.read_text())
        except (OSError, ValueError):
            return None
        if stored != {"name": name, **params}:
            return None
        try:
            return cls.load(directory)
        except (DataError, OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None


def _atomic_write(path: Path, content: bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``content`` (bytes, or a function writing to a binary handle) to ``path`` via a
    temporary file in the same folder and :func:`os.replace`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                content(handle)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# ================================================================================ building blocks
def temporal_split_counts(
    n_events: np.ndarray, valid_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user ``(n_train, n_valid, n_test)`` of a temporal split (latest events to test).

    Rounding rule, per user with ``n >= 3`` events (``t`` = ``test_fraction``, ``v`` =
    ``valid_fraction``, rounding half up)::

        n_test  = clip(round(t * n), 1, n - 2)
        n_valid = clip(round(v * n), 1, n - 1 - n_test)
        n_train = n - n_valid - n_test          # >= 1

    so every such user has at least one event in each part. Users with fewer than 3 events go
    to train only. E.g. with 10 %/10 %: n = 20 -> 16/2/2, n = 25 -> 19/3/3, n = 3 -> 1/1/1.

    Args:
        n_events: events per user, shape ``(U,)``, int.
        valid_fraction: ``v`` in ``(0, 1)``.
        test_fraction: ``t`` in ``(0, 1)``, with ``v + t < 1``.

    Returns:
        Three int64 arrays of shape ``(U,)`` summing to ``n_events``.
    """
    check_fractions(valid_fraction, test_fraction)
    n = np.asarray(n_events, dtype=np.int64)

    def half_up(fraction: float) -> np.ndarray:
        # round(., 9) first so that e.g. 0.15 * 10 = 1.4999999999999998 counts as 1.5.
        return np.floor(np.round(fraction * n, 9) + 0.5).astype(np.int64)

    n_test = np.clip(half_up(test_fraction), 1, np.maximum(n - 2, 1))
    n_valid = np.clip(half_up(valid_fraction), 1, np.maximum(n - 1 - n_test, 1))
    too_short = n < 3
    n_test[too_short] = 0
    n_valid[too_short] = 0
    return n - n_valid - n_test, n_valid, n_test


def check_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Raise :class:`DataError` unless both fractions lie in ``(0, 1)`` with a sum below 1."""
    v, t = float(valid_fraction), float(test_fraction)
    if not (np.isfinite(v) and np.isfinite(t) and 0 < v < 1 and 0 < t < 1 and v + t < 1):
        raise DataError(
            "valid_fraction and test_fraction must each be in (0, 1) with a sum below 1, got "
            f"valid_fraction={valid_fraction!r}, test_fraction={test_fraction!r}"
        )


def right_aligned_history(
    items_in_order: np.ndarray, group_start: np.ndarray, positions: np.ndarray, max_history: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``max_history`` events before each of ``positions`` within its group, right-aligned.

    ``items_in_order`` lists every event grouped by user and in time order inside a group; the
    history of the event at position ``p`` is ``items_in_order[max(start, p - N) : p]`` with
    ``start = group_start[p]``, placed in the last columns (most recent last) and 0-padded on
    the left. Built with one vectorised gather per column (``N`` numpy passes, no loop over
    events).

    Args:
        items_in_order: item ID per event, shape ``(n_events,)``, IDs ``>= 1``.
        group_start: position of the first event of the same user, shape ``(n_events,)``.
        positions: events to build histories for, shape ``(n,)``.
        max_history: ``N``.

    Returns:
        ``(history, length)``: ``(n, N)`` int32 item IDs (0 = padding) and ``(n,)`` int64
        number of real items, ``min(N, p - start)``.
    """
    positions = np.asarray(positions, dtype=np.int64)
    start = group_start[positions]
    history = np.zeros((len(positions), max_history), dtype=np.int32)
    for back in range(1, max_history + 1):
        source = positions - back
        present = source >= start
        history[present, max_history - back] = items_in_order[source[present]]
    length = np.minimum(positions - start, max_history).astype(np.int64)
    return history, length
