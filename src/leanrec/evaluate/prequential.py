"""Prequential (test-then-train) evaluation of a model learning along an event stream.

For each chunk of a plan (:meth:`~leanrec.data.events.EventStream.plan`), in order:

1. the running counters observe the chunk (:class:`~leanrec.data.vocab_stream.StreamCounters`):
   each event gets its ID indices and the number of *earlier* events of its user and item;
2. evaluated chunks only: ``predict(chunk)`` scores the events with the model as it stands,
   before it has learnt from any of them;
3. ``learn(chunk)`` trains on the chunk (warm-up chunks are only learnt);
4. ``memory()`` reports the bytes the model holds: the memory trace (bytes vs events seen).

Figures (AUC, log loss, accuracy on the label, MSE on the rating where ratings exist) are
reported per chunk, over the whole evaluated stream, and per frequency bucket of the event's
user, item, and the colder of the two, at the time of the event (:data:`BUCKETS`: 0, 1-4, 5-19,
20-99, 100+ earlier events): the cold-ID view.

Exactness and resume. Whole-stream figures are computed from the stored per-event predictions,
labels, ratings and buckets (about 30 bytes per evaluated event), never averaged over chunks: the
AUC of the stream is the AUC of all its events. A :class:`PrequentialRecord` saved after chunk
``c`` (:meth:`PrequentialRecord.save`) and the caller's model checkpoint of the same moment let
:func:`run_prequential` continue at chunk ``c + 1`` and give the same totals as an uninterrupted
run. The counters are rebuilt by replaying the earlier chunks (counting only) unless the caller
passes restored ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leanrec.data.events import Chunk, EventStream
from leanrec.data.vocab_stream import ObservedEvents, StreamCounters
from leanrec.evaluate.pointwise import auc, log_loss, mse

BUCKET_EDGES: tuple[int, ...] = (1, 5, 20, 100)
"""Lower edges of buckets 1..4: an ID with ``c`` earlier events is in bucket
``searchsorted(BUCKET_EDGES, c, side="right")``."""
BUCKETS: tuple[str, ...] = ("0", "1-4", "5-19", "20-99", "100+")
"""Names of the frequency buckets (earlier events of the ID at the time of the event)."""
BUCKET_VIEWS: tuple[str, ...] = ("user", "item", "either")
"""Bucket of the user, of the item, and of the colder of the two (``min`` of the counts): an
event is in ``either`` bucket ``"0"`` when its user or its item is new."""


def frequency_bucket(count_before: np.ndarray) -> np.ndarray:
    """Bucket index (0..4, see :data:`BUCKETS`) per event, shape ``(n,)``, int8.

    Example: counts ``[0, 1, 4, 5, 19, 20, 99, 100] -> [0, 1, 1, 2, 2, 3, 3, 4]``.
    """
    return np.searchsorted(np.asarray(BUCKET_EDGES), count_before, side="right").astype(np.int8)


@dataclass
class Prediction:
    """What a model says about the events of a chunk, before learning from them.

    Attributes:
        probability: P(label = 1) per event, shape ``(n,)``, in ``[0, 1]``; scores AUC, log
            loss and accuracy (threshold 0.5). None for a rating-only model.
        rating: predicted rating per event, shape ``(n,)``; scores MSE where the stream has
            ratings. None for a label-only model.
    """

    probability: np.ndarray | None = None
    rating: np.ndarray | None = None


@dataclass
class StreamChunk:
    """The argument of ``predict`` and ``learn``: one chunk of events and what the counters
    knew of them (``observed.index[field]``, ``observed.count_before[field]``, each ``(n,)``)."""

    chunk: Chunk
    events: EventStream
    observed: ObservedEvents

    def __len__(self) -> int:
        return len(self.chunk)


PredictFn = Callable[[StreamChunk], "Prediction | np.ndarray"]
"""Scores a chunk: a :class:`Prediction`, or an array of probabilities of shape ``(n,)``."""
LearnFn = Callable[[StreamChunk], None]
MemoryFn = Callable[[], int]
"""Bytes the model holds now (e.g. embedding bytes: allocated rows, shared vectors, ID state)."""
ChunkEndFn = Callable[[Chunk, "PrequentialRecord", StreamCounters], None]
"""Called after each chunk (e.g. to checkpoint the model with the record)."""


# ---------------------------------------------------------------------------------- metrics
def _or_none(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def event_metrics(
    label: np.ndarray,
    probability: np.ndarray,
    rating: np.ndarray,
    rating_prediction: np.ndarray,
) -> dict[str, Any]:
    """Metrics over a set of events, JSON-able (None where undefined).

    Args:
        label: shape ``(n,)``, {0, 1}.
        probability: shape ``(n,)``; NaN where the model gave no probability.
        rating: shape ``(n,)``; NaN where the event has no rating.
        rating_prediction: shape ``(n,)``; NaN where the model gave no rating.

    Returns:
        ``n``, ``positive_rate``, ``auc`` (None with one class only), ``log_loss``,
        ``accuracy`` (``probability >= 0.5`` against the label), ``n_rated``, ``mse``.
    """
    n = len(label)
    out: dict[str, Any] = {"n": n, "positive_rate": float(label.mean()) if n else None}
    scored = ~np.isnan(probability)
    if n and scored.all():
        y = label.astype(np.float64)
        positives = int(y.sum())
        out["auc"] = auc(y, probability) if 0 < positives < n else None
        out["log_loss"] = log_loss(y, probability)
        out["accuracy"] = float(np.mean((probability >= 0.5) == (y == 1)))
    else:
        out.update(auc=None, log_loss=None, accuracy=None)
    rated = ~np.isnan(rating) & ~np.isnan(rating_prediction)
    out["n_rated"] = int(rated.sum())
    out["mse"] = mse(rating[rated], rating_prediction[rated]) if rated.any() else None
    return out


# ---------------------------------------------------------------------------------- record
def plan_fingerprint(stream: EventStream, plan: Sequence[Chunk]) -> str:
    """A string naming the stream and the chunk boundaries, so a record is never continued
    on another stream or plan."""
    bounds = np.array([(c.start, c.stop, c.warmup) for c in plan], dtype=np.int64)
    digest = hashlib.sha256(bounds.tobytes()).hexdigest()[:16]
    return f"{stream.name}:{len(stream)}:{len(plan)}:{digest}"


class PrequentialRecord:
    """Everything a prequential run has measured so far, stored exactly.

    Per evaluated event (in stream order): ``probability`` and ``rating_prediction`` (float64,
    NaN when absent), ``label`` (float32), ``rating`` (float32, NaN when absent) and the bucket of
    each view (int8). Per chunk: a JSON-able row (range, metrics, seconds, bytes). Memory trace:
    ``(events seen, bytes)`` after every chunk, warm-up included.
    """

    _ARRAYS = ("probability", "rating_prediction", "label", "rating", "user", "item", "either")

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.chunks: list[dict[str, Any]] = []
        self.memory_events: list[int] = []
        self.memory_bytes: list[int | None] = []
        self._parts: dict[str, list[np.ndarray]] = {k: [] for k in self._ARRAYS}

    @property
    def next_chunk(self) -> int:
        """Index of the first chunk not recorded yet."""
        return len(self.chunks)

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored per-event arrays, each shape ``(n_evaluated,)``."""
        dtypes = {"probability": np.float64, "rating_prediction": np.float64}
        out = {}
        for key, parts in self._parts.items():
            dtype = dtypes.get(key, np.int8 if key in BUCKET_VIEWS else np.float32)
            out[key] = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        return out

    # ------------------------------------------------------------------ recording
    def add(
        self,
        chunk: Chunk,
        events: EventStream | None,
        observed: ObservedEvents | None,
        prediction: Prediction | None,
        seconds: dict[str, float],
        memory_bytes: int | None,
    ) -> dict[str, Any]:
        """Record one chunk (``prediction`` is None for a warm-up chunk); returns its row."""
        if chunk.index != self.next_chunk:
            raise ValueError(f"chunk {chunk.index} recorded out of order (next {self.next_chunk})")
        row: dict[str, Any] = {
            "index": chunk.index,
            "start": chunk.start,
            "stop": chunk.stop,
            "warmup": chunk.warmup,
        }
        if prediction is not None and events is not None and observed is not None:
            n = len(events)
            nan = np.full(n, np.nan)
            values = {
                "probability": nan if prediction.probability is None else prediction.probability,
                "rating_prediction": nan if prediction.rating is None else prediction.rating,
                "label": events.label,
                "rating": nan.astype(np.float32) if events.rating is None else events.rating,
                "user": frequency_bucket(observed.user_count),
                "item": frequency_bucket(observed.item_count),
                "either": frequency_bucket(np.minimum(observed.user_count, observed.item_count)),
            }
            for key, value in values.items():
                self._parts[key].append(np.array(value, copy=True))
            row.update(
                event_metrics(
                    events.label,
                    values["probability"],
                    values["rating"],
                    values["rating_prediction"],
                )
            )
        row.update({f"seconds_{k}": v for k, v in seconds.items()})
        row["memory_bytes"] = memory_bytes
        self.chunks.append(row)
        self.memory_events.append(chunk.stop)
        self.memory_bytes.append(memory_bytes)
        return row

    # ------------------------------------------------------------------ reading
    def metrics(self, view: str | None = None) -> dict[str, Any]:
        """Metrics over every evaluated event so far (``view=None``), or per bucket of
        ``view`` (``"user"``, ``"item"``, ``"either"``): ``{bucket name: metrics}``."""
        data = self.arrays()
        columns = (data["label"], data["probability"], data["rating"], data["rating_prediction"])
        if view is None:
            return event_metrics(*columns)
        if view not in BUCKET_VIEWS:
            raise ValueError(f"view must be one of {BUCKET_VIEWS}, got {view!r}")
        return {
            name: event_metrics(*(c[data[view] == b] for c in columns))
            for b, name in enumerate(BUCKETS)
        }

    def summary(self) -> dict[str, Any]:
        """The JSON-able result: ``total``, ``buckets`` (per view and bucket), ``chunks`` (one
        row per chunk), ``memory`` (``events`` and ``bytes`` after each chunk) and ``timing``."""
        evaluated = [c for c in self.chunks if not c["warmup"]]
        predict_seconds = sum(c.get("seconds_predict", 0.0) for c in evaluated)
        learn_seconds = sum(c.get("seconds_learn", 0.0) for c in self.chunks)
        n_eval = sum(c["stop"] - c["start"] for c in evaluated)
        n_all = sum(c["stop"] - c["start"] for c in self.chunks)
        return {
            "fingerprint": self.fingerprint,
            "chunks_done": len(self.chunks),
            "events_seen": n_all,
            "evaluated_events": n_eval,
            "total": self.metrics(),
            "buckets": {view: self.metrics(view) for view in BUCKET_VIEWS},
            "chunks": self.chunks,
            "memory": {"events": self.memory_events, "bytes": self.memory_bytes},
            "timing": {
                "predict_seconds": predict_seconds,
                "learn_seconds": learn_seconds,
                "events_per_second": n_all / (predict_seconds + learn_seconds)
                if predict_seconds + learn_seconds > 0
                else None,
            },
        }

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the record to one ``.npz`` file atomically (a temporary file renamed over the
        old one), so a kill while saving leaves the previous record intact."""
        target = Path(path)
        meta = {
            "fingerprint": self.fingerprint,
            "chunks": self.chunks,
            "memory_events": self.memory_events,
            "memory_bytes": self.memory_bytes,
        }
        temporary = target.with_name(target.name + ".tmp")
        payload: dict[str, Any] = {"meta": np.array(json.dumps(meta)), **self.arrays()}
        with temporary.open("wb") as handle:
            np.savez(handle, **payload)
        os.replace(temporary, target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> PrequentialRecord:
        """A record as :meth:`save` wrote it; continue it with :func:`run_prequential`."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            record = cls(meta["fingerprint"])
            record.chunks = meta["chunks"]
            record.memory_events = meta["memory_events"]
            record.memory_bytes = meta["memory_bytes"]
            for key in cls._ARRAYS:
                record._parts[key] = [data[key].copy()] if len(data[key]) else []
        return record


# ---------------------------------------------------------------------------------- driver
def _as_prediction(output: Prediction | np.ndarray, n: int) -> Prediction:
    prediction = output if isinstance(output, Prediction) else Prediction(probability=output)
    if prediction.probability is None and prediction.rating is None:
        raise ValueError("predict returned neither probabilities nor ratings")
    checked: dict[str, np.ndarray | None] = {}
    for name in ("probability", "rating"):
        value = getattr(prediction, name)
        if value is None:
            checked[name] = None
            continue
        array = np.asarray(value, dtype=np.float64).reshape(-1)
        if len(array) != n:
            raise ValueError(f"predict returned {len(array)} {name} values for {n} events")
        if not np.isfinite(array).all():
            raise ValueError(f"predict returned a non-finite {name}")
        if name == "probability" and ((array < 0) | (array > 1)).any():
            raise ValueError("predict returned a probability outside [0, 1]")
        checked[name] = array
    return Prediction(probability=checked["probability"], rating=checked["rating"])


def run_prequential(
    stream: EventStream,
    plan: Sequence[Chunk],
    predict: PredictFn,
    learn: LearnFn,
    memory: MemoryFn | None = None,
    *,
    record: PrequentialRecord | None = None,
    counters: StreamCounters | None = None,
    fields: Sequence[str] = ("user", "item"),
    stop_chunk: int | None = None,
    on_chunk_end: ChunkEndFn | None = None,
) -> PrequentialRecord:
    """Run test-then-train over ``plan[record.next_chunk:stop_chunk]``.

    Args:
        stream: the events.
        plan: chunks in order, warm-up ones flagged (:meth:`EventStream.plan`).
        predict: scores a :class:`StreamChunk` before the model learns it (evaluated chunks).
        learn: trains the model on a :class:`StreamChunk` (every chunk).
        memory: the model's bytes now; recorded after each chunk (None: not recorded).
        record: a record to continue (from :meth:`PrequentialRecord.load`); the run starts at
            its ``next_chunk``. None starts a new record at chunk 0.
        counters: the counters as they were after the record's last chunk (restored by the
            caller); None rebuilds them by replaying the recorded chunks.
        fields: ID fields the counters follow when built here (``user`` and ``item`` at least).
        stop_chunk: stop before this chunk (default: the end of the plan).
        on_chunk_end: called after each chunk with ``(chunk, record, counters)``: the place to
            checkpoint the model together with ``record.save(...)``.

    Returns:
        The record (also updated in place when passed in); ``record.summary()`` is the result.

    Raises:
        ValueError: a record of another stream or plan, counters that do not match the record,
            or a malformed prediction (length, NaN, probability outside [0, 1]).
    """
    fingerprint = plan_fingerprint(stream, plan)
    if record is None:
        record = PrequentialRecord(fingerprint)
    elif record.fingerprint != fingerprint:
        raise ValueError(
            f"the record was made on {record.fingerprint!r}, not on this stream and plan "
            f"({fingerprint!r})"
        )
    start = record.next_chunk
    stop = len(plan) if stop_chunk is None else stop_chunk
    events_before = plan[start].start if start < len(plan) else len(stream)
    if counters is None:
        counters = StreamCounters(fields)
        counters.replay(stream, plan[:start])
    for name, vocab in counters.vocabularies.items():
        if int(vocab.counts().sum()) != events_before:
            raise ValueError(
                f"counters of {name!r} have seen {int(vocab.counts().sum())} events, the record "
                f"{events_before}: pass the counters saved with the record, or None"
            )
    for chunk in plan[start:stop]:
        events = stream[chunk]
        observed = counters.observe(events)
        batch = StreamChunk(chunk, events, observed)
        seconds: dict[str, float] = {}
        prediction = None
        if not chunk.warmup:
            began = time.perf_counter()
            prediction = _as_prediction(predict(batch), len(chunk))
            seconds["predict"] = time.perf_counter() - began
        began = time.perf_counter()
        learn(batch)
        seconds["learn"] = time.perf_counter() - began
        held = None if memory is None else int(memory())
        record.add(chunk, events, observed, prediction, seconds, held)
        if on_chunk_end is not None:
            on_chunk_end(chunk, record, counters)
    return record
