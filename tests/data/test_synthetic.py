"""Tests for leanrec.data.synthetic.make_synthetic."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.sparse.linalg import svds

from leanrec.data.interactions import Interactions
from leanrec.data.splits import ratio_split
from leanrec.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def default_data() -> Interactions:
    return make_synthetic()


def test_shape_and_fields(default_data: Interactions) -> None:
    data = default_data
    assert (data.n_users, data.n_items, len(data)) == (2000, 1000, 60000)
    assert data.ratings is not None and data.timestamps is not None
    assert set(np.unique(data.ratings).tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(np.unique(data.ratings)) == 5
    assert data.user_popularity().min() >= 5


def test_no_duplicate_pairs(default_data: Interactions) -> None:
    assert len(default_data.sorted_keys()) == len(default_data)


def test_timestamps_increase_within_user(default_data: Interactions) -> None:
    users, stamps = default_data.users, default_data.timestamps
    assert stamps is not None
    assert (np.diff(users) >= 0).all()
    same_user = users[1:] == users[:-1]
    assert (np.diff(stamps)[same_user] > 0).all()


def test_power_law_head(default_data: Interactions) -> None:
    popularity = np.sort(default_data.item_popularity())[::-1]
    head = popularity[: len(popularity) // 10].sum()
    assert head / popularity.sum() > 0.30


def test_deterministic_by_seed() -> None:
    a = make_synthetic(n_users=100, n_items=80, n_interactions=1500, seed=3)
    b = make_synthetic(n_users=100, n_items=80, n_interactions=1500, seed=3)
    c = make_synthetic(n_users=100, n_items=80, n_interactions=1500, seed=4)
    for field in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.items, c.items)


def test_dense_users_get_every_item() -> None:
    data = make_synthetic(n_users=3, n_items=4, n_interactions=12, min_per_user=4, seed=0)
    assert len(data.sorted_keys()) == 12


def test_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="n_interactions"):
        make_synthetic(n_users=10, n_items=5, n_interactions=51)
    with pytest.raises(ValueError, match="n_interactions"):
        make_synthetic(n_users=10, n_items=5, n_interactions=10, min_per_user=2)


def test_fast_for_defaults() -> None:
    start = time.perf_counter()
    make_synthetic(seed=1)
    assert time.perf_counter() - start < 2.0


def _recall_at_k(scores: np.ndarray, split_train: Interactions, split_test: Interactions) -> float:
    """Mean recall@20 over test users, shape of ``scores``: ``(n_users, n_items)``."""
    k = 20
    train, test = split_train.to_csr(), split_test.to_csr().toarray()
    scores = scores.copy()
    scores[train.nonzero()] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    hits = np.take_along_axis(test, top, axis=1).sum(axis=1)
    n_test = test.sum(axis=1)
    has_test = n_test > 0
    return float((hits[has_test] / np.minimum(n_test[has_test], k)).mean())


def test_low_rank_model_beats_popularity(default_data: Interactions) -> None:
    split = ratio_split(default_data, (0.8, 0.2), seed=0)
    train = split.train.to_csr().astype(np.float64)
    popularity_scores = np.broadcast_to(
        np.asarray(train.sum(axis=0)), (train.shape[0], train.shape[1])
    )
    user_part, singular_values, item_part = svds(train, k=16, random_state=0)
    svd_scores = (user_part * singular_values) @ item_part
    recall_popularity = _recall_at_k(np.array(popularity_scores), split.train, split.test)
    recall_svd = _recall_at_k(svd_scores, split.train, split.test)
    assert recall_svd > 1.5 * recall_popularity
