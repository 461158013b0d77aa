"""Event streams, their cuts, and the growing vocabulary with running counters (by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leanrec.data.errors import DataError
from leanrec.data.events import MONDAY, WEEK, Chunk, EventStream
from leanrec.data.interactions import Interactions
from leanrec.data.vocab_stream import StreamCounters, StreamVocabulary, occurrence_rank


def small_stream(n: int = 10) -> EventStream:
    return EventStream.from_arrays(
        time=np.arange(n), user=np.arange(n) % 3, item=np.arange(n) % 4, label=np.arange(n) % 2
    )


# ------------------------------------------------------------------ construction and order
def test_time_order_is_stable_and_raw_ids_are_kept() -> None:
    # file rows:      0    1    2    3    4
    # time:          30   10   20   10   20
    # stable order: rows 1, 3 (t=10), rows 2, 4 (t=20), row 0 (t=30)
    stream = EventStream.from_arrays(
        time=[30, 10, 20, 10, 20],
        user=["u0", "u1", "u2", "u1", "u3"],
        item=[100, 101, 102, 103, 101],
        label=[1, 0, 1, 1, 0],
        rating=[5, 2, 4, 4, 1],
        name="toy",
    )
    assert stream.source_row.tolist() == [1, 3, 2, 4, 0]
    assert stream.time.tolist() == [10, 10, 20, 20, 30]
    assert stream.user_raw.tolist() == ["u1", "u1", "u2", "u3", "u0"]
    assert stream.item_raw.tolist() == [101, 103, 102, 101, 100]
    # codes follow first appearance in stream order
    assert stream.user.tolist() == [0, 0, 1, 2, 3]
    assert stream.item.tolist() == [0, 1, 2, 0, 3]
    assert stream.label.tolist() == [0, 1, 1, 0, 1]
    assert stream.rating is not None and stream.rating.tolist() == [2, 4, 4, 1, 5]
    assert stream.ids["user"].raw_ids.dtype.kind == "U"  # text, not Python objects


def test_file_order_keeps_rows_and_time_order_needs_times() -> None:
    stream = EventStream.from_arrays(
        time=None, user=[3, 1, 3], item=[1, 1, 2], label=[0, 1, 1], order="file"
    )
    assert stream.time.tolist() == [0, 1, 2] and not stream.has_timestamps
    assert stream.user_raw.tolist() == [3, 1, 3]
    with pytest.raises(DataError, match="order='file'"):
        EventStream.from_arrays(time=None, user=[1], item=[1], label=[1])


def test_bad_labels_and_empty_streams_are_errors() -> None:
    with pytest.raises(DataError, match="row 1"):
        EventStream.from_arrays(time=[1, 2], user=[1, 2], item=[1, 2], label=[1, 2])
    with pytest.raises(DataError, match="empty"):
        EventStream.from_arrays(time=[], user=[], item=[], label=[])


def test_from_interactions_labels_by_threshold() -> None:
    data = Interactions.from_raw(
        [5, 6, 5], [1, 1, 2], ratings=[4.0, 3.5, 5.0], timestamps=[9, 8, 9]
    )
    stream = EventStream.from_interactions(data, label_threshold=3.5)
    assert stream.user_raw.tolist() == [6, 5, 5]
    assert stream.label.tolist() == [1, 1, 1]
    assert EventStream.from_interactions(data).label.tolist() == [0, 1, 1]
    no_time = Interactions.from_raw([1], [1], ratings=[5.0])
    with pytest.raises(DataError, match="order='file'"):
        EventStream.from_interactions(no_time)
    assert len(EventStream.from_interactions(no_time, order="file")) == 1
    with pytest.raises(DataError, match="no ratings"):
        EventStream.from_interactions(Interactions.from_raw([1], [1], timestamps=[1]))


def test_from_table_csv(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "who,what,stars,when,clicked\n"
        "a,x,5,2024-01-02T00:00:00,1\n"
        "b,y,2,2024-01-01T00:00:00,0\n"
        "a,y,4,2024-01-01T00:00:00,1\n"
    )
    columns = {"user": "who", "item": "what", "rating": "stars", "timestamp": "when"}
    stream = EventStream.from_table(path, columns)
    # 2024-01-01 00:00 UTC = 1704067200; ties (rows 1, 2) keep file order
    assert stream.time.tolist() == [1704067200, 1704067200, 1704153600]
    assert stream.user_raw.tolist() == ["b", "a", "a"]
    assert stream.label.tolist() == [0, 1, 1]
    labelled = EventStream.from_table(path, columns, label_column="clicked", label_threshold=5)
    assert labelled.label.tolist() == [0, 1, 1]
    assert labelled.rating is not None and labelled.rating.tolist() == [2, 4, 5]
    with pytest.raises(DataError, match="order='file'"):
        EventStream.from_table(path, {"user": "who", "item": "what", "rating": "stars"})
    with pytest.raises(DataError, match="no label"):
        EventStream.from_table(path, {"user": "who", "item": "what", "timestamp": "when"})
    with pytest.raises(
        DataError, match=r"events.csv, line 2: label column 'stars' must be 0 or 1, found 5$"
    ):
        EventStream.from_table(path, columns, label_column="stars")


# ------------------------------------------------------------------ cuts
def test_chunks_by_events() -> None:
    stream = small_stream(10)
    assert [(c.start, c.stop) for c in stream.chunks(size=4)] == [(0, 4), (4, 8), (8, 10)]
    assert [c.index for c in stream.chunks(size=4)] == [0, 1, 2]
    assert [(c.start, c.stop) for c in stream.chunks(size=4, start=3, stop=9)] == [(3, 7), (7, 9)]
    part = stream[Chunk(0, 4, 8)]
    assert part.user.tolist() == [1, 2, 0, 1] and part.ids["user"].raw_ids.tolist() == [0, 1, 2]


def test_chunks_by_calendar_week() -> None:
    day = 86_400
    monday = MONDAY + 2_000 * WEEK  # a Monday, 00:00 UTC
    # Sun (previous week) | Mon, Wed, Sun 23:00 | (no events for a week) | Tue
    times = [monday - 1, monday, monday + 2 * day, monday + 7 * day - 3600, monday + 15 * day]
    stream = EventStream.from_arrays(time=times, user=[0] * 5, item=[0] * 5, label=[1] * 5)
    weeks = list(stream.chunks(by="period", seconds=WEEK, origin=MONDAY))
    assert [(c.start, c.stop) for c in weeks] == [(0, 1), (1, 4), (4, 5)]
    file_only = EventStream.from_arrays(time=None, user=[0], item=[0], label=[1], order="file")
    with pytest.raises(DataError, match="no timestamps"):
        list(file_only.chunks(by="period", seconds=WEEK))


def test_warmup_plan_and_sessions() -> None:
    stream = small_stream(100)
    assert stream.warmup(0.29) == Chunk(0, 0, 29, warmup=True)  # 0.29 * 100 = 28.999...
    plan = small_stream(10).plan(size=4, warmup_fraction=0.3)
    # warm-up [0, 3) in one chunk; evaluated [3, 10) in chunks of 4: [3, 7), [7, 10)
    assert [(c.index, c.start, c.stop, c.warmup) for c in plan] == [
        (0, 0, 3, True),
        (1, 3, 7, False),
        (2, 7, 10, False),
    ]
    sessions = small_stream(10).sessions(n=3, warmup_fraction=0.2)
    # 8 events after the warm-up of 2: sizes 3, 3, 2
    assert [(s.start, s.stop) for s in sessions] == [(2, 5), (5, 8), (8, 10)]
    with pytest.raises(ValueError, match="sessions"):
        small_stream(10).sessions(n=9, warmup_fraction=0.2)


# ------------------------------------------------------------------ growing vocabulary
def test_occurrence_rank_by_hand() -> None:
    assert occurrence_rank(np.array([5, 2, 5, 5, 2])).tolist() == [0, 0, 1, 2, 1]


def test_vocabulary_counts_repeats_inside_and_across_chunks() -> None:
    vocab = StreamVocabulary("item")
    # chunk 1: keys 4 4 1 4 -> indices 0 0 1 0; earlier events 0 1 0 2
    index, before = vocab.observe([4, 4, 1, 4])
    assert index.tolist() == [0, 0, 1, 0] and before.tolist() == [0, 1, 0, 2]
    # chunk 2: keys 9 1 4 9 1 -> 9 is new (index 2); 1 was seen once, 4 three times
    index, before = vocab.observe([9, 1, 4, 9, 1])
    assert index.tolist() == [2, 1, 0, 2, 1] and before.tolist() == [0, 1, 3, 1, 2]
    assert vocab.size == 3 and vocab.keys().tolist() == [4, 1, 9]
    assert vocab.counts().tolist() == [4, 3, 2]
    assert vocab.index_of([9, 5, 100]).tolist() == [2, -1, -1]
    # new keys get indices in order of first appearance, not in key order: 30 then 20
    index, _ = vocab.observe([30, 20, 30])
    assert index.tolist() == [3, 4, 3] and vocab.keys().tolist() == [4, 1, 9, 30, 20]


def test_vocabulary_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 50, size=300)
    whole = StreamVocabulary("user")
    outputs = [whole.observe(keys[i : i + 40]) for i in range(0, 300, 40)]
    first = StreamVocabulary("user")
    for i in range(0, 120, 40):
        first.observe(keys[i : i + 40])
    resumed = StreamVocabulary.from_state_dict(first.state_dict())
    for k, i in enumerate(range(120, 300, 40)):
        index, before = resumed.observe(keys[i : i + 40])
        assert np.array_equal(index, outputs[3 + k][0])
        assert np.array_equal(before, outputs[3 + k][1])


def test_counters_match_a_whole_stream_count_whatever_the_chunking() -> None:
    rng = np.random.default_rng(1)
    stream = EventStream.from_arrays(
        time=np.sort(rng.integers(0, 1000, 500)),
        user=rng.integers(0, 40, 500),
        item=rng.zipf(1.5, 500),
        label=rng.integers(0, 2, 500),
    )
    for size in (1, 7, 500):
        counters = StreamCounters()
        seen = [counters.observe(stream[c]) for c in stream.chunks(size=size)]
        user_count = np.concatenate([o.user_count for o in seen])
        item_count = np.concatenate([o.item_count for o in seen])
        # brute force: earlier events of the same ID, by a quadratic comparison
        earlier = np.tril(np.ones((500, 500), dtype=bool), k=-1)
        same_user = stream.user[:, None] == stream.user[None, :]
        same_item = stream.item[:, None] == stream.item[None, :]
        assert np.array_equal(user_count, (earlier & same_user).sum(axis=1))
        assert np.array_equal(item_count, (earlier & same_item).sum(axis=1))
        assert np.array_equal(np.concatenate([o.user_index for o in seen]), stream.user)


# ------------------------------------------------------------------ real data
def test_movielens_streams(shared_data: Path) -> None:
    stream = EventStream.from_dataset("ml-100k", shared_data)
    assert len(stream) == 100_000 and stream.describe()["distinct_ids"] == {
        "user": 943,
        "item": 1682,
    }
    assert np.all(np.diff(stream.time) >= 0)
    assert stream.rating is not None
    assert np.array_equal(stream.label, (stream.rating >= 4).astype(np.float32))
    # ties keep file order: within equal times, source rows increase
    ties = np.diff(stream.time) == 0
    assert np.all(np.diff(stream.source_row)[ties] > 0)
    partial = EventStream.from_dataset("ml-1m-partial", shared_data)
    assert len(partial) == 487_650
    assert partial.ids["user"].n_ids == 2999 and partial.ids["item"].n_ids == 3615
    assert partial.time[0] == partial.time.min() == 970_620_734


def test_ctr_streams_are_in_file_order(shared_data: Path) -> None:
    stream = EventStream.from_dataset("criteo-sample", shared_data, order="file")
    assert len(stream) == 200 and stream.order == "file"
    assert set(stream.ids) == {"user", "item"} | {f"C{i}" for i in range(1, 27)} - {"C3", "C12"}
    assert set(stream.values) == {f"I{i}" for i in range(1, 14)}
    assert stream.source_row.tolist() == list(range(200))
    with pytest.raises(DataError, match="order='file'"):
        EventStream.from_dataset("avazu-sample", shared_data)
    avazu = EventStream.from_dataset("avazu-sample", shared_data, order="file")
    assert len(avazu) == 999 and avazu.ids["user"].n_ids == 909
