"""Policy transfer: sketches of a streaming policy fed to a next-item model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.data.streams import UserStreams
from leanrec.models.seq import build_next_item_model
from leanrec.search.sketch.sketcher import StreamingSketcher
from leanrec.search.sketch.transfer import (
    sketch_snapshots,
    sketched_events,
    streams_as_interactions,
    transfer_metrics,
)


def make_streams(lengths: list[int], n_items: int = 30, seed: int = 0) -> UserStreams:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(len(lengths)), lengths)
    items = rng.integers(0, n_items, len(users))
    data = Interactions(
        users=users,
        items=items,
        user_vocab=IdVocabulary(np.arange(len(lengths))),
        item_vocab=IdVocabulary(np.arange(n_items)),
        timestamps=np.arange(len(users)),
    )
    return UserStreams.from_interactions(data)


def test_snapshot_is_right_aligned_oldest_first_with_shifted_ids() -> None:
    sketcher = StreamingSketcher(n_users=2, sketch_size=3)
    sketcher.process(np.array([0, 1, 0]), np.array([7, 4, 9]))
    assert sketch_snapshots(sketcher, np.array([0, 1])).tolist() == [[0, 8, 10], [0, 0, 5]]


@pytest.mark.parametrize("k", [1, 3])
def test_every_event_after_the_first_is_predicted_from_at_most_k_past_items(k: int) -> None:
    streams = make_streams([1, 2, 5, 9])
    events = sketched_events(streams, StreamingSketcher(len(streams), k, seed=1))
    assert len(events.targets) == int((streams.lengths - 1).sum())
    for row in range(len(events.targets)):
        stream = events.streams[row]
        items, _ = streams.stream(stream)
        shifted = items + 1
        # which event is this? count earlier rows of the same stream
        t = int((events.streams[:row] == stream).sum()) + 1
        assert events.targets[row] == shifted[t]
        held = events.inputs[row][events.inputs[row] > 0]
        assert len(held) == min(k, t)
        assert set(held.tolist()) <= set(shifted[:t].tolist())


def test_a_sketch_as_large_as_the_stream_is_the_whole_prefix() -> None:
    streams = make_streams([4, 6], seed=3)
    events = sketched_events(streams, StreamingSketcher(len(streams), 6, seed=0))
    items, _ = streams.stream(1)
    rows = np.flatnonzero(events.streams == 1)
    for t, row in enumerate(rows, start=1):
        expected = np.concatenate([np.zeros(6 - t, dtype=np.int64), items[:t] + 1])
        assert events.inputs[row].tolist() == expected.tolist()


def test_transfer_metrics_match_a_brute_force_ranking() -> None:
    streams = make_streams([5, 7, 3], n_items=12, seed=4)
    events = sketched_events(streams, StreamingSketcher(len(streams), 2, seed=0))
    model = build_next_item_model("gru4rec", 12, {"embedding_dim": 8, "hidden_dim": 8}, seed=0)
    metrics = transfer_metrics(model, events, k=3, batch_size=4)
    with torch.no_grad():
        scores = model.score_all(torch.from_numpy(events.inputs)).numpy()
    target = scores[np.arange(len(scores)), events.targets]
    rank = (scores >= target[:, None]).sum(axis=1)
    assert metrics["recall@3"] == pytest.approx(np.mean(rank <= 3))
    assert metrics["mrr@3"] == pytest.approx(np.mean(np.where(rank <= 3, 1.0 / rank, 0.0)))


def test_batch_sketches_are_refused_and_interactions_keep_the_item_ids() -> None:
    streams = make_streams([3, 4])
    with pytest.raises(ValueError, match="online"):
        sketched_events(streams, StreamingSketcher(2, 2, update_period=4))
    data = streams_as_interactions(streams)
    assert data.n_items == streams.n_items and len(data) == streams.n_events
    assert data.timestamps.tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert np.array_equal(data.items, streams.items)
