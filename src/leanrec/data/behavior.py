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

Builders: :func:`build_movielens_ctr` turns MovieLens-1M (``ratings.dat`` with timestamps,
``users.dat``, ``movies.dat``) into a :class:`BehaviorSplit` (per-user temporal train / valid /
test), cached as ``.npz`` + ``feature_map.json``; the registry name is ``"ml-1m-ctr"`` (see
:func:`leanrec.data.registry.load_behavior_dataset`).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pandas as pd
import torch

from leanrec.data.errors import DataError, require_file
from leanrec.data.loaders._parsing import index_lines, read_bytes, single_byte_separator
from leanrec.data.loaders.movielens import find_ml1m_ratings_file, load_movielens_1m
from leanrec.data.registry import dataset_path, user_cache_dir

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
        return cls(
            train=parts["train"],
            valid=parts["valid"],
            test=parts["test"],
            feature_map=feature_map,
            name=name,
            params=params,
            cache_path=folder,
        )


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
    _check_fractions(valid_fraction, test_fraction)
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


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
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


def _encode_values(values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes ``1..V-1`` (rank among the sorted distinct non-missing values) and 0 for missing.

    Args:
        values: raw values, shape ``(n,)`` (numbers or strings).
        missing: True where the value is missing/unknown, shape ``(n,)``.

    Returns:
        ``(codes, vocab_size)``: ``(n,)`` int64 codes and ``V`` (distinct values + 1).
    """
    present = values[~missing]
    vocabulary = np.unique(present)
    codes = np.zeros(len(values), dtype=np.int64)
    codes[~missing] = np.searchsorted(vocabulary, present) + 1
    return codes, len(vocabulary) + 1


def _ratings_line(path: Path, row: int) -> int:
    """1-based line number of data row ``row`` of a ``::``-separated ratings file (error path)."""
    _, raw = read_bytes(path, "ML-1M ratings file")
    data, sep = single_byte_separator(raw, "::", path)
    return int(index_lines(data, sep).line_numbers[row])


# ================================================================================ ML-1M CTR
ML1M_CTR_FIELDS: tuple[str, ...] = (
    "user_id",
    "gender",
    "age",
    "occupation",
    "zip",
    "item_id",
    "year",
)
"""Categorical fields of :func:`build_movielens_ctr`, in the column order of ``sparse``."""

_ML1M_CTR_FORMAT = 1  # bump when the built arrays change meaning; invalidates caches
_YEAR_PATTERN = r"\((\d{4})\)\s*$"


def default_behavior_cache_dir() -> Path:
    """``<user cache dir>/processed``, the default root for built behaviour datasets."""
    return user_cache_dir() / "processed"


def _fingerprint(paths: list[Path]) -> dict[str, list[int]]:
    """``{file name: [size, mtime_ns]}``: a cached build is reused only if these are equal."""
    out: dict[str, list[int]] = {}
    for path in paths:
        stat = path.stat()
        out[path.name] = [int(stat.st_size), int(stat.st_mtime_ns)]
    return out


def build_movielens_ctr(
    data_dir: str | Path | None = None,
    max_history: int = 50,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    cache_dir: str | Path | None = None,
    *,
    source: str = "ml-1m-partial",
    folder: str | Path | None = None,
    positive_threshold: float = 4.0,
    zip_prefix_length: int = 2,
    cache: bool = True,
    name: str = "ml-1m-ctr",
) -> BehaviorSplit:
    """MovieLens-1M as CTR samples with the user's behaviour sequence (AMEIR's ML-1M setting).

    One sample per rating, label ``rating >= positive_threshold`` (float32 1/0). Fields:

    * ``sparse (n, 7)`` int64, columns :data:`ML1M_CTR_FIELDS`: ``user_id`` (users that have
      ratings, by raw ID), ``gender``, ``age`` (ML-1M age bucket), ``occupation``, ``zip``
      (the first ``zip_prefix_length`` = 2 characters of the zip code, a coarse region),
      ``item_id`` (every movie of ``movies.dat``, by raw MovieID, rated or not) and ``year``
      (release year parsed from the title's trailing ``"(1995)"``). Each field is coded
      ``1..V-1`` in sorted order of its raw values, 0 = missing / unknown (empty zip code,
      title without a year). Demographic vocabularies come from all of ``users.dat``.
    * ``genres`` (multi-hot): ``item_tags (n_items_vocab, G)`` int64, each movie's genre IDs
      in ascending order (genres coded by sorted name), 0-padded; ``G`` = most genres of any
      movie (6 in ML-1M); row 0 all zeros.
    * ``history`` (sequence, shares ``item_id``'s vocabulary): ``history_items (n, N)`` int32,
      the user's previous ``N = max_history`` rated items (any rating) strictly before the
      sample in time order, ties at equal timestamps broken by ratings-file order; most recent
      in the last column, 0-padded on the left; ``history_length (n,)``.

    Split per user in time order (see :func:`temporal_split_counts` for the rounding rule):
    the last ``test_fraction`` of each user's ratings to test, the ``valid_fraction`` before
    them to validation, the rest to train. A sample's history is built from *all* the user's
    earlier ratings, so valid/test histories include train (and earlier valid) items. Within
    each part samples are ordered by user, then time.

    The built arrays are saved to ``<cache root>/<name>-<hash of parameters>/`` (see
    :meth:`BehaviorSplit.save`) and reused when the stored parameters and the input files'
    sizes and modification times match.

    Args:
        data_dir: the data directory holding the dataset folders (see
            :func:`leanrec.data.registry.resolve_data_dir`: argument > ``LEANREC_DATA`` > user
            cache dir).
        max_history: ``N``, columns of ``history_items``.
        valid_fraction: share of each user's ratings (before the test part) for validation.
        test_fraction: share of each user's latest ratings for test.
        cache_dir: root of the processed-data cache; default
            :func:`default_behavior_cache_dir` (``~/.cache/leanrec/processed``).
        source: registry name of the raw files: ``"ml-1m-partial"`` (users 1-2999 with
            timestamps) or ``"ml-1m"`` when that folder holds GroupLens' timestamped files.
        folder: a folder with ``ratings*.dat``, ``users.dat`` and ``movies.dat`` to use instead
            of the registry folder (``data_dir`` and ``source`` are then ignored).
        positive_threshold: ratings ``>=`` this are positives.
        zip_prefix_length: characters of the zip code kept.
        cache: False builds without reading or writing the cache.
        name: dataset name (cache folder prefix, messages).

    Returns:
        The :class:`BehaviorSplit`; on the shared ml-1m-partial copy 487,650 samples of 2,999
        users.

    Raises:
        DataError: missing folder or file (named), ratings without timestamps, a rating whose
            user is not in ``users.dat`` or whose movie is not in ``movies.dat`` (file and line
            named), bad fractions or ``max_history``, or no user with the 3 ratings needed for
            a validation and a test sample.
    """
    _check_fractions(valid_fraction, test_fraction)
    if int(max_history) != max_history or max_history < 1:
        raise DataError(f"max_history must be a positive integer, got {max_history!r}")
    if int(zip_prefix_length) != zip_prefix_length or zip_prefix_length < 1:
        raise DataError(f"zip_prefix_length must be a positive integer, got {zip_prefix_length!r}")
    source_folder = Path(folder) if folder is not None else dataset_path(source, data_dir)
    ratings_path = find_ml1m_ratings_file(source_folder)
    users_path = require_file(source_folder / "users.dat", "ML-1M users file")
    movies_path = require_file(source_folder / "movies.dat", "ML-1M movies file")

    params: dict[str, object] = {
        "format": _ML1M_CTR_FORMAT,
        "source_folder": str(source_folder.resolve()),
        "ratings_file": ratings_path.name,
        "max_history": int(max_history),
        "valid_fraction": float(valid_fraction),
        "test_fraction": float(test_fraction),
        "positive_threshold": float(positive_threshold),
        "zip_prefix_length": int(zip_prefix_length),
    }
    cache_folder: Path | None = None
    if cache:
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        root = Path(cache_dir) if cache_dir is not None else default_behavior_cache_dir()
        cache_folder = root / f"{name}-{key}"
        params["inputs"] = _fingerprint([ratings_path, users_path, movies_path])
        reused = _load_if_matching(cache_folder, name, params)
        if reused is not None:
            return reused

    split = _build_ml1m_ctr(
        ratings_path,
        users_path,
        movies_path,
        max_history=int(max_history),
        valid_fraction=float(valid_fraction),
        test_fraction=float(test_fraction),
        positive_threshold=float(positive_threshold),
        zip_prefix_length=int(zip_prefix_length),
        name=name,
    )
    split.params = params
    if cache_folder is not None:
        split.save(cache_folder)
        split.cache_path = cache_folder
    return split


def _load_if_matching(
    directory: Path, name: str, params: dict[str, object]
) -> BehaviorSplit | None:
    """The split saved in ``directory`` if its name and parameters equal ``params``, else None
    (also when the saved files are unreadable: the caller rebuilds and overwrites them)."""
    params_path = directory / _PARAMS_FILE
    if not params_path.is_file():
        return None
    try:
        stored = json.loads(params_path.read_text())
    except (OSError, ValueError):
        return None
    if stored != {"name": name, **params}:
        return None
    try:
        return BehaviorSplit.load(directory)
    except (DataError, OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _build_ml1m_ctr(
    ratings_path: Path,
    users_path: Path,
    movies_path: Path,
    max_history: int,
    valid_fraction: float,
    test_fraction: float,
    positive_threshold: float,
    zip_prefix_length: int,
    name: str,
) -> BehaviorSplit:
    """The build behind :func:`build_movielens_ctr` (no caching)."""
    ratings = load_movielens_1m(ratings_path.parent, ratings_file=ratings_path, name=name)
    if ratings.timestamps is None or ratings.ratings is None:
        raise DataError(
            "ratings file has no timestamp column (UserID::MovieID::Rating::Timestamp needed "
            "for the time-ordered behaviour sequence)",
            path=ratings_path,
        )
    users = ratings.side.get("users")
    movies = ratings.side.get("items")
    if users is None or movies is None:  # pragma: no cover - files checked by the caller
        raise DataError("users.dat / movies.dat not read", path=ratings_path.parent)
    for frame, path, what in ((users, users_path, "user"), (movies, movies_path, "movie")):
        if frame.index.has_duplicates:
            duplicate = frame.index[frame.index.duplicated()][0]
            raise DataError(f"{what} ID {duplicate} appears more than once", path=path)

    # ---- user table (n_user_vocab, 5): user_id, gender, age, occupation, zip
    rated_users = ratings.user_vocab.raw_ids  # sorted raw IDs of users with ratings
    profile_row = users.index.get_indexer(rated_users)
    if (profile_row < 0).any():
        unknown = rated_users[profile_row < 0][0]
        row = int(np.argmax(rated_users[ratings.users] == unknown))
        raise DataError(
            f"user {unknown} has ratings but no row in {users_path.name}",
            path=ratings_path,
            line=_ratings_line(ratings_path, row),
        )
    zip_text = users["zip_code"].astype(str).str.strip()
    zip_prefix = zip_text.str[:zip_prefix_length].to_numpy(dtype=str)
    gender = users["gender"].astype(str).str.strip().to_numpy(dtype=str)
    user_columns = {
        "gender": _encode_values(gender, gender == ""),
        "age": _encode_values(users["age"].to_numpy(), np.zeros(len(users), dtype=bool)),
        "occupation": _encode_values(
            users["occupation"].to_numpy(), np.zeros(len(users), dtype=bool)
        ),
        "zip": _encode_values(zip_prefix, zip_prefix == ""),
    }
    n_user_vocab = len(rated_users) + 1
    user_table = np.zeros((n_user_vocab, 5), dtype=np.int64)
    user_table[1:, 0] = np.arange(1, n_user_vocab)
    for column, (codes, _) in enumerate(user_columns.values(), start=1):
        user_table[1:, column] = codes[profile_row]

    # ---- item table (n_item_vocab, 2): item_id, year; and item_tags (n_item_vocab, G)
    movies = movies.sort_index()
    movie_ids = movies.index.to_numpy(dtype=np.int64)
    n_item_vocab = len(movie_ids) + 1
    years = pd.to_numeric(
        movies["title"].astype(str).str.extract(_YEAR_PATTERN, expand=False), errors="coerce"
    ).to_numpy(dtype=np.float64)
    year_codes, year_vocab = _encode_values(years, np.isnan(years))
    item_table = np.zeros((n_item_vocab, 2), dtype=np.int64)
    item_table[1:, 0] = np.arange(1, n_item_vocab)
    item_table[1:, 1] = year_codes
    genre_names = sorted(c for c in movies.columns if c not in ("title", "genres"))
    flags = movies[genre_names].to_numpy(dtype=np.int8) > 0 if genre_names else None
    item_tags, max_tags = _tags_table(flags, len(movie_ids))

    rated_movies = ratings.item_vocab.raw_ids
    movie_position = np.minimum(np.searchsorted(movie_ids, rated_movies), len(movie_ids) - 1)
    known = movie_ids[movie_position] == rated_movies
    if not known.all():
        unknown = rated_movies[~known][0]
        row = int(np.argmax(~known[ratings.items]))
        raise DataError(
            f"movie {unknown} is rated but has no row in {movies_path.name}",
            path=ratings_path,
            line=_ratings_line(ratings_path, row),
        )
    item_code_of_rating = (movie_position + 1)[ratings.items]  # (n,) in 1..n_items
    user_code_of_rating = ratings.users + 1  # (n,) in 1..n_users

    # ---- time order: by user, then timestamp, then file row (lexsort is stable)
    n = len(ratings)
    order = np.lexsort((np.arange(n), ratings.timestamps, ratings.users))
    users_sorted = ratings.users[order]
    counts = np.bincount(ratings.users, minlength=len(rated_users))
    user_first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    group_start = user_first[users_sorted]  # (n,) position of the user's first rating
    rank = np.arange(n) - group_start

    n_train, n_valid, _ = temporal_split_counts(counts, valid_fraction, test_fraction)
    part = np.zeros(n, dtype=np.int8)  # 0 train, 1 valid, 2 test, per sorted position
    part[rank >= n_train[users_sorted]] = 1
    part[rank >= (n_train + n_valid)[users_sorted]] = 2
    if not (part == 2).any():
        raise DataError(
            f"no user has the 3 ratings needed for a validation and a test sample "
            f"({len(rated_users)} users, at most {counts.max()} ratings each)",
            path=ratings_path,
        )
    # Sorted positions grouped by part (stable: by user, then time within a part).
    positions = np.argsort(part, kind="stable")
    part_sizes = np.bincount(part, minlength=3)

    history, history_length = right_aligned_history(
        item_code_of_rating[order], group_start, positions, max_history
    )
    rows = order[positions]  # original rating row of each sample
    sparse = np.concatenate(
        (user_table[user_code_of_rating[rows]], item_table[item_code_of_rating[rows]]), axis=1
    )
    labels = (ratings.ratings[rows] >= positive_threshold).astype(np.float32)
    timestamps = ratings.timestamps[rows]

    item_spec_size = n_item_vocab
    feature_map = FeatureMap(
        fields=(
            FieldSpec("user_id", "categorical", n_user_vocab),
            *(FieldSpec(f, "categorical", size) for f, (_, size) in user_columns.items()),
            FieldSpec("item_id", "categorical", item_spec_size),
            FieldSpec("year", "categorical", year_vocab),
            FieldSpec("genres", "multi_hot", len(genre_names) + 1),
            FieldSpec("history", "sequence", item_spec_size, shares_vocabulary_with="item_id"),
        ),
        max_history=max_history,
        max_tags=max_tags,
        target_field="item_id",
        tag_field="genres",
    )
    bounds = np.concatenate(([0], np.cumsum(part_sizes)))
    parts = {
        part_name: BehaviorSamples(
            sparse=sparse[bounds[i] : bounds[i + 1]],
            history_items=history[bounds[i] : bounds[i + 1]],
            history_length=history_length[bounds[i] : bounds[i + 1]],
            labels=labels[bounds[i] : bounds[i + 1]],
            item_tags=item_tags,
            feature_map=feature_map,
            timestamps=timestamps[bounds[i] : bounds[i + 1]],
            name=f"{name}:{part_name}",
        )
        for i, part_name in enumerate(SPLIT_NAMES)
    }
    return BehaviorSplit(
        train=parts["train"],
        valid=parts["valid"],
        test=parts["test"],
        feature_map=feature_map,
        name=name,
    )


def _tags_table(flags: np.ndarray | None, n_items: int) -> tuple[np.ndarray, int]:
    """``(n_items + 1, G)`` int64 0-padded tag IDs (column of the flag + 1) per item row + 1.

    Args:
        flags: ``(n_items, n_tags)`` bool, True where the item has the tag, or None (no tags).
        n_items: number of items.

    Returns:
        ``(item_tags, G)`` with ``G = max(1, most tags of any item)``; row 0 is all zeros.
    """
    if flags is None:
        return np.zeros((n_items + 1, 1), dtype=np.int64), 1
    per_item = flags.sum(axis=1)
    max_tags = max(1, int(per_item.max(initial=0)))
    item_rows, tag_columns = np.nonzero(flags)  # row-major: tags ascending within an item
    first = np.concatenate(([0], np.cumsum(per_item)[:-1]))
    slot = np.arange(len(item_rows)) - first[item_rows]
    item_tags = np.zeros((n_items + 1, max_tags), dtype=np.int64)
    item_tags[item_rows + 1, slot] = tag_columns + 1
    return item_tags, max_tags
