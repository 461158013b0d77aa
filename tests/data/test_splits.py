"""Tests for leanrec.data.splits: partitions, rounding, order, determinism, filters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary, Interactions, Split
from leanrec.data.splits import (
    check_split,
    drop_duplicates,
    given_split,
    kcore_filter,
    leave_one_out,
    ratio_split,
    temporal_split_global,
    temporal_split_per_user,
    to_implicit,
)
from leanrec.data.synthetic import make_synthetic

_NO_ROWS = np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------------- fixtures
def _dataset(user_sizes: list[int], seed: int = 0, n_items: int = 50) -> Interactions:
    """Users ``u0, u1, ...`` with the given numbers of interactions, rows shuffled.

    Items are distinct per user and timestamps distinct overall (multiples of 10).
    """
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(len(user_sizes)), user_sizes)
    items = np.concatenate([rng.choice(n_items, size=k, replace=False) for k in user_sizes])
    n = len(users)
    shuffle = rng.permutation(n)
    return Interactions(
        users=users[shuffle],
        items=items[shuffle],
        user_vocab=IdVocabulary([f"u{i}" for i in range(len(user_sizes))], name="user"),
        item_vocab=IdVocabulary.identity(n_items, name="item"),
        ratings=rng.integers(1, 6, size=n).astype(np.float32),
        timestamps=rng.permutation(n).astype(np.int64) * 10,
        name="toy",
    )


@pytest.fixture(scope="module")
def toy() -> Interactions:
    return _dataset([1, 2, 3, 4, 5, 7, 10, 20, 33], seed=3)


@pytest.fixture(scope="module")
def synthetic() -> Interactions:
    return make_synthetic(seed=7)


def _counts_per_user(data: Interactions) -> np.ndarray:
    return np.bincount(data.users, minlength=data.n_users)


def _rows(data: Interactions) -> np.ndarray:
    """Rows ``(user, item, timestamp, rating)`` sorted, shape ``(n, 4)``."""
    assert data.timestamps is not None and data.ratings is not None
    table = np.stack([data.users, data.items, data.timestamps, data.ratings.astype(np.int64)], 1)
    return np.unique(table, axis=0) if len(table) else table


def _assert_partition(data: Interactions, split: Split) -> None:
    """Parts are disjoint and their union is the input (whose rows are all distinct)."""
    parts = (split.train, split.valid, split.test)
    for part in parts:
        assert part.user_vocab is data.user_vocab
        assert part.item_vocab is data.item_vocab
    input_rows = _rows(data)
    assert len(input_rows) == len(data)
    assert sum(len(p) for p in parts) == len(data)
    union = parts[0].concat(parts[1]).concat(parts[2])
    np.testing.assert_array_equal(_rows(union), input_rows)  # same distinct rows, same count


SPLITTERS: dict[str, Callable[[Interactions], Split]] = {
    "ratio": lambda d: ratio_split(d, (0.6, 0.2, 0.2), seed=1),
    "ratio_two": lambda d: ratio_split(d, (0.7, 0.3), seed=1),
    "temporal_global": lambda d: temporal_split_global(d, allow_empty_train_users=True),
    "temporal_per_user": lambda d: temporal_split_per_user(d, (0.5, 0.25, 0.25)),
    "loo_time": lambda d: leave_one_out(d, order="time"),
    "loo_random": lambda d: leave_one_out(d, order="random", seed=2),
}


@pytest.mark.parametrize("name", sorted(SPLITTERS))
def test_split_is_a_partition_of_the_input(name: str, toy: Interactions) -> None:
    _assert_partition(toy, SPLITTERS[name](toy))


@pytest.mark.parametrize("name", sorted(SPLITTERS))
def test_split_partition_on_synthetic(name: str, synthetic: Interactions) -> None:
    split = SPLITTERS[name](synthetic)
    _assert_partition(synthetic, split)


# ---------------------------------------------------------------------------------- ratio
@pytest.mark.parametrize(
    ("ratios", "size", "expected"),
    [
        # n_train = max(1, rint(n * r_train)); n_train_valid = rint(n * (r_train + r_valid))
        ((0.8, 0.1, 0.1), 1, (1, 0, 0)),
        ((0.8, 0.1, 0.1), 2, (2, 0, 0)),
        ((0.8, 0.1, 0.1), 3, (2, 1, 0)),  # rint(2.4) = 2, rint(2.7) = 3
        ((0.8, 0.1, 0.1), 4, (3, 1, 0)),  # rint(3.2) = 3, rint(3.6) = 4
        ((0.8, 0.1, 0.1), 5, (4, 0, 1)),  # rint(4.0) = 4, rint(4.5) = 4 (ties to even)
        ((0.8, 0.1, 0.1), 10, (8, 1, 1)),
        ((0.8, 0.1, 0.1), 20, (16, 2, 2)),
        ((0.5, 0.25, 0.25), 2, (1, 1, 0)),  # rint(1.0) = 1, rint(1.5) = 2
        ((0.5, 0.25, 0.25), 3, (2, 0, 1)),  # rint(1.5) = 2, rint(2.25) = 2
        ((0.5, 0.25, 0.25), 4, (2, 1, 1)),
        ((0.1, 0.45, 0.45), 3, (1, 1, 1)),  # rint(0.3) = 0 -> raised to 1 training item
        ((0.5, 0.5), 4, (2, 0, 2)),
        ((0.5, 0.5), 7, (4, 0, 3)),  # rint(3.5) = 4
    ],
)
def test_ratio_split_counts_by_hand(
    ratios: tuple[float, ...], size: int, expected: tuple[int, int, int]
) -> None:
    data = _dataset([size], seed=size)
    split = ratio_split(data, ratios, seed=0)
    assert (len(split.train), len(split.valid), len(split.test)) == expected


def test_ratio_split_counts_per_user(toy: Interactions) -> None:
    split = ratio_split(toy, (0.8, 0.1, 0.1), seed=5)
    sizes = _counts_per_user(toy)
    n_train = np.maximum(1, np.rint(sizes * 0.8)).astype(int)
    n_train_valid = np.maximum(n_train, np.rint(sizes * 0.9)).astype(int)
    np.testing.assert_array_equal(_counts_per_user(split.train), n_train)
    np.testing.assert_array_equal(_counts_per_user(split.valid), n_train_valid - n_train)
    np.testing.assert_array_equal(_counts_per_user(split.test), sizes - n_train_valid)


def test_ratio_split_every_user_keeps_training(synthetic: Interactions) -> None:
    split = ratio_split(synthetic, (0.1, 0.45, 0.45), seed=0)
    assert (_counts_per_user(split.train) >= 1).all()


def test_ratio_split_50_25_25_fractions_on_synthetic(synthetic: Interactions) -> None:
    split = ratio_split(synthetic, (0.5, 0.25, 0.25), seed=11)
    n = len(synthetic)
    assert abs(len(split.train) / n - 0.5) < 0.01
    assert abs(len(split.valid) / n - 0.25) < 0.01
    assert abs(len(split.test) / n - 0.25) < 0.01


def test_ratio_split_is_seeded(toy: Interactions) -> None:
    a = ratio_split(toy, seed=4)
    b = ratio_split(toy, seed=4)
    c = ratio_split(toy, seed=np.random.default_rng(4))
    d = ratio_split(toy, seed=5)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(a, part).timestamps, getattr(b, part).timestamps)
        np.testing.assert_array_equal(getattr(a, part).timestamps, getattr(c, part).timestamps)
    assert not np.array_equal(a.train.items, d.train.items)


def test_ratio_split_two_ratios_gives_empty_valid(toy: Interactions) -> None:
    split = ratio_split(toy, (0.8, 0.2), seed=0)
    assert len(split.valid) == 0
    assert split.valid.n_users == toy.n_users


@pytest.mark.parametrize("ratios", [(0.5, 0.6), (0.0, 0.5, 0.5), (0.8, -0.1, 0.3), (1.0,)])
def test_ratio_split_rejects_bad_ratios(ratios: tuple[float, ...], toy: Interactions) -> None:
    with pytest.raises(ValueError):
        ratio_split(toy, ratios)


# ---------------------------------------------------------------------------------- given
def test_given_split_carves_validation_from_train(synthetic: Interactions) -> None:
    base = ratio_split(synthetic, (0.8, 0.2), seed=0)
    split = given_split(base.train, base.test, valid_ratio=0.25, seed=3)
    assert split.test is base.test
    _assert_partition(base.train, Split(split.train, split.valid, split.valid.subset(_NO_ROWS)))
    sizes = _counts_per_user(base.train)
    n_train = np.maximum(1, np.rint(sizes * 0.75)).astype(int)
    np.testing.assert_array_equal(_counts_per_user(split.train), n_train)
    again = given_split(base.train, base.test, valid_ratio=0.25, seed=3)
    np.testing.assert_array_equal(split.valid.items, again.valid.items)
    np.testing.assert_array_equal(split.valid.users, again.valid.users)


def test_given_split_zero_valid_ratio(toy: Interactions) -> None:
    base = ratio_split(toy, (0.8, 0.2), seed=0)
    split = given_split(base.train, base.test, valid_ratio=0.0)
    assert len(split.valid) == 0 and len(split.train) == len(base.train)


def test_given_split_needs_shared_vocabularies(toy: Interactions) -> None:
    other = _dataset([3, 3], seed=1)
    with pytest.raises(DataError, match="vocabularies"):
        given_split(toy, other)


# ---------------------------------------------------------------------------------- check
def test_check_split_names_users_without_training(toy: Interactions) -> None:
    base = ratio_split(toy, (0.8, 0.2), seed=0)
    # Drop user u8's training rows: u8 now has test items but nothing to train on.
    u8 = int(toy.user_vocab.to_index(["u8"])[0])
    train = base.train.subset(base.train.users != u8)
    with pytest.raises(DataError, match=r"1 user\(s\).*'u8'"):
        given_split(train, base.test, valid_ratio=0.1)
    split = given_split(train, base.test, valid_ratio=0.1, allow_empty_train_users=True)
    with pytest.raises(DataError, match="allow_empty_train_users"):
        check_split(split)


def test_check_split_lists_first_few_and_count() -> None:
    data = _dataset([2] * 8, seed=0)
    split = Split(data.subset(_NO_ROWS), data.subset(_NO_ROWS), data)
    with pytest.raises(DataError, match=r"^8 user\(s\).*'u0', 'u1', 'u2', 'u3', 'u4', \.\.\."):
        check_split(split)


def test_temporal_global_rejects_cold_users_by_default() -> None:
    # u1's only interaction is the latest one: it lands in test with no training history.
    data = Interactions.from_raw(
        ["a", "a", "a", "a", "b"], [1, 2, 3, 4, 5], timestamps=[1, 2, 3, 4, 5]
    )
    with pytest.raises(DataError, match="'b'"):
        temporal_split_global(data, (0.8, 0.2))
    split = temporal_split_global(data, (0.8, 0.2), allow_empty_train_users=True)
    assert split.test.user_vocab.to_raw(split.test.users).tolist() == ["b"]


# ---------------------------------------------------------------------------------- temporal
def _per_user_extreme(data: Interactions, reduce: str) -> np.ndarray:
    assert data.timestamps is not None
    if reduce == "max":
        out = np.full(data.n_users, np.iinfo(np.int64).min)
        np.maximum.at(out, data.users, data.timestamps)
    else:
        out = np.full(data.n_users, np.iinfo(np.int64).max)
        np.minimum.at(out, data.users, data.timestamps)
    return out


def test_temporal_per_user_respects_time(synthetic: Interactions) -> None:
    split = temporal_split_per_user(synthetic, (0.6, 0.2, 0.2))
    last_train = _per_user_extreme(split.train, "max")
    first_valid = _per_user_extreme(split.valid, "min")
    last_valid = _per_user_extreme(split.valid, "max")
    first_test = _per_user_extreme(split.test, "min")
    assert (last_train < first_test).all()  # users without test have first_test = +inf
    assert (last_train < first_valid).all()
    has_valid = _counts_per_user(split.valid) > 0
    assert (last_valid[has_valid] < first_test[has_valid]).all()


def test_temporal_per_user_counts_follow_rounding_rule(toy: Interactions) -> None:
    split = temporal_split_per_user(toy, (0.8, 0.1, 0.1))
    reference = ratio_split(toy, (0.8, 0.1, 0.1), seed=0)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(
            _counts_per_user(getattr(split, part)), _counts_per_user(getattr(reference, part))
        )


def test_temporal_per_user_ties_are_stable() -> None:
    data = Interactions.from_raw(["a"] * 4, [10, 11, 12, 13], timestamps=[5, 5, 5, 5])
    split = temporal_split_per_user(data, (0.5, 0.25, 0.25))
    assert split.train.items.tolist() == [0, 1]
    assert split.valid.items.tolist() == [2]
    assert split.test.items.tolist() == [3]


def test_temporal_global_cuts_at_quantiles(synthetic: Interactions) -> None:
    split = temporal_split_global(synthetic, (0.8, 0.1, 0.1), allow_empty_train_users=True)
    n = len(synthetic)
    assert len(split.train) == round(0.8 * n)
    assert len(split.valid) == round(0.9 * n) - round(0.8 * n)
    assert split.train.timestamps is not None and split.valid.timestamps is not None
    assert split.test.timestamps is not None
    assert split.train.timestamps.max() <= split.valid.timestamps.min()
    assert split.valid.timestamps.max() <= split.test.timestamps.min()


@pytest.mark.parametrize(
    "splitter",
    [
        temporal_split_global,
        temporal_split_per_user,
        lambda d: leave_one_out(d, order="time"),
    ],
)
def test_time_based_splits_need_timestamps(splitter: Callable[[Interactions], Split]) -> None:
    data = Interactions.from_raw([1, 1, 1, 2], [1, 2, 3, 1])
    with pytest.raises(DataError, match="timestamps"):
        splitter(data)


# ---------------------------------------------------------------------------------- leave-one-out
def test_leave_one_out_picks_last_by_time(toy: Interactions) -> None:
    split = leave_one_out(toy, order="time")
    sizes = _counts_per_user(toy)
    eligible = sizes >= 3
    np.testing.assert_array_equal(_counts_per_user(split.test), eligible.astype(int))
    np.testing.assert_array_equal(_counts_per_user(split.valid), eligible.astype(int))
    np.testing.assert_array_equal(_counts_per_user(split.train), sizes - 2 * eligible)
    assert toy.timestamps is not None and split.test.timestamps is not None
    last = _per_user_extreme(toy, "max")
    np.testing.assert_array_equal(split.test.timestamps, last[split.test.users])
    second_last = _per_user_extreme(split.train.concat(split.valid), "max")
    assert split.valid.timestamps is not None
    np.testing.assert_array_equal(split.valid.timestamps, second_last[split.valid.users])
    assert (_per_user_extreme(split.train, "max")[eligible] < second_last[eligible]).all()


def test_leave_one_out_random_is_seeded(synthetic: Interactions) -> None:
    a = leave_one_out(synthetic, order="random", seed=1)
    b = leave_one_out(synthetic, order="random", seed=1)
    c = leave_one_out(synthetic, order="random", seed=2)
    np.testing.assert_array_equal(a.test.items, b.test.items)
    assert not np.array_equal(a.test.items, c.test.items)
    assert len(a.test) == synthetic.n_users  # every synthetic user has >= 5 interactions


def test_leave_one_out_rejects_unknown_order(toy: Interactions) -> None:
    with pytest.raises(ValueError, match="order"):
        leave_one_out(toy, order="alphabetical")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- kcore
@pytest.mark.parametrize(("user_k", "item_k"), [(5, 5), (10, 20), (20, 40)])
def test_kcore_invariant(synthetic: Interactions, user_k: int, item_k: int) -> None:
    core = kcore_filter(synthetic, user_k, item_k)
    assert core.user_popularity().min() >= user_k
    assert core.item_popularity().min() >= item_k
    # Compact vocabularies: every user and item appears, raw IDs are kept.
    assert core.n_users == len(np.unique(core.users))
    assert core.n_items == len(np.unique(core.items))
    raw_pairs = set(
        zip(
            core.user_vocab.to_raw(core.users).tolist(),
            core.item_vocab.to_raw(core.items).tolist(),
        )
    )
    original = set(
        zip(
            synthetic.user_vocab.to_raw(synthetic.users).tolist(),
            synthetic.item_vocab.to_raw(synthetic.items).tolist(),
        )
    )
    assert raw_pairs <= original
    # Stable: filtering again removes nothing.
    assert len(kcore_filter(core, user_k, item_k)) == len(core)


def test_kcore_iterates_until_stable() -> None:
    # Item z has 2 users; removing user c (1 interaction) drops z below 2, which then drops b.
    data = Interactions.from_raw(
        ["a", "a", "b", "b", "c", "d", "d"],
        ["x", "y", "x", "z", "z", "x", "y"],
        ratings=[1, 2, 3, 4, 5, 1, 2],
    )
    core = kcore_filter(data, user_k=2, item_k=2)
    assert core.user_vocab.raw_ids.tolist() == ["a", "d"]
    assert core.item_vocab.raw_ids.tolist() == ["x", "y"]
    assert len(core) == 4
    assert core.ratings is not None and core.ratings.tolist() == [1, 2, 1, 2]


def test_kcore_everything_removed_raises(toy: Interactions) -> None:
    with pytest.raises(DataError, match="removed every interaction"):
        kcore_filter(toy, user_k=1000, item_k=1)


# ---------------------------------------------------------------------------------- clean-ups
def test_to_implicit_threshold(toy: Interactions) -> None:
    assert toy.ratings is not None
    implicit = to_implicit(toy, threshold=4)
    assert implicit.ratings is not None
    assert (implicit.ratings >= 4).all()
    assert len(implicit) == int((toy.ratings >= 4).sum())
    assert implicit.n_users == toy.n_users


def test_to_implicit_needs_ratings() -> None:
    data = Interactions.from_raw([1, 2], [1, 2])
    with pytest.raises(DataError, match="ratings"):
        to_implicit(data, 3.5)


def test_drop_duplicates_keeps_latest_or_first() -> None:
    data = Interactions.from_raw(
        [1, 1, 2, 1, 2],
        [7, 8, 7, 7, 7],
        ratings=[1, 2, 3, 4, 5],
        timestamps=[30, 10, 5, 20, 50],
    )
    last = drop_duplicates(data, keep="last")
    assert last.ratings is not None and last.ratings.tolist() == [1, 2, 5]  # input order kept
    first = drop_duplicates(data, keep="first")
    assert first.ratings is not None and first.ratings.tolist() == [2, 3, 4]
    no_time = Interactions.from_raw([1, 1, 1], [7, 7, 8], ratings=[1, 2, 3])
    assert drop_duplicates(no_time).ratings.tolist() == [2, 3]  # type: ignore[union-attr]
    assert drop_duplicates(no_time, keep="first").ratings.tolist() == [1, 3]  # type: ignore[union-attr]
