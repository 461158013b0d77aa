"""Tests for leanrec.data.synthetic.make_synthetic_power_law (the linear-time generator)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from leanrec.data.interactions import Interactions
from leanrec.data.synthetic import make_synthetic_power_law


@pytest.fixture(scope="module")
def data() -> Interactions:
    return make_synthetic_power_law(50_000, seed=1)


def test_sizes_grow_with_the_interactions(data: Interactions) -> None:
    # U = 50_000 / 50 per user, I = U / 2
    assert (data.n_users, data.n_items, len(data)) == (1000, 500, 50_000)
    big = make_synthetic_power_law(200_000, interactions_per_user=40, items_per_user=0.25)
    assert (big.n_users, big.n_items, len(big)) == (5000, 1250, 200_000)


def test_distinct_pairs_grouped_by_user_with_increasing_times(data: Interactions) -> None:
    assert len(data.sorted_keys()) == len(data)
    assert data.user_popularity().min() >= 5
    assert (np.diff(data.users) >= 0).all()
    assert data.timestamps is not None
    same_user = data.users[1:] == data.users[:-1]
    assert (np.diff(data.timestamps)[same_user] > 0).all()


def _head_share(data: Interactions) -> float:
    """Share of the interactions that go to the 10% most popular items."""
    popularity = np.sort(data.item_popularity())[::-1]
    return float(popularity[: len(popularity) // 10].sum() / popularity.sum())


def test_power_law_head(data: Interactions) -> None:
    # one interaction per (user, item) flattens the Zipf head somewhat; uniform popularity
    # would give the top 10% of items about 10% of the interactions
    assert _head_share(data) > 0.25
    assert _head_share(make_synthetic_power_law(50_000, popularity_exponent=0.0, seed=1)) < 0.2


def _held_out_hits(data: Interactions, rank: int = 17) -> dict[str, float]:
    """Hit rate at 20 on a random 20% of the interactions: truncated SVD of the other 80% vs
    the popularity ranking (seen items excluded)."""
    test = np.random.default_rng(0).random(len(data)) < 0.2
    train = sp.csr_matrix(
        (np.ones(int((~test).sum())), (data.users[~test], data.items[~test])),
        shape=(data.n_users, data.n_items),
    )
    u, s, vt = svds(train, k=rank)
    popularity = np.asarray(train.sum(axis=0)).ravel()
    hits = {}
    for name, scores in [("svd", (u * s) @ vt), ("popularity", np.tile(popularity, (len(u), 1)))]:
        scores[train.nonzero()] = -np.inf
        top = np.argpartition(-scores, 20, axis=1)[:, :20]
        in_top = np.zeros(scores.shape, dtype=bool)
        np.put_along_axis(in_top, top, True, axis=1)
        hits[name] = float(in_top[data.users[test], data.items[test]].mean())
    return hits


def test_planted_low_rank_preference_beats_popularity(data: Interactions) -> None:
    hits = _held_out_hits(data)
    assert hits["svd"] > hits["popularity"] + 0.05
    # without the topics (popularity only) there is nothing for the factors to find
    flat = _held_out_hits(make_synthetic_power_law(50_000, popularity_share=1.0, seed=1))
    assert flat["svd"] < flat["popularity"]


def test_deterministic_by_seed() -> None:
    a, b = (make_synthetic_power_law(20_000, seed=3) for _ in range(2))
    c = make_synthetic_power_law(20_000, seed=4)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.timestamps, b.timestamps)
    assert not np.array_equal(a.items, c.items)


def test_time_is_linear_in_the_interactions() -> None:
    """4x the interactions within 6x the time (best of three each): a generator that touched
    every (user, item) pair would take 16x, as users and items both grow 4x; the margin over
    4x covers the final sort's log factor and timing noise on a shared machine."""

    def best_seconds(n: int) -> float:
        times = []
        for seed in range(3):
            start = time.perf_counter()
            make_synthetic_power_law(n, seed=seed)
            times.append(time.perf_counter() - start)
        return min(times)

    small, large = best_seconds(100_000), best_seconds(400_000)
    assert large < 6 * small


def test_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="interactions_per_user"):
        make_synthetic_power_law(1000, interactions_per_user=2)
    with pytest.raises(ValueError, match="popularity_share"):
        make_synthetic_power_law(1000, popularity_share=1.5)
