"""Tests for leanrec.data.sequential: leave-one-out windows and BERT4Rec candidate negatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.data.sequential import (
    NextItemSplit,
    csr_rows,
    right_aligned_sequences,
    sample_candidate_negatives,
)


def _hand_made() -> Interactions:
    """u0: 1 2 3 4 5, u1: 6 7 8, u2: 9 2 (time order); rows shuffled, raw item r -> ID r."""
    rows = [  # (user, item, time)
        (0, 3, 30),
        (1, 8, 3),
        (0, 1, 10),
        (2, 2, 2),
        (0, 5, 50),
        (1, 6, 1),
        (0, 2, 20),
        (2, 9, 1),
        (0, 4, 40),
        (1, 7, 2),
    ]
    users, items, times = (np.array(col) for col in zip(*rows))
    return Interactions.from_raw(
        users,
        items,
        timestamps=times,
        item_vocab=IdVocabulary(np.arange(1, 10), name="item"),
    )


def _random_sequences(n_users: int, n_items: int, seed: int) -> Interactions:
    """Users with 3..30 distinct items each, Zipf-like item popularity."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    weights /= weights.sum()
    users, items, times = [], [], []
    for u in range(n_users):  # test data only
        n = int(rng.integers(3, 31))
        chosen = rng.choice(n_items, size=n, replace=False, p=weights)
        users.append(np.full(n, u))
        items.append(chosen)
        times.append(np.arange(n))
    return Interactions.from_raw(
        np.concatenate(users),
        np.concatenate(items),
        timestamps=np.concatenate(times),
        item_vocab=IdVocabulary.identity(n_items, name="item"),
    )


# ---------------------------------------------------------------------------------- windows
def test_right_aligned_keeps_the_last_items_in_time_order() -> None:
    users = np.array([1, 0, 1, 1, 1])
    items = np.array([11, 5, 12, 13, 14])
    times = np.array([4, 0, 1, 2, 3])  # user 1 in time order: 12 13 14 11
    out = right_aligned_sequences(users, items, times, n_rows=3, length=3)
    assert out.tolist() == [[0, 0, 5], [13, 14, 11], [0, 0, 0]]


def test_leave_one_out_targets_inputs_and_history_on_hand_made_data() -> None:
    split = NextItemSplit.from_interactions(_hand_made(), max_length=3, n_negatives=3, seed=0)
    assert split.n_items == 9 and split.vocab_size == 10
    # u2 has 2 interactions: training only, never evaluated
    assert split.valid.users.tolist() == [0, 1] and split.test.users.tolist() == [0, 1]
    assert split.valid.targets.tolist() == [4, 7]
    assert split.test.targets.tolist() == [5, 8]
    assert split.valid.inputs.tolist() == [[1, 2, 3], [0, 0, 6]]
    # the test input ends with the validation item
    assert split.test.inputs.tolist() == [[2, 3, 4], [0, 6, 7]]
    # training windows: users with >= 2 training items (u1 has one: no (input, next) pair)
    assert split.train_users.tolist() == [0, 2]
    assert split.train_items.tolist() == [[0, 1, 2, 3], [0, 0, 9, 2]]
    # full-ranking exclusions: the whole prefix before the target
    v = split.valid
    assert v.history_items[v.history_indptr[0] : v.history_indptr[1]].tolist() == [1, 2, 3]
    assert v.history_items[v.history_indptr[1] : v.history_indptr[2]].tolist() == [6]
    t = split.test
    assert t.history_items[t.history_indptr[0] : t.history_indptr[1]].tolist() == [1, 2, 3, 4]
    # candidates: target first, then negatives outside the user's items
    assert split.test.candidates()[:, 0].tolist() == [5, 8]
    assert set(split.valid.negatives[0].tolist()) < {6, 7, 8, 9}  # 3 of the 4 left for u0
    assert not set(split.test.negatives[1].tolist()) & {6, 7, 8}


def test_history_is_longer_than_the_window_when_the_sequence_is() -> None:
    split = NextItemSplit.from_interactions(_hand_made(), max_length=2, n_negatives=2)
    assert split.test.inputs[0].tolist() == [3, 4]
    t = split.test
    assert t.history_items[t.history_indptr[0] : t.history_indptr[1]].tolist() == [1, 2, 3, 4]


def test_csr_rows_takes_rows_in_the_given_order() -> None:
    indptr = np.array([0, 2, 2, 5])
    indices = np.array([7, 8, 1, 2, 3])
    ptr, vals = csr_rows(indptr, indices, np.array([2, 0, 1]))
    assert ptr.tolist() == [0, 3, 5, 5]
    assert vals.tolist() == [1, 2, 3, 7, 8]


# ---------------------------------------------------------------------------------- negatives
@pytest.fixture(scope="module")
def random_data() -> Interactions:
    return _random_sequences(n_users=400, n_items=600, seed=1)


def test_negatives_avoid_every_user_item_and_are_distinct(random_data: Interactions) -> None:
    split = NextItemSplit.from_interactions(random_data, max_length=10, n_negatives=100, seed=3)
    indptr, indices = random_data.user_items()
    for part in (split.valid, split.test):
        assert part.negatives.shape == (len(part), 100)
        assert part.negatives.min() >= 1 and part.negatives.max() <= split.n_items
        # distinct within a row
        sorted_neg = np.sort(part.negatives, axis=1)
        assert not (sorted_neg[:, 1:] == sorted_neg[:, :-1]).any()
        # never the target, never any item of the user (in any part of the data)
        assert not (part.negatives == part.targets[:, None]).any()
        for row, user in enumerate(part.users[:100]):
            seen = set((indices[indptr[user] : indptr[user + 1]] + 1).tolist())
            assert not seen & set(part.negatives[row].tolist())


def test_negatives_are_reproducible_by_seed(random_data: Interactions) -> None:
    a = NextItemSplit.from_interactions(random_data, n_negatives=50, seed=7)
    b = NextItemSplit.from_interactions(random_data, n_negatives=50, seed=7)
    c = NextItemSplit.from_interactions(random_data, n_negatives=50, seed=8)
    assert np.array_equal(a.test.negatives, b.test.negatives)
    assert np.array_equal(a.valid.negatives, b.valid.negatives)
    assert not np.array_equal(a.test.negatives, c.test.negatives)
    # validation and test draw their own sets
    assert not np.array_equal(a.valid.negatives, a.test.negatives)


def test_popularity_sampling_prefers_popular_items(random_data: Interactions) -> None:
    popularity = np.concatenate([[0], random_data.item_popularity()])  # by ID
    pop = NextItemSplit.from_interactions(
        random_data, n_negatives=100, negative_sampling="popularity", seed=0
    )
    uni = NextItemSplit.from_interactions(
        random_data, n_negatives=100, negative_sampling="uniform", seed=0
    )
    mean_pop = popularity[pop.test.negatives].mean()
    mean_uni = popularity[uni.test.negatives].mean()
    assert mean_pop > 1.5 * mean_uni


def test_sampling_matches_weights_without_replacement() -> None:
    # one user, no history, 3 items with weights 1:2:0, one negative: P(item 1) = 2/3
    rng = np.random.default_rng(0)
    users = np.zeros(6000, dtype=np.int64)
    keys = np.array([5 * 3], dtype=np.int64)  # another user's item, irrelevant here
    out = sample_candidate_negatives(users, keys, 3, 1, rng, weights=np.array([1.0, 2.0, 0.0]))
    assert set(np.unique(out).tolist()) == {0, 1}
    assert abs((out == 1).mean() - 2 / 3) < 0.03
    # two negatives from two drawable items: always both, each row a permutation
    two = sample_candidate_negatives(users[:50], keys, 3, 2, rng, weights=np.array([1, 2, 0.0]))
    assert (np.sort(two, axis=1) == [0, 1]).all()


def test_too_few_items_left_raises() -> None:
    data = _hand_made()
    with pytest.raises(DataError, match="n_negatives"):
        NextItemSplit.from_interactions(data, n_negatives=5)  # u0 has only 4 items left


def test_describe_counts_training_positions() -> None:
    split = NextItemSplit.from_interactions(_hand_made(), max_length=3, n_negatives=3)
    info = split.describe()
    assert info["train_positions"] == 2 + 1  # u0: 1->2->3, u2: 9->2
    assert info["eval_users"] == 2


@pytest.mark.slow
def test_beauty_split_sizes(shared_data: Path) -> None:
    from leanrec.data.registry import load_dataset

    data = load_dataset("beauty", shared_data)
    assert isinstance(data, Interactions)
    split = NextItemSplit.from_interactions(data, seed=0)
    assert len(split.test) == 40226  # every user has >= 5 interactions
    # train + valid + test positions account for every interaction
    n_train = len(split.split.train)
    assert n_train + 2 * 40226 == 353962
    # a training sequence of n items gives n - 1 positions, fewer when cut to N + 1 = 51
    assert split.describe()["train_positions"] <= n_train - len(split.train_users)
    assert (split.test.inputs[:, -1] == split.valid.targets).all()
