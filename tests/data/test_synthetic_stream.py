"""The power-law stream generator: sizes, power law, determinism, no per-ID memory."""

from __future__ import annotations

import numpy as np
import pytest

from leanrec.data.synthetic_stream import (
    _hashed_uniform,
    _teacher,
    make_synthetic_stream,
    planted_preference,
)


def test_sizes_and_ranges_with_a_million_ids() -> None:
    stream = make_synthetic_stream(50_000, n_users=1_000_000, n_items=2_000_000, seed=0)
    assert len(stream) == 50_000
    users, items = stream.ids["user"].raw_ids, stream.ids["item"].raw_ids
    assert users.min() >= 0 and users.max() < 1_000_000
    assert items.min() >= 0 and items.max() < 2_000_000
    assert np.all(np.diff(stream.time) >= 0) and stream.time[1] - stream.time[0] == 1
    assert stream.rating is not None and set(np.unique(stream.rating)) <= {1, 2, 3, 4, 5}
    assert np.array_equal(stream.label, (stream.rating >= 4).astype(np.float32))
    assert 0.2 < stream.label.mean() < 0.8


def test_popularity_follows_the_requested_power_law() -> None:
    stream = make_synthetic_stream(
        200_000, n_users=10**6, n_items=10**6, user_exponent=1.2, growing_population=False, seed=1
    )
    frequencies = np.sort(np.bincount(stream.user))[::-1]
    ranks = np.arange(1, len(frequencies) + 1)
    head = (ranks >= 2) & (ranks <= 200)
    slope = np.polyfit(np.log(ranks[head]), np.log(frequencies[head]), 1)[0]
    assert slope == pytest.approx(-1.2, abs=0.1)


def test_a_growing_population_brings_new_ids_all_along() -> None:
    stream = make_synthetic_stream(100_000, n_users=10**6, n_items=10**6, seed=2)
    # codes are first-appearance order: the first code seen after the half-way point
    first_seen_late = stream.user[50_000:].max() >= stream.user[:50_000].max() + 1_000
    assert first_seen_late
    # the items seen in the last tenth include many never seen before
    earlier = set(stream.item[:90_000].tolist())
    assert sum(code not in earlier for code in set(stream.item[90_000:].tolist())) > 500


def test_deterministic_per_seed() -> None:
    a = make_synthetic_stream(20_000, seed=5)
    b = make_synthetic_stream(20_000, seed=5)
    c = make_synthetic_stream(20_000, seed=6)
    assert np.array_equal(a.user_raw, b.user_raw) and np.array_equal(a.item_raw, b.item_raw)
    assert a.rating is not None and b.rating is not None and np.array_equal(a.rating, b.rating)
    assert not np.array_equal(a.user_raw, c.user_raw)


def test_an_id_keeps_its_preferences_across_the_stream() -> None:
    # with no rating noise, the rating is a function of the (user, item) pair only
    stream = make_synthetic_stream(
        30_000, n_users=20, n_items=20, rating_noise=0.0, growing_population=False, seed=3
    )
    assert stream.rating is not None
    pair = stream.user_raw * 20 + stream.item_raw
    order = np.argsort(pair, kind="stable")
    same_pair = pair[order][1:] == pair[order][:-1]
    assert same_pair.sum() > 20_000
    assert np.array_equal(stream.rating[order][1:][same_pair], stream.rating[order][:-1][same_pair])


def test_id_spaces_far_larger_than_the_stream_cost_nothing() -> None:
    # nothing is allocated per ID: 2**31 IDs with 1,000 events is instant
    stream = make_synthetic_stream(1_000, n_users=2**31, n_items=2**31, seed=0)
    assert len(stream) == 1_000 and stream.ids["user"].raw_ids.max() < 2**31
    with pytest.raises(ValueError, match="n_users"):
        make_synthetic_stream(10, n_users=0)


def test_a_planted_drift_leaves_the_stream_before_it_unchanged_and_brings_new_items() -> None:
    plain = make_synthetic_stream(30_000, n_users=500, n_items=300, seed=4)
    drifted = make_synthetic_stream(30_000, n_users=500, n_items=300, seed=4, drift_at=0.5,
                                    drift_items=50, drift_share=0.8)  # fmt: skip
    assert plain.rating is not None and drifted.rating is not None
    assert np.array_equal(plain.item_raw[:15_000], drifted.item_raw[:15_000])
    assert np.array_equal(plain.rating[:15_000], drifted.rating[:15_000])
    new = drifted.item_raw >= 300
    assert not new[:15_000].any()
    assert new[15_000:].mean() == pytest.approx(0.8, abs=0.02)
    assert drifted.item_raw.max() < 350 and len(np.unique(drifted.item_raw[new])) > 25
    assert np.array_equal(plain.user_raw, drifted.user_raw)  # the same users, new items


def test_without_noise_ratings_are_the_planted_preference_rounded() -> None:
    stream = make_synthetic_stream(20_000, n_users=200, n_items=100, rating_noise=0.0,
                                   drift_at=0.25, drift_width=32, seed=7)  # fmt: skip
    z = planted_preference(stream.user_raw, stream.item_raw, n_items=100, drift_width=32, seed=7)
    assert stream.rating is not None
    assert np.array_equal(stream.rating, np.clip(np.round(3.5 + z), 1, 5).astype(np.float32))
    # one drifted event by hand: 3 (c . relu(W^T [u; v]) - mu) / sigma + (b_u + b_i) / 2
    hidden, output, mean, std = _teacher(7, 8, 32)
    assert hidden.shape == (16, 32) and output.shape == (32,)
    at = int(np.flatnonzero(stream.item_raw >= 100)[0])
    u = _hashed_uniform(7, 1, stream.user_raw[at : at + 1], 9)[0]
    v = _hashed_uniform(7, 2, stream.item_raw[at : at + 1], 9)[0]
    pair = [*u[:8], *v[:8]]
    teacher = sum(
        output[j] * max(0.0, sum(hidden[k, j] * pair[k] for k in range(16))) for j in range(32)
    )
    assert z[at] == pytest.approx(3.0 * (teacher - mean) / std + 0.5 * (u[8] + v[8]))
    # the normalisation keeps the drifted preference's spread near drift_strength
    drifted = stream.item_raw >= 100
    bias = 0.5 * (_hashed_uniform(7, 1, stream.user_raw, 9)[:, 8]
                  + _hashed_uniform(7, 2, stream.item_raw, 9)[:, 8])  # fmt: skip
    assert np.std((z - bias)[drifted]) == pytest.approx(3.0, rel=0.25)


def _interaction_beyond(z: np.ndarray, rank: int) -> float:
    """Share of the variance of ``z``'s interaction (rows and columns centred: what biases
    cannot fit) beyond its best rank-``rank`` approximation."""
    centred = z - z.mean(0, keepdims=True) - z.mean(1, keepdims=True) + z.mean()
    energy = np.linalg.svd(centred, compute_uv=False) ** 2
    return float(energy[rank:].sum() / energy.sum())


def test_the_drift_is_not_a_dot_product() -> None:
    """Users x items preference matrices: the old items' has rank dim + 2 = 10 (a d = 16 dot
    product with biases fits it exactly); the new items' has full rank, and over 5% of its
    interaction lies beyond rank 16 (what a factorisation machine cannot fit) and over 10%
    beyond rank 8 (the user vectors also carry the old items' 8 factors)."""
    users = np.repeat(np.arange(400), 200)
    old = planted_preference(users, np.tile(np.arange(200), 400), n_items=1000).reshape(400, 200)
    new = planted_preference(users, np.tile(np.arange(1000, 1200), 400), n_items=1000)
    new = new.reshape(400, 200)
    assert np.linalg.matrix_rank(old, tol=1e-8) == 10 and _interaction_beyond(old, 8) < 1e-20
    assert np.linalg.matrix_rank(new, tol=1e-8) == 200
    assert _interaction_beyond(new, 16) > 0.05 and _interaction_beyond(new, 8) > 0.1


def test_drift_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="drift_at"):
        make_synthetic_stream(100, drift_at=1.0)
    with pytest.raises(ValueError, match="drift_items"):
        make_synthetic_stream(100, n_items=2**31, drift_at=0.5)
    with pytest.raises(ValueError, match="drift_width"):
        make_synthetic_stream(100, drift_at=0.5, drift_width=0)
