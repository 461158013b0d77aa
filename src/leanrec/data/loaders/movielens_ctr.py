"""MovieLens-1M as CTR samples with the user's behaviour sequence (AMEIR's ML-1M setting).

:func:`build_movielens_ctr` reads a folder with ``ratings*.dat`` (with timestamps), ``users.dat``
and ``movies.dat`` and returns a :class:`~leanrec.data.behavior.BehaviorSplit` (per-user temporal
train / valid / test), cached as ``.npz`` + ``feature_map.json``. The registry builds it as
``"ml-1m-ctr"`` from its ``ml-1m-partial`` folder (:func:`leanrec.data.registry.
load_behavior_dataset`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leanrec.data.behavior import (
    SPLIT_NAMES,
    BehaviorSamples,
    BehaviorSplit,
    FeatureMap,
    FieldSpec,
    check_fractions,
    right_aligned_history,
    temporal_split_counts,
)
from leanrec.data.errors import DataError, require_file
from leanrec.data.interactions import Interactions
from leanrec.data.loaders._parsing import index_lines, read_bytes, single_byte_separator
from leanrec.data.loaders.movielens import find_ml1m_ratings_file, load_movielens_1m
from leanrec.data.locations import user_cache_dir

__all__ = ["ML1M_CTR_FIELDS", "build_movielens_ctr", "default_behavior_cache_dir"]

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
    folder: str | Path,
    max_history: int = 50,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    cache_dir: str | Path | None = None,
    *,
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
        folder: a folder with ``ratings*.dat``, ``users.dat`` and ``movies.dat`` (the registry
            passes its ``ml-1m-partial`` folder: users 1-2999 with timestamps; GroupLens'
            timestamped ``ml-1m`` files work too).
        max_history: ``N``, columns of ``history_items``.
        valid_fraction: share of each user's ratings (before the test part) for validation.
        test_fraction: share of each user's latest ratings for test.
        cache_dir: root of the processed-data cache; default
            :func:`default_behavior_cache_dir` (``~/.cache/leanrec/processed``).
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
    check_fractions(valid_fraction, test_fraction)
    if int(max_history) != max_history or max_history < 1:
        raise DataError(f"max_history must be a positive integer, got {max_history!r}")
    if int(zip_prefix_length) != zip_prefix_length or zip_prefix_length < 1:
        raise DataError(f"zip_prefix_length must be a positive integer, got {zip_prefix_length!r}")
    source_folder = Path(folder)
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
        reused = BehaviorSplit.load_matching(cache_folder, name, params)
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
    ratings, users, movies = _read_ml1m(ratings_path, users_path, movies_path, name)
    user_table, user_columns = _user_table(
        ratings, users, zip_prefix_length, users_path, ratings_path
    )
    items = _item_tables(movies)
    item_code_of_rating = _item_codes(ratings, items.movie_ids, movies_path, ratings_path)
    user_code_of_rating = ratings.users + 1  # (n,) in 1..n_users
    assert ratings.timestamps is not None and ratings.ratings is not None

    # ---- time order: by user, then timestamp, then file row (lexsort is stable)
    n = len(ratings)
    n_rated_users = len(ratings.user_vocab.raw_ids)
    order = np.lexsort((np.arange(n), ratings.timestamps, ratings.users))
    counts = np.bincount(ratings.users, minlength=n_rated_users)
    user_first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    group_start = user_first[ratings.users[order]]  # (n,) position of the user's first rating
    positions, part_sizes = _parts_in_time_order(
        ratings.users[order], group_start, counts, valid_fraction, test_fraction, ratings_path
    )

    history, history_length = right_aligned_history(
        item_code_of_rating[order], group_start, positions, max_history
    )
    rows = order[positions]  # original rating row of each sample
    sparse = np.concatenate(
        (user_table[user_code_of_rating[rows]], items.table[item_code_of_rating[rows]]), axis=1
    )
    labels = (ratings.ratings[rows] >= positive_threshold).astype(np.float32)
    timestamps = ratings.timestamps[rows]

    feature_map = FeatureMap(
        fields=(
            FieldSpec("user_id", "categorical", len(user_table)),
            *(FieldSpec(f, "categorical", size) for f, size in user_columns.items()),
            FieldSpec("item_id", "categorical", len(items.table)),
            FieldSpec("year", "categorical", items.year_vocab),
            FieldSpec("genres", "multi_hot", items.n_genres + 1),
            FieldSpec("history", "sequence", len(items.table), shares_vocabulary_with="item_id"),
        ),
        max_history=max_history,
        max_tags=items.max_tags,
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
            item_tags=items.tags,
            feature_map=feature_map,
            timestamps=timestamps[bounds[i] : bounds[i + 1]],
            name=f"{name}:{part_name}",
        )
        for i, part_name in enumerate(SPLIT_NAMES)
    }
    return BehaviorSplit.from_parts(parts, feature_map, name)


def _read_ml1m(
    ratings_path: Path, users_path: Path, movies_path: Path, name: str
) -> tuple[Interactions, pd.DataFrame, pd.DataFrame]:
    """The ratings (with timestamps) and the ``users.dat`` / ``movies.dat`` frames, indexed by
    raw ID, each ID once."""
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
    return ratings, users, movies


def _user_table(
    ratings: Interactions,
    users: pd.DataFrame,
    zip_prefix_length: int,
    users_path: Path,
    ratings_path: Path,
) -> tuple[np.ndarray, dict[str, int]]:
    """``(n_user_vocab, 5)`` int64 codes ``user_id, gender, age, occupation, zip`` per user
    code (row 0 = padding; user code ``u + 1`` for user index ``u``), and the vocabulary size of
    each demographic column by name."""
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
    return user_table, {field: size for field, (_, size) in user_columns.items()}


@dataclass(frozen=True)
class _ItemTables:
    """What ``movies.dat`` gives every movie (item code ``k + 1`` for the ``k``-th movie ID)."""

    movie_ids: np.ndarray
    """Raw movie IDs, ascending, ``(n_movies,)``."""
    table: np.ndarray
    """``(n_movies + 1, 2)`` int64 codes ``item_id, year`` per item code (row 0 = padding)."""
    year_vocab: int
    """Size of the year vocabulary (0 = unknown year)."""
    tags: np.ndarray
    """``(n_movies + 1, G)`` genre IDs per item code (see :func:`_tags_table`)."""
    max_tags: int
    """``G``."""
    n_genres: int
    """Number of genres (genre ID 0 is padding)."""


def _item_tables(movies: pd.DataFrame) -> _ItemTables:
    """The item table and genre tags of every movie of ``movies.dat``, rated or not."""
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
    return _ItemTables(movie_ids, item_table, year_vocab, item_tags, max_tags, len(genre_names))


def _item_codes(
    ratings: Interactions, movie_ids: np.ndarray, movies_path: Path, ratings_path: Path
) -> np.ndarray:
    """Item code ``(n,)`` in ``1..n_movies`` of every rating; a movie missing from
    ``movies.dat`` raises :class:`DataError` naming its first rating's line."""
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
    return (movie_position + 1)[ratings.items]


def _parts_in_time_order(
    users_sorted: np.ndarray,
    group_start: np.ndarray,
    counts: np.ndarray,
    valid_fraction: float,
    test_fraction: float,
    ratings_path: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """Assign each rating in time order (user ``users_sorted (n,)``, its first position
    ``group_start (n,)``; ``counts`` ratings per user) to train, valid or test.

    Returns:
        ``(positions, part_sizes)``: the time-ordered positions grouped by part (stable: by
        user, then time within a part) and the three part sizes.
    """
    rank = np.arange(len(users_sorted)) - group_start
    n_train, n_valid, _ = temporal_split_counts(counts, valid_fraction, test_fraction)
    part = np.zeros(len(users_sorted), dtype=np.int8)  # 0 train, 1 valid, 2 test
    part[rank >= n_train[users_sorted]] = 1
    part[rank >= (n_train + n_valid)[users_sorted]] = 2
    if not (part == 2).any():
        raise DataError(
            f"no user has the 3 ratings needed for a validation and a test sample "
            f"({len(counts)} users, at most {counts.max()} ratings each)",
            path=ratings_path,
        )
    return np.argsort(part, kind="stable"), np.bincount(part, minlength=3)


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
