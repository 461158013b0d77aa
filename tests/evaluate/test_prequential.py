"""Prequential evaluation: test-then-train order, hand-computed metrics, cold-ID buckets, resume."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leanrec.data.events import Chunk, EventStream
from leanrec.data.vocab_stream import StreamCounters
from leanrec.evaluate.prequential import (
    Prediction,
    PrequentialRecord,
    StreamChunk,
    frequency_bucket,
    run_prequential,
)

# Eight events; the first two are the warm-up, then two chunks of three.
#   user:  a b a c a b c d    earlier events of the user: 0 0 1 0 2 1 1 0
#   item:  x x y x y z z x    earlier events of the item: 0 1 0 2 1 0 1 3
USERS = ["a", "b", "a", "c", "a", "b", "c", "d"]
ITEMS = ["x", "x", "y", "x", "y", "z", "z", "x"]
LABELS = [1, 0, 1, 0, 1, 0, 1, 1]
RATINGS = [4, 2, 5, 1, 4, 2, 4, 5]
# The model's scores for the six evaluated events (rows 2..7):
PROBS = {2: 0.9, 3: 0.2, 4: 0.4, 5: 0.6, 6: 0.8, 7: 0.7}
RATING_PREDS = {2: 4.0, 3: 1.0, 4: 4.0, 5: 4.0, 6: 4.0, 7: 4.0}


def toy_stream() -> EventStream:
    return EventStream.from_arrays(
        time=np.arange(8), user=USERS, item=ITEMS, label=LABELS, rating=RATINGS, name="toy"
    )


class ScriptedModel:
    """Scores each event from a table by its row; logs every call to check the order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.learnt = 0

    def predict(self, batch: StreamChunk) -> Prediction:
        self.calls.append(("predict", batch.chunk.start, batch.chunk.stop))
        assert self.learnt == batch.chunk.start  # learnt exactly the events before the chunk
        rows = batch.events.source_row.tolist()
        return Prediction(
            probability=np.array([PROBS[r] for r in rows]),
            rating=np.array([RATING_PREDS[r] for r in rows]),
        )

    def learn(self, batch: StreamChunk) -> None:
        self.calls.append(("learn", batch.chunk.start, batch.chunk.stop))
        self.learnt = batch.chunk.stop

    def memory(self) -> int:
        return 100 * self.learnt


def test_frequency_buckets() -> None:
    counts = np.array([0, 1, 4, 5, 19, 20, 99, 100, 5000])
    assert frequency_bucket(counts).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_test_then_train_with_hand_computed_metrics() -> None:
    stream = toy_stream()
    plan = stream.plan(size=3, warmup_fraction=0.25)
    model = ScriptedModel()
    record = run_prequential(stream, plan, model.predict, model.learn, model.memory)
    assert model.calls == [
        ("learn", 0, 2),
        ("predict", 2, 5),
        ("learn", 2, 5),
        ("predict", 5, 8),
        ("learn", 5, 8),
    ]
    result = record.summary()
    assert result["memory"] == {"events": [2, 5, 8], "bytes": [200, 500, 800]}
    first, second = result["chunks"][1], result["chunks"][2]
    # chunk 1: labels 1 0 1, probs .9 .2 .4 -> both positives above the negative: AUC 1
    # chunk 2: labels 0 1 1, probs .6 .8 .7 -> AUC 1
    assert first["auc"] == 1.0 and second["auc"] == 1.0
    # whole stream: positives .9 .4 .8 .7 vs negatives .2 .6 -> 7 of 8 pairs (not the mean 1.0)
    total = result["total"]
    assert total["auc"] == 0.875
    # accuracy at 0.5: right, right, wrong (.4 on a 1), wrong (.6 on a 0), right, right
    assert total["accuracy"] == pytest.approx(4 / 6)
    expected_log_loss = (
        -(
            math.log(0.9)
            + math.log(0.8)
            + math.log(0.4)
            + math.log(0.4)
            + math.log(0.8)
            + math.log(0.7)
        )
        / 6
    )
    assert total["log_loss"] == pytest.approx(expected_log_loss, rel=1e-12)
    # squared rating errors: 1 0 0 | 4 0 1
    assert first["mse"] == pytest.approx(1 / 3) and second["mse"] == pytest.approx(5 / 3)
    assert total["mse"] == pytest.approx(1.0) and total["n_rated"] == 6
    assert result["evaluated_events"] == 6 and result["events_seen"] == 8


def test_cold_id_buckets_by_hand() -> None:
    stream = toy_stream()
    model = ScriptedModel()
    record = run_prequential(
        stream, stream.plan(size=3, warmup_fraction=0.25), model.predict, model.learn
    )
    buckets = record.summary()["buckets"]
    # evaluated rows 2..7: user counts 1 0 2 1 1 0, item counts 0 2 1 0 1 3
    user = buckets["user"]
    assert [user[b]["n"] for b in ("0", "1-4", "5-19", "20-99", "100+")] == [2, 4, 0, 0, 0]
    # user bucket 0 = rows 3, 7: labels 0 1, probs .2 .7 -> AUC 1
    assert user["0"]["auc"] == 1.0
    # user bucket 1-4 = rows 2 4 5 6: positives .9 .4 .8 vs negative .6 -> 2 of 3
    assert user["1-4"]["auc"] == pytest.approx(2 / 3)
    assert user["5-19"]["auc"] is None and user["5-19"]["n"] == 0
    item = buckets["item"]
    assert item["0"]["n"] == 2 and item["1-4"]["n"] == 4
    # colder of the two = min counts 0 0 1 0 1 0: bucket 0 = rows 2 3 5 7
    either = buckets["either"]
    assert either["0"]["n"] == 4 and either["0"]["auc"] == 1.0
    # bucket 1-4 = rows 4, 6, both positive: AUC undefined, accuracy .4 -> 0 wrong, .8 right
    assert either["1-4"]["auc"] is None and either["1-4"]["accuracy"] == 0.5


class RunningMeanModel:
    """Predicts the smoothed positive rate of the event's item and its mean rating so far."""

    def __init__(self) -> None:
        self.positives = np.zeros(0)
        self.seen = np.zeros(0)
        self.rating_sum = np.zeros(0)

    def _grow(self, size: int) -> None:
        if size > len(self.seen):
            extra = size - len(self.seen)
            self.positives = np.append(self.positives, np.zeros(extra))
            self.seen = np.append(self.seen, np.zeros(extra))
            self.rating_sum = np.append(self.rating_sum, np.zeros(extra))

    def predict(self, batch: StreamChunk) -> Prediction:
        self._grow(batch.observed.sizes["item"])
        item = batch.observed.item_index
        probability = (self.positives[item] + 1) / (self.seen[item] + 2)
        rating = (self.rating_sum[item] + 3.5) / (self.seen[item] + 1)
        return Prediction(probability=probability, rating=rating)

    def learn(self, batch: StreamChunk) -> None:
        self._grow(batch.observed.sizes["item"])
        item = batch.observed.item_index
        np.add.at(self.positives, item, batch.events.label)
        np.add.at(self.seen, item, 1)
        assert batch.events.rating is not None
        np.add.at(self.rating_sum, item, batch.events.rating)

    def memory(self) -> int:
        return int(self.seen.nbytes * 3)


def random_stream(n: int = 400, seed: int = 0) -> EventStream:
    rng = np.random.default_rng(seed)
    items = rng.zipf(1.4, n) % 60
    ratings = np.clip(np.round(3 + np.sin(items) * 2 + rng.normal(0, 0.5, n)), 1, 5)
    return EventStream.from_arrays(
        time=np.sort(rng.integers(0, 10_000, n)),
        user=rng.integers(0, 30, n),
        item=items,
        label=(ratings >= 4).astype(np.float32),
        rating=ratings,
    )


def _without_timing(summary: dict[str, Any]) -> dict[str, Any]:
    summary = copy.deepcopy(summary)
    summary.pop("timing")
    for row in summary["chunks"]:
        for key in [k for k in row if k.startswith("seconds_")]:
            row.pop(key)
    return summary


def test_resume_after_a_kill_gives_the_same_totals(tmp_path: Path) -> None:
    stream = random_stream()
    plan = stream.plan(size=25)
    whole_model = RunningMeanModel()
    whole = run_prequential(
        stream, plan, whole_model.predict, whole_model.learn, whole_model.memory
    )

    model = RunningMeanModel()
    saved: dict[str, object] = {}

    def checkpoint(chunk: Chunk, record: PrequentialRecord, counters: StreamCounters) -> None:
        record.save(tmp_path / "record.npz")
        saved["model"] = copy.deepcopy(model)
        saved["counters"] = counters.state_dict()

    run_prequential(
        stream,
        plan,
        model.predict,
        model.learn,
        model.memory,
        stop_chunk=7,
        on_chunk_end=checkpoint,
    )
    # "killed" after chunk 6; continue from the files with a fresh process's objects
    restored = copy.deepcopy(saved["model"])
    assert isinstance(restored, RunningMeanModel)
    record = PrequentialRecord.load(tmp_path / "record.npz")
    assert record.next_chunk == 7
    resumed = run_prequential(
        stream, plan, restored.predict, restored.learn, restored.memory, record=record
    )
    assert _without_timing(resumed.summary()) == _without_timing(whole.summary())
    assert 0.5 < whole.summary()["total"]["auc"] < 1.0

    # the same with counters restored by the caller instead of replayed
    again = PrequentialRecord.load(tmp_path / "record.npz")
    model_again = copy.deepcopy(saved["model"])
    assert isinstance(model_again, RunningMeanModel)
    state = saved["counters"]
    assert isinstance(state, dict)
    counters = StreamCounters.from_state_dict(state)
    run_prequential(
        stream, plan, model_again.predict, model_again.learn, record=again, counters=counters
    )
    assert again.summary()["total"] == whole.summary()["total"]


def test_mismatches_are_refused() -> None:
    stream = random_stream()
    model = RunningMeanModel()
    record = run_prequential(stream, stream.plan(size=25), model.predict, model.learn, stop_chunk=3)
    with pytest.raises(ValueError, match="record was made on"):
        run_prequential(stream, stream.plan(size=50), model.predict, model.learn, record=record)
    with pytest.raises(ValueError, match="counters"):
        run_prequential(
            stream,
            stream.plan(size=25),
            model.predict,
            model.learn,
            record=record,
            counters=StreamCounters(),
        )
    with pytest.raises(ValueError, match="outside"):
        run_prequential(stream, stream.plan(size=25), lambda b: np.full(len(b), 1.5), model.learn)


def test_running_mean_on_movielens_100k(shared_data: Path) -> None:
    stream = EventStream.from_dataset("ml-100k", shared_data)
    model = RunningMeanModel()
    plan = stream.plan(size=1000)
    result = run_prequential(stream, plan, model.predict, model.learn, model.memory).summary()
    assert result["evaluated_events"] == 80_000 and len(result["chunks"]) == 100
    # an item's positive rate so far ranks better than chance, and worse than a real model
    assert 0.6 < result["total"]["auc"] < 0.8
    shares = [result["buckets"]["item"][b]["n"] for b in ("0", "1-4", "5-19", "20-99", "100+")]
    assert sum(shares) == 80_000
    assert result["memory"]["events"][-1] == 100_000
