"""Named protocols produce exactly the splits the papers describe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leanrec.data.errors import DataError
from leanrec.data.presets import PROTOCOLS, get_protocol, prepare_split


def _per_user_counts(split_part, n_users: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.bincount(split_part.users, minlength=n_users)


def test_recbole_protocol_on_ml1m(shared_data: Path) -> None:
    split, protocol = prepare_split("ml-1m", "recbole", shared_data, seed=1)
    assert protocol.rating_threshold == 3.0
    total = len(split.train) + len(split.valid) + len(split.test)
    assert total == 836_478
    # RecBole's counts: one user and 78 items have no rating >= 3 and leave the candidates
    assert (split.n_users, split.n_items) == (6039, 3628)
    assert len(split.train) / total == pytest.approx(0.8, abs=0.005)
    keys = [
        set((p.users * split.n_items + p.items).tolist())
        for p in (split.train, split.valid, split.test)
    ]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]


def test_ciess_protocol_on_ml1m(shared_data: Path) -> None:
    split, protocol = prepare_split("ml-1m", "ciess", shared_data, seed=7)
    assert protocol.ks == (5, 10, 20)
    total = len(split.train) + len(split.valid) + len(split.test)
    assert total == 1_000_209  # every rating is a positive
    fractions = np.array([len(split.train), len(split.valid), len(split.test)]) / total
    assert np.allclose(fractions, [0.5, 0.25, 0.25], atol=0.005)
    # per user, not global: every user's own split is close to 50/25/25
    train = _per_user_counts(split.train, split.n_users)
    every = (
        train
        + _per_user_counts(split.valid, split.n_users)
        + _per_user_counts(split.test, split.n_users)
    )
    assert np.all(np.abs(train - 0.5 * every) <= 1.0)
    # about 41 test items per user (the CIESS note in shared/papers/README)
    assert len(split.test) / split.n_users == pytest.approx(41.4, abs=0.5)
    # seeded: same seed, same split; another seed, another split
    again, _ = prepare_split("ml-1m", "ciess", shared_data, seed=7)
    other, _ = prepare_split("ml-1m", "ciess", shared_data, seed=8)
    assert np.array_equal(again.test.items, split.test.items)
    assert not np.array_equal(other.test.items, split.test.items)


def test_lightgcn_protocol_keeps_given_test(shared_data: Path) -> None:
    split, _ = prepare_split("gowalla", "lightgcn", shared_data, seed=0)
    assert len(split.test) == 217_242
    assert len(split.train) + len(split.valid) == 810_128
    assert len(split.valid) / 810_128 == pytest.approx(0.1, abs=0.01)


def test_given_protocol_needs_given_files(shared_data: Path) -> None:
    with pytest.raises(DataError, match="given train/test"):
        prepare_split("ml-100k", "lightgcn", shared_data)


def test_unknown_protocol_is_named() -> None:
    with pytest.raises(ValueError, match="known"):
        get_protocol("cies")
    assert {"recbole", "ciess", "lightgcn", "leave-one-out"} <= set(PROTOCOLS)


def test_synthetic_needs_no_files(tmp_path: Path) -> None:
    """An empty data directory is enough: the split is generated, nothing is read or written.

    make_synthetic's defaults are 60,000 interactions of 2,000 users and 1,000 items; the
    default protocol keeps every one of them and splits each user 8:1:1.
    """
    split, protocol = prepare_split("synthetic", None, tmp_path)
    assert protocol.name == "default"
    assert list(tmp_path.iterdir()) == []
    sizes = [len(split.train), len(split.valid), len(split.test)]
    assert sum(sizes) == 60_000
    assert (split.train.n_users, split.train.n_items) == (2000, 1000)
    assert sizes[0] / 60_000 == pytest.approx(0.8, abs=0.01)
    assert sizes[1] / 60_000 == pytest.approx(0.1, abs=0.01)
