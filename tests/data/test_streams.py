"""UserStreams and user_split: time order, filters, padding, disjoint user parts."""

from __future__ import annotations

import numpy as np
import pytest

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.streams import UserStreams, user_split


def _toy() -> Interactions:
    # user 0: items 5 (t=30), 6 (t=10), 7 (t=10) -> time order 6, 7 (tie keeps file order), 5
    # user 1: one item; user 2: items 1 (t=2), 2 (t=1)
    return Interactions.from_raw(
        raw_users=[0, 0, 0, 1, 2, 2],
        raw_items=[5, 6, 7, 1, 1, 2],
        ratings=[1, 2, 3, 4, 5, 1],
        timestamps=[30, 10, 10, 0, 2, 1],
    )


def test_streams_follow_timestamps_with_stable_ties() -> None:
    data = _toy()
    streams = UserStreams.from_interactions(data)
    assert len(streams) == 3
    items, ratings = streams.stream(0)
    assert data.item_vocab.to_raw(items).tolist() == [6, 7, 5]
    assert ratings is not None and ratings.tolist() == [2.0, 3.0, 1.0]
    assert data.item_vocab.to_raw(streams.stream(2)[0]).tolist() == [2, 1]
    assert streams.lengths.tolist() == [3, 1, 2]


def test_min_length_drops_short_users_and_errors_when_none_left() -> None:
    streams = UserStreams.from_interactions(_toy(), min_length=2)
    assert streams.users.tolist() == [0, 2]
    assert streams.n_events == 5
    with pytest.raises(DataError, match="at least 4"):
        UserStreams.from_interactions(_toy(), min_length=4)


def test_padded_batch_and_truncation() -> None:
    streams = UserStreams.from_interactions(_toy())
    items, ratings, lengths = streams.padded([2, 0], max_length=2)
    assert lengths.tolist() == [2, 2]
    assert items.shape == (2, 2)
    assert ratings.tolist() == [[1.0, 5.0], [2.0, 3.0]]
    items, ratings, lengths = streams.padded([1, 0])
    assert lengths.tolist() == [1, 3]
    assert ratings[0].tolist() == [4.0, 0.0, 0.0]


def test_user_split_is_a_partition_with_rounded_sizes() -> None:
    rng = np.random.default_rng(0)
    n_users = 101
    users = np.repeat(np.arange(n_users), 3)
    data = Interactions.from_raw(users, rng.integers(0, 20, len(users)))
    streams = UserStreams.from_interactions(data)
    split = user_split(streams, (0.6, 0.2, 0.2), seed=1)
    sizes = (len(split.train), len(split.valid), len(split.test))
    assert sizes == (61, 20, 20)  # rint(60.6) = 61, rint(80.8) - 61 = 20
    together = np.concatenate([split.train.users, split.valid.users, split.test.users])
    assert sorted(together.tolist()) == list(range(n_users))
    # the parts carry their users' whole streams
    assert split.train.n_events == 3 * 61
    assert user_split(streams, seed=1).train.users.tolist() == split.train.users.tolist()


def test_user_split_refuses_an_empty_part() -> None:
    streams = UserStreams.from_interactions(_toy())
    with pytest.raises(DataError, match="empty"):
        user_split(streams, (0.98, 0.01, 0.01))
