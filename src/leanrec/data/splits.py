"""Train / validation / test protocols, filters and clean-ups over :class:`Interactions`.

Every function here is vectorised with numpy: interactions are ordered once with
:func:`numpy.lexsort` on ``(user, key)`` (``key`` being a random permutation, a timestamp, ...),
each interaction's rank inside its user's group comes from the group starts (``np.diff`` of the
start positions gives the group sizes), and the part an interaction goes to is read off its rank.
There is no per-user Python loop, so a split of tens of millions of interactions takes seconds.

All splits return a :class:`Split` whose three parts share the input's vocabularies (same
``n_users`` / ``n_items``), keep the input's row order inside each part, and together hold every
input interaction exactly once. Unless ``allow_empty_train_users=True`` is passed, a split ends
with :func:`check_split`, which raises :class:`DataError` when a user has validation or test
interactions but no training interaction (a model could not score such a user).

Rounding rule (:func:`ratio_split`, :func:`given_split`, :func:`temporal_split_per_user`):
    for a user with ``n`` interactions and ratios ``(r_train, r_valid, r_test)`` (summing to 1),
    the boundaries between parts are the *cumulative* ratios times ``n``, each rounded to the
    nearest integer with ties to even (``numpy.rint``)::

        n_train = max(1, rint(n * r_train))
        n_train_valid = max(n_train, rint(n * (r_train + r_valid)))
        n_valid = n_train_valid - n_train
        n_test  = n - n_train_valid

    Rounding the cumulative boundaries (rather than flooring each part as RecBole does) keeps the
    overall fractions unbiased: a 50/25/25 split of users with ~30 interactions each lands within
    a fraction of a percent of 0.5/0.25/0.25, where flooring the small parts would shrink them by
    ~1/2 interaction per user (~2%). ``max(1, .)`` makes every user with at least one interaction
    keep at least one training interaction; very small users therefore often get no validation or
    test interaction (e.g. with 80/10/10, users with fewer than 5 interactions are all training).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary, Interactions, Split

SeedLike = int | np.random.Generator
"""An ``int`` seed or an existing :class:`numpy.random.Generator` (used as is)."""

_PART_TRAIN, _PART_VALID, _PART_TEST = 0, 1, 2
_MAX_NAMED_USERS = 5


# ---------------------------------------------------------------------------------- helpers
def _rng(seed: SeedLike) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rank_within_user(
    users: np.ndarray, order_key: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each interaction inside its user's group, and that group's size.

    Interactions of a user are ordered by ``order_key`` ascending; ties (and ``order_key=None``)
    keep the input order, since :func:`numpy.lexsort` is stable.

    Args:
        users: user index per interaction, shape ``(n,)``.
        order_key: sort key per interaction, shape ``(n,)``, or ``None`` for input order.

    Returns:
        ``(rank, group_size)``, both shape ``(n,)`` int64 in input order: ``rank`` is in
        ``[0, group_size)``, ``group_size`` is the number of interactions of that user.
    """
    n = len(users)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    keys = (users,) if order_key is None else (order_key, users)
    order = np.lexsort(keys)
    sorted_users = users[order]
    is_group_start = np.empty(n, dtype=bool)
    is_group_start[0] = True
    np.not_equal(sorted_users[1:], sorted_users[:-1], out=is_group_start[1:])
    group_starts = np.flatnonzero(is_group_start)
    group_sizes = np.diff(np.append(group_starts, n))
    group_of_sorted = np.cumsum(is_group_start) - 1
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64) - group_starts[group_of_sorted]
    size = np.empty(n, dtype=np.int64)
    size[order] = group_sizes[group_of_sorted]
    return rank, size


def _normalise_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """``(train, valid, test)`` from 3 ratios or ``(train, test)``; must be >= 0 and sum to 1."""
    values = [float(r) for r in ratios]
    if len(values) == 2:
        values = [values[0], 0.0, values[1]]
    if len(values) != 3:
        raise ValueError(f"ratios must be (train, valid, test) or (train, test), got {ratios!r}")
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"ratios must be finite and non-negative, got {ratios!r}")
    if values[0] <= 0:
        raise ValueError(f"the training ratio must be positive, got {ratios!r}")
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1, got {ratios!r} (sum {total:g})")
    return values[0] / total, values[1] / total, values[2] / total


def _parts_by_rank(
    rank: np.ndarray, size: np.ndarray, ratios: tuple[float, float, float]
) -> np.ndarray:
    """Part (0 train, 1 valid, 2 test) per interaction by the module's rounding rule.

    Args:
        rank: rank of each interaction inside its user, shape ``(n,)``.
        size: interactions of that user, shape ``(n,)``.
        ratios: normalised ``(train, valid, test)``.

    Returns:
        int8 part per interaction, shape ``(n,)``.
    """
    # Round the cumulative ratios first so e.g. 0.8 + 0.1 is exactly 0.9 and ties stay ties.
    cum_train = round(ratios[0], 12)
    cum_train_valid = round(ratios[0] + ratios[1], 12)
    size_f = size.astype(np.float64)
    n_train = np.maximum(1, np.rint(size_f * cum_train).astype(np.int64))
    n_train_valid = np.maximum(n_train, np.rint(size_f * cum_train_valid).astype(np.int64))
    n_train_valid = np.minimum(n_train_valid, size)
    part = np.full(len(rank), _PART_TEST, dtype=np.int8)
    part[rank < n_train_valid] = _PART_VALID
    part[rank < n_train] = _PART_TRAIN
    return part


def _split_by_part(data: Interactions, part: np.ndarray, allow_empty_train_users: bool) -> Split:
    split = Split(
        train=data.subset(part == _PART_TRAIN, name=f"{data.name}-train"),
        valid=data.subset(part == _PART_VALID, name=f"{data.name}-valid"),
        test=data.subset(part == _PART_TEST, name=f"{data.name}-test"),
    )
    if not allow_empty_train_users:
        check_split(split)
    return split


def _require_nonempty(data: Interactions, what: str) -> None:
    if len(data) == 0:
        raise DataError(f"cannot {what} dataset {data.name!r}: it has no interactions")


def _require_timestamps(data: Interactions, what: str) -> np.ndarray:
    if data.timestamps is None:
        raise DataError(f"{what} needs timestamps, but dataset {data.name!r} has none")
    return data.timestamps


def _same_vocabularies(a: Interactions, b: Interactions) -> bool:
    return (a.user_vocab is b.user_vocab or a.user_vocab == b.user_vocab) and (
        a.item_vocab is b.item_vocab or a.item_vocab == b.item_vocab
    )


# ---------------------------------------------------------------------------------- checks
def users_without_training(split: Split) -> np.ndarray:
    """Indices of users with validation or test interactions but no training interaction.

    Returns:
        Sorted user indices, shape ``(k,)`` int64.
    """
    n_users = split.n_users
    has_train = np.bincount(split.train.users, minlength=n_users) > 0
    evaluated = (np.bincount(split.valid.users, minlength=n_users) > 0) | (
        np.bincount(split.test.users, minlength=n_users) > 0
    )
    return np.flatnonzero(evaluated & ~has_train).astype(np.int64)


def check_split(split: Split) -> None:
    """Raise :class:`DataError` if a user is evaluated (valid/test) without training data.

    Users with no interaction at all in any part are fine: nothing is asked of them. The
    message gives the number of offending users and the raw IDs of the first few.
    """
    missing = users_without_training(split)
    if len(missing) == 0:
        return
    shown = split.train.user_vocab.to_raw(missing[:_MAX_NAMED_USERS]).tolist()
    more = ", ..." if len(missing) > _MAX_NAMED_USERS else ""
    shown_text = ", ".join(repr(r) for r in shown)
    raise DataError(
        f"{len(missing)} user(s) of {split.train.name!r} have validation/test interactions but "
        f"no training interaction (raw user IDs: {shown_text}{more}); filter them out (e.g. "
        "kcore_filter) or pass allow_empty_train_users=True"
    )


# ---------------------------------------------------------------------------------- splits
def ratio_split(
    data: Interactions,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: SeedLike = 0,
    allow_empty_train_users: bool = False,
) -> Split:
    """Per-user random split by ratios.

    Each user's interactions are shuffled and cut by the module's rounding rule (cumulative
    boundaries rounded to nearest, ties to even; every user keeps >= 1 training interaction).

    Args:
        data: interactions to split.
        ratios: ``(train, valid, test)``, or ``(train, test)`` for an empty validation part;
            non-negative, summing to 1.
        seed: int seed or :class:`numpy.random.Generator`.
        allow_empty_train_users: skip :func:`check_split` (cannot fail here, kept for symmetry).
    """
    _require_nonempty(data, "split")
    parts_ratios = _normalise_ratios(ratios)
    random_key = _rng(seed).permutation(len(data))
    rank, size = _rank_within_user(data.users, random_key)
    return _split_by_part(data, _parts_by_rank(rank, size, parts_ratios), allow_empty_train_users)


def given_split(
    train: Interactions,
    test: Interactions,
    valid_ratio: float = 0.1,
    seed: SeedLike = 0,
    allow_empty_train_users: bool = False,
) -> Split:
    """Split for datasets shipped as train and test files (LightGCN format).

    ``test`` is kept as is; a random ``valid_ratio`` of each user's training interactions
    becomes the validation part, by the module's rounding rule applied to the ratios
    ``(1 - valid_ratio, valid_ratio)`` (every user keeps >= 1 training interaction).

    Args:
        train: the given training interactions.
        test: the given test interactions, over the same vocabularies as ``train``.
        valid_ratio: fraction of each user's training interactions moved to validation, in
            ``[0, 1)``; 0 gives an empty validation part.
        seed: int seed or :class:`numpy.random.Generator`.
        allow_empty_train_users: do not raise when a test user has no training interaction.
    """
    if not _same_vocabularies(train, test):
        raise DataError(
            f"train {train.name!r} and test {test.name!r} must share user and item vocabularies"
        )
    if not 0.0 <= valid_ratio < 1.0:
        raise ValueError(f"valid_ratio must be in [0, 1), got {valid_ratio!r}")
    _require_nonempty(train, "split")
    random_key = _rng(seed).permutation(len(train))
    rank, size = _rank_within_user(train.users, random_key)
    part = _parts_by_rank(rank, size, (1.0 - valid_ratio, valid_ratio, 0.0))
    split = Split(
        train=train.subset(part == _PART_TRAIN),
        valid=train.subset(part == _PART_VALID, name=f"{train.name}-valid"),
        test=test,
    )
    if not allow_empty_train_users:
        check_split(split)
    return split


def temporal_split_global(
    data: Interactions,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    allow_empty_train_users: bool = False,
) -> Split:
    """Split at global time quantiles: the earliest ``ratios[0]`` of all interactions train, ...

    Interactions are ordered by timestamp (ties by input order) and the part boundaries are
    ``rint(n * cumulative ratio)``, so the part sizes are exact and every validation/test
    timestamp is ``>=`` every training timestamp. Users first seen after the training cut have
    no training interaction, which :func:`check_split` rejects by default; pass
    ``allow_empty_train_users=True`` to keep them (cold-start evaluation).

    Raises:
        DataError: if ``data`` has no timestamps.
    """
    _require_nonempty(data, "split")
    timestamps = _require_timestamps(data, "temporal_split_global")
    r_train, r_valid, _ = _normalise_ratios(ratios)
    n = len(data)
    n_train = int(np.rint(n * round(r_train, 12)))
    n_train_valid = max(n_train, int(np.rint(n * round(r_train + r_valid, 12))))
    time_order = np.argsort(timestamps, kind="stable")
    part = np.empty(n, dtype=np.int8)
    part[time_order[:n_train]] = _PART_TRAIN
    part[time_order[n_train:n_train_valid]] = _PART_VALID
    part[time_order[n_train_valid:]] = _PART_TEST
    return _split_by_part(data, part, allow_empty_train_users)


def temporal_split_per_user(
    data: Interactions,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    allow_empty_train_users: bool = False,
) -> Split:
    """Per-user split in each user's own time order: earliest to train, latest to test.

    Each user's interactions are ordered by timestamp (ties by input order, i.e. stable) and
    cut by the module's rounding rule, so a user's validation/test timestamps are ``>=`` all
    of their training timestamps.

    Raises:
        DataError: if ``data`` has no timestamps.
    """
    _require_nonempty(data, "split")
    timestamps = _require_timestamps(data, "temporal_split_per_user")
    parts_ratios = _normalise_ratios(ratios)
    rank, size = _rank_within_user(data.users, timestamps)
    return _split_by_part(data, _parts_by_rank(rank, size, parts_ratios), allow_empty_train_users)


def leave_one_out(
    data: Interactions,
    order: Literal["time", "random"] = "time",
    seed: SeedLike = 0,
    allow_empty_train_users: bool = False,
) -> Split:
    """Leave-one-out: each user's last interaction is test, the second last validation.

    Users with fewer than 3 interactions keep all of them in training (they cannot give one
    to each part while keeping one to train on).

    Args:
        order: ``"time"`` orders each user's interactions by timestamp (ties by input order);
            ``"random"`` by a random permutation.
        seed: int seed or :class:`numpy.random.Generator` (used by ``order="random"``).

    Raises:
        DataError: if ``order="time"`` and ``data`` has no timestamps.
    """
    _require_nonempty(data, "split")
    if order == "time":
        order_key = _require_timestamps(data, "leave_one_out(order='time')")
    elif order == "random":
        order_key = _rng(seed).permutation(len(data))
    else:
        raise ValueError(f"order must be 'time' or 'random', got {order!r}")
    rank, size = _rank_within_user(data.users, order_key)
    part = np.full(len(data), _PART_TRAIN, dtype=np.int8)
    eligible = size >= 3
    part[eligible & (rank == size - 1)] = _PART_TEST
    part[eligible & (rank == size - 2)] = _PART_VALID
    return _split_by_part(data, part, allow_empty_train_users)


# ---------------------------------------------------------------------------------- filters
def kcore_filter(data: Interactions, user_k: int, item_k: int) -> Interactions:
    """Keep the (user_k, item_k)-core: every user has >= user_k, every item >= item_k rows.

    Rows are removed repeatedly until both conditions hold (removing an item can push a user
    under ``user_k`` and back). Rows are counted as given: run :func:`drop_duplicates` first
    to count distinct items. The result gets new compact vocabularies (only users and items
    that remain, in their old relative order, with their raw IDs), so indices change.

    Side tables in ``data.side`` are passed through unchanged (they are not re-indexed).

    Raises:
        DataError: if nothing survives the filter.
    """
    if user_k < 0 or item_k < 0:
        raise ValueError(f"user_k and item_k must be >= 0, got {user_k}, {item_k}")
    keep = np.ones(len(data), dtype=bool)
    while True:
        user_counts = np.bincount(data.users[keep], minlength=data.n_users)
        item_counts = np.bincount(data.items[keep], minlength=data.n_items)
        new_keep = keep & (user_counts[data.users] >= user_k) & (item_counts[data.items] >= item_k)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    if not keep.any():
        raise DataError(
            f"kcore_filter(user_k={user_k}, item_k={item_k}) removed every interaction of "
            f"{data.name!r}"
        )
    users, items = data.users[keep], data.items[keep]
    kept_users = np.unique(users)
    kept_items = np.unique(items)
    new_user_index = np.full(data.n_users, -1, dtype=np.int64)
    new_user_index[kept_users] = np.arange(len(kept_users))
    new_item_index = np.full(data.n_items, -1, dtype=np.int64)
    new_item_index[kept_items] = np.arange(len(kept_items))
    return Interactions(
        users=new_user_index[users],
        items=new_item_index[items],
        user_vocab=IdVocabulary(data.user_vocab.raw_ids[kept_users], name=data.user_vocab.name),
        item_vocab=IdVocabulary(data.item_vocab.raw_ids[kept_items], name=data.item_vocab.name),
        ratings=None if data.ratings is None else data.ratings[keep],
        timestamps=None if data.timestamps is None else data.timestamps[keep],
        name=data.name,
        side=data.side,
    )


def to_implicit(data: Interactions, threshold: float) -> Interactions:
    """Keep interactions with ``rating >= threshold`` (same vocabularies, ratings kept).

    Raises:
        DataError: if ``data`` has no ratings.
    """
    if data.ratings is None:
        raise DataError(f"to_implicit needs ratings, but dataset {data.name!r} has none")
    return data.subset(data.ratings >= threshold)


def drop_duplicates(data: Interactions, keep: Literal["first", "last"] = "last") -> Interactions:
    """One row per (user, item) pair, same vocabularies, surviving rows in input order.

    Args:
        keep: which occurrence of a repeated pair survives: ``"last"`` (the latest by
            timestamp when there are timestamps, ties by input order; else the last in input
            order) or ``"first"`` (the earliest, likewise).
    """
    if keep not in ("first", "last"):
        raise ValueError(f"keep must be 'first' or 'last', got {keep!r}")
    n = len(data)
    if n == 0:
        return data.subset(np.zeros(0, dtype=np.int64))
    pair_key = data.users * np.int64(data.n_items) + data.items
    input_order = np.arange(n, dtype=np.int64)
    sort_keys = (
        (input_order, pair_key)
        if data.timestamps is None
        else (input_order, data.timestamps, pair_key)
    )
    order = np.lexsort(sort_keys)
    sorted_pairs = pair_key[order]
    if keep == "last":
        is_chosen = np.append(sorted_pairs[1:] != sorted_pairs[:-1], True)
    else:
        is_chosen = np.insert(sorted_pairs[1:] != sorted_pairs[:-1], 0, True)
    return data.subset(np.sort(order[is_chosen]))


__all__ = [
    "SeedLike",
    "check_split",
    "drop_duplicates",
    "given_split",
    "kcore_filter",
    "leave_one_out",
    "ratio_split",
    "temporal_split_global",
    "temporal_split_per_user",
    "to_implicit",
    "users_without_training",
]
