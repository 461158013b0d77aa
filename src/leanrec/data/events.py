"""A global event stream: every interaction of a dataset, one after another, in time order.

A streaming recommender sees events ``(time, user, item, label, rating?, extra fields?)`` one
chunk at a time and must never use an event before its time. :class:`EventStream` holds those
events as columnar NumPy arrays (no per-event Python objects), sorted by time with ties kept in
file order (a stable sort), and keeps the raw IDs.

ID columns are stored like a pandas categorical: per event an int64 *code*, plus the table of
raw IDs. Codes are assigned in order of first appearance in the stream (``pd.factorize``), so the
code of an ID is exactly the index a vocabulary growing along the stream gives it when it first
sees it; it depends only on the events before. :class:`~leanrec.data.vocab_stream.StreamVocabulary`
is that growing vocabulary (with running counters). The number of distinct IDs of the *whole*
stream (:attr:`IdColumn.n_ids`) is for reporting only: a model must size itself from what the
vocabulary has seen so far, never from it.

Cutting the stream (all cuts are contiguous index ranges, :class:`Chunk`):

* :meth:`EventStream.warmup`: the first ``fraction`` of the events, for training and for choosing
  hyper-parameters only;
* :meth:`EventStream.chunks`: fixed event counts (``by="events"``) or time periods
  (``by="period"``, e.g. calendar weeks with :data:`WEEK` and :data:`MONDAY`);
* :meth:`EventStream.plan`: warm-up chunks then evaluated chunks, never one straddling the two;
* :meth:`EventStream.sessions`: ``n`` sessions of equal event counts after the warm-up.

Example:
    >>> stream = EventStream.from_arrays(
    ...     time=[30, 10, 10], user=[7, 7, 8], item=["a", "b", "a"], label=[1, 0, 1]
    ... )
    >>> stream.user_raw.tolist(), stream.item_raw.tolist()
    ([7, 8, 7], ['b', 'a', 'a'])
    >>> stream.ids["item"].codes.tolist()
    [0, 1, 1]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders.ctr import CTRTable
from leanrec.data.loaders.tabular import line_of_row, load_table
from leanrec.data.own import DataFile

Order = Literal["time", "file"]

DAY = 86_400
"""Seconds in a day."""
WEEK = 7 * DAY
"""Seconds in a week: ``chunks(by="period", seconds=WEEK, origin=MONDAY)`` cuts calendar weeks."""
MONDAY = 4 * DAY
"""Unix time of Monday 1970-01-05 00:00 UTC: the origin that makes weekly periods calendar weeks
(Monday to Sunday, UTC). The default origin 0 is a Thursday."""

DEFAULT_CTR_FIELDS: dict[str, tuple[str, str]] = {
    "criteo": ("C3", "C12"),
    "avazu": ("device_ip", "C14"),
}
"""Which categorical fields play ``user`` and ``item`` in a CTR table (every field stays an ID
field of the stream). Criteo's fields are anonymous: C3 and C12 are the two largest-cardinality
fields of the DAC data. Avazu: ``device_ip`` is the closest to a user (``device_id`` is mostly one
placeholder value) and ``C14`` is the anonymised ad (creative) field."""


# ---------------------------------------------------------------------------------- pieces
@dataclass(frozen=True)
class IdColumn:
    """One ID field of a stream, stored as codes plus the table of raw IDs.

    Attributes:
        codes: per event, shape ``(n_events,)``, int64 in ``[0, n_ids)``; code ``c`` is the
            ``c``-th distinct ID to appear in the (whole) stream.
        raw_ids: raw ID of each code, shape ``(n_ids,)`` (int64 or fixed-width text; never
            Python objects).
    """

    codes: np.ndarray
    raw_ids: np.ndarray

    @property
    def n_ids(self) -> int:
        """Distinct IDs of the whole stream: for reports, not for sizing a model."""
        return len(self.raw_ids)

    def raw(self) -> np.ndarray:
        """Raw ID per event, shape ``(n_events,)``."""
        return self.raw_ids[self.codes]

    def __getitem__(self, index: slice | np.ndarray) -> IdColumn:
        return IdColumn(self.codes[index], self.raw_ids)

    @classmethod
    def factorize(cls, raw: np.ndarray | Sequence[Any]) -> IdColumn:
        """Codes in order of first appearance of ``raw`` (shape ``(n,)``)."""
        values = np.asarray(raw)
        if values.dtype == object:
            values = values.astype(str)
        codes, uniques = pd.factorize(values, sort=False)
        raw_ids = np.asarray(uniques)
        if raw_ids.dtype == object:
            raw_ids = raw_ids.astype(str)
        return cls(codes.astype(np.int64, copy=False), raw_ids)


@dataclass(frozen=True)
class Chunk:
    """A contiguous range ``[start, stop)`` of event positions.

    Attributes:
        index: position of the chunk in its plan (0-based).
        start: first event position.
        stop: one past the last event position.
        warmup: True for a warm-up chunk (trained on, never scored).
    """

    index: int
    start: int
    stop: int
    warmup: bool = False

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def _label_column(
    path: str | Path, columns: Mapping[str, str], label_column: str, sep: str | None, name: str
) -> np.ndarray:
    """The 0/1 label column of a table as float32 ``(n,)``, read like a rating column; its
    errors (a value that is no number: file and line) speak of the label column."""
    roles = {"user": columns["user"], "item": columns["item"], "rating": label_column}
    try:
        values = load_table(path, roles, sep=sep, name=name).ratings
    except DataError as error:
        where = "" if error.path is None else f"{error.path}"
        where += "" if error.line is None else f", line {error.line}"
        message = str(error).removeprefix(f"{where}: " if where else "")
        message = message.replace(
            f"rating column {label_column!r}", f"label column {label_column!r}"
        )
        raise DataError(message, path=error.path, line=error.line) from None
    assert values is not None  # load_table returns the "rating" role it was given
    return values


def _ranges(bounds: np.ndarray) -> list[tuple[int, int]]:
    """``[(b0, b1), (b1, b2), ...]`` from sorted boundaries, shape ``(k + 1,)``."""
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


# ---------------------------------------------------------------------------------- stream
@dataclass
class EventStream:
    """Events in stream order, as parallel arrays of length ``n_events``.

    Attributes:
        time: event time, shape ``(n,)``, int64 (Unix seconds for the shipped sources), sorted
            non-decreasing when ``order == "time"``; the row number when the source has no time.
        label: binary target, shape ``(n,)``, float32 in {0, 1} (MovieLens: ``rating >= 4``).
        ids: ID fields by name, each an :class:`IdColumn`; always holds ``"user"`` and
            ``"item"``, plus any other categorical field of the source (CTR tables).
        rating: explicit rating, shape ``(n,)``, float32, or None when the source has none.
        values: numeric extra fields by name, each shape ``(n,)`` float32 (Criteo ``I1..I13``).
        source_row: 0-based row of each event in the source, shape ``(n,)``, int64; ties in
            time are ordered by it (default: the positions, i.e. the source is in file order).
        order: ``"time"`` (sorted by time) or ``"file"`` (source order).
        has_timestamps: whether ``time`` holds real times (period chunks need them).
        name: dataset name, for messages and reports.
    """

    time: np.ndarray
    label: np.ndarray
    ids: dict[str, IdColumn]
    rating: np.ndarray | None = None
    values: dict[str, np.ndarray] = field(default_factory=dict)
    source_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    order: Order = "time"
    has_timestamps: bool = True
    name: str = "stream"

    def __post_init__(self) -> None:
        self.time = np.ascontiguousarray(self.time, dtype=np.int64)
        self.label = np.ascontiguousarray(self.label, dtype=np.float32)
        n = len(self.time)
        if len(self.source_row) == 0 and n:
            self.source_row = np.arange(n, dtype=np.int64)
        for role in ("user", "item"):
            if role not in self.ids:
                raise ValueError(f"an event stream needs a {role!r} ID field")
        columns: dict[str, np.ndarray] = {"label": self.label, "source_row": self.source_row}
        columns.update({f"ids[{k}]": v.codes for k, v in self.ids.items()})
        columns.update({f"values[{k}]": v for k, v in self.values.items()})
        if self.rating is not None:
            self.rating = np.ascontiguousarray(self.rating, dtype=np.float32)
            columns["rating"] = self.rating
        for what, column in columns.items():
            if len(column) != n:
                raise ValueError(f"{what} has {len(column)} values, time has {n}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        time: Sequence[int] | np.ndarray | None,
        user: Sequence[Any] | np.ndarray,
        item: Sequence[Any] | np.ndarray,
        label: Sequence[float] | np.ndarray,
        rating: Sequence[float] | np.ndarray | None = None,
        extra_ids: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
        values: Mapping[str, Sequence[float] | np.ndarray] | None = None,
        order: Order = "time",
        name: str = "stream",
    ) -> EventStream:
        """Build from per-event arrays in source (file) order, shape ``(n,)`` each.

        Args:
            time: event times, or None when the source has none (then ``order`` must be
                ``"file"``).
            user / item: raw IDs (ints or text).
            label: binary target in {0, 1}.
            rating: explicit rating, optional.
            extra_ids: other categorical fields (raw values), kept as ID fields.
            values: numeric extra fields.
            order: ``"time"``: stable sort by time (ties keep file order); ``"file"``: keep the
                source order.
            name: dataset name.

        Raises:
            DataError: no events, ``order="time"`` without times, or labels outside {0, 1}.
        """
        user_raw = np.asarray(user)
        n = len(user_raw)
        if n == 0:
            raise DataError(f"event stream {name!r} is empty: no events")
        if order not in ("time", "file"):
            raise ValueError(f"order must be 'time' or 'file', got {order!r}")
        has_timestamps = time is not None
        if time is None:
            if order == "time":
                raise DataError(
                    f"{name!r} has no timestamps, so it cannot be put in time order; "
                    "stream it in file order with order='file' (CLI: --order file)"
                )
            times = np.arange(n, dtype=np.int64)
        else:
            times = np.asarray(time, dtype=np.int64)
        labels = np.asarray(label, dtype=np.float32)
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{name!r}: label of row {row} is {labels[row]!r}, not 0 or 1")
        permutation = (
            np.argsort(times, kind="stable") if order == "time" else np.arange(n, dtype=np.int64)
        )

        def ordered(column: Sequence[Any] | np.ndarray) -> np.ndarray:
            array = np.asarray(column)
            if len(array) != n:
                raise ValueError(f"every column needs {n} values, one has {len(array)}")
            return array[permutation]

        ids = {"user": IdColumn.factorize(user_raw[permutation])}
        ids["item"] = IdColumn.factorize(ordered(item))
        for key, column in (extra_ids or {}).items():
            if key in ids:
                raise ValueError(f"extra ID field {key!r} clashes with an existing field")
            ids[key] = IdColumn.factorize(ordered(column))
        return cls(
            time=times[permutation],
            label=labels[permutation],
            ids=ids,
            rating=None if rating is None else ordered(rating).astype(np.float32),
            values={k: ordered(v).astype(np.float32) for k, v in (values or {}).items()},
            source_row=permutation.astype(np.int64),
            order=order,
            has_timestamps=has_timestamps,
            name=name,
        )

    @classmethod
    def from_interactions(
        cls,
        data: Interactions,
        order: Order = "time",
        label_threshold: float = 4.0,
        name: str | None = None,
    ) -> EventStream:
        """Stream of an :class:`Interactions` with ratings (ML-100K ``u.data``, ML-1M files).

        Args:
            data: interactions in file order, as the loaders return them.
            order: ``"time"`` (needs timestamps) or ``"file"``.
            label_threshold: ``label = rating >= label_threshold`` (4 on MovieLens' 1-5 scale).
            name: stream name (default ``data.name``).

        Raises:
            DataError: no ratings to derive the label from, or ``order="time"`` without
                timestamps (the message says how to ask for file order).
        """
        stream_name = name or data.name
        if data.ratings is None:
            raise DataError(
                f"{stream_name!r} has no ratings, so there is no label for its events; "
                "use a source with ratings or explicit labels"
            )
        return cls.from_arrays(
            time=data.timestamps,
            user=data.user_vocab.to_raw(data.users),
            item=data.item_vocab.to_raw(data.items),
            label=(data.ratings >= label_threshold).astype(np.float32),
            rating=data.ratings,
            order=order,
            name=stream_name,
        )

    @classmethod
    def from_table(
        cls,
        path: str | Path,
        columns: Mapping[str, str],
        label_column: str | None = None,
        label_threshold: float = 4.0,
        order: Order = "time",
        sep: str | None = None,
        name: str | None = None,
    ) -> EventStream:
        """Stream of a CSV/TSV/Parquet file with a header, read by
        :func:`~leanrec.data.loaders.tabular.load_table`.

        Args:
            path: the file.
            columns: role -> column name for ``"user"``, ``"item"`` and optionally
                ``"timestamp"`` and ``"rating"`` (see ``load_table``).
            label_column: a 0/1 label column; without it the label is
                ``rating >= label_threshold``.
            label_threshold: threshold on the rating when there is no label column.
            order: ``"time"`` (needs a ``"timestamp"`` column) or ``"file"``.
            sep: text separator (default: from the suffix or the header line).
            name: stream name (default: the file stem).

        Raises:
            DataError: the file's errors (file and line named), neither a rating nor a label
                column, a label that is not 0/1 (data row named), or no time column with
                ``order="time"``.
        """
        stream_name = name or Path(path).stem
        if order == "time" and "timestamp" not in columns:
            raise DataError(
                f"{stream_name!r}: no 'timestamp' column given, so the events cannot be put in "
                "time order; map one in columns= or stream in file order with order='file' "
                "(CLI: --order file)",
                path=path,
            )
        data = load_table(path, columns, sep=sep, name=stream_name)
        if label_column is not None:
            label_values = _label_column(path, columns, label_column, sep, stream_name)
            bad = (label_values != 0) & (label_values != 1)
            if bad.any():
                row = int(np.argmax(bad))
                line = line_of_row(path, row, sep)
                raise DataError(
                    f"label column {label_column!r} must be 0 or 1, found "
                    f"{float(label_values[row]):g}" + ("" if line else f" (data row {row})"),
                    path=path,
                    line=line,
                )
            labels = label_values
        elif data.ratings is not None:
            labels = (data.ratings >= label_threshold).astype(np.float32)
        else:
            raise DataError(
                f"{stream_name!r}: no label for the events; map a 'rating' column (label = "
                "rating >= label_threshold) or pass label_column=",
                path=path,
            )
        return cls.from_arrays(
            time=data.timestamps,
            user=data.user_vocab.to_raw(data.users),
            item=data.item_vocab.to_raw(data.items),
            label=labels,
            rating=data.ratings,
            order=order,
            name=stream_name,
        )

    @classmethod
    def from_ctr_table(
        cls,
        table: CTRTable,
        user_field: str | None = None,
        item_field: str | None = None,
        order: Order = "file",
        name: str | None = None,
    ) -> EventStream:
        """Stream of a Criteo/Avazu :class:`~leanrec.data.loaders.ctr.CTRTable` in file order.

        Every categorical field becomes an ID field with its raw (text) values; a missing value
        is the raw ID ``""``. Two of them play ``user`` and ``item`` (defaults in
        :data:`DEFAULT_CTR_FIELDS`); numeric fields go to ``values``.

        Raises:
            DataError: ``order="time"`` (these tables have no event time), or an unknown field.
        """
        stream_name = name or table.name
        if order != "file":
            raise DataError(
                f"{stream_name!r} is a CTR table without event times; stream it in file order "
                "with order='file' (CLI: --order file)"
            )
        default_user, default_item = DEFAULT_CTR_FIELDS[table.source_format]
        roles = {"user": user_field or default_user, "item": item_field or default_item}
        for role, field_name in roles.items():
            if field_name not in table.sparse_names:
                raise DataError(
                    f"{stream_name!r}: {role} field {field_name!r} is not a categorical field; "
                    f"known: {', '.join(table.sparse_names)}"
                )
        n = len(table)
        ids: dict[str, IdColumn] = {}
        for j, field_name in enumerate(table.sparse_names):
            column = IdColumn.factorize(table.sparse[:, j])
            known = np.concatenate([[""], table.vocabularies[field_name].astype(str)])
            ids[field_name] = IdColumn(column.codes, known[column.raw_ids])
        user_column, item_column = ids.pop(roles["user"]), ids.pop(roles["item"])
        return cls(
            time=np.arange(n, dtype=np.int64),
            label=table.labels,
            ids={"user": user_column, "item": item_column, **ids},
            values={f: table.dense[:, j] for j, f in enumerate(table.dense_names)},
            order="file",
            has_timestamps=False,
            name=stream_name,
        )

    @classmethod
    def from_dataset(
        cls,
        name: str | DataFile,
        data_dir: str | Path | None = None,
        order: Order = "time",
        label_threshold: float = 4.0,
        user_field: str | None = None,
        item_field: str | None = None,
    ) -> EventStream:
        """Stream of a registered dataset (``"ml-100k"``, ``"ml-1m-partial"``,
        ``"criteo-8k"``, ``"avazu-9k"``, ...), loaded with the registry's loaders, or of a
        table of one's own (a :class:`~leanrec.data.own.DataFile` with a rating column; its
        ``threshold``, when set, replaces ``label_threshold``).

        CTR datasets need ``order="file"``; ranking datasets need ratings (for the label), and
        timestamps unless ``order="file"``.
        """
        from leanrec.data.registry import dataset_info, load_ctr_dataset, load_dataset

        if isinstance(name, DataFile):
            threshold = label_threshold if name.threshold is None else name.threshold
            return cls.from_interactions(
                name.load(apply_threshold=False), order=order, label_threshold=threshold
            )

        info = dataset_info(name)
        if info.kind == "ctr":
            if order != "file":
                raise DataError(
                    f"dataset {name!r} is a CTR table without event times; stream it in file "
                    "order with order='file' (CLI: --order file)"
                )
            table = load_ctr_dataset(name, data_dir)
            return cls.from_ctr_table(table, user_field, item_field, order="file", name=name)
        data = load_dataset(name, data_dir)
        if isinstance(data, tuple):
            raise DataError(
                f"dataset {name!r} is a fixed train/test split without times or ratings; "
                "it cannot be streamed"
            )
        return cls.from_interactions(data, order=order, label_threshold=label_threshold)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.time)

    @property
    def user(self) -> np.ndarray:
        """User code per event, shape ``(n,)``."""
        return self.ids["user"].codes

    @property
    def item(self) -> np.ndarray:
        """Item code per event, shape ``(n,)``."""
        return self.ids["item"].codes

    @property
    def user_raw(self) -> np.ndarray:
        """Raw user ID per event, shape ``(n,)``."""
        return self.ids["user"].raw()

    @property
    def item_raw(self) -> np.ndarray:
        """Raw item ID per event, shape ``(n,)``."""
        return self.ids["item"].raw()

    def __getitem__(self, part: slice | Chunk) -> EventStream:
        """The events of ``part`` (a contiguous slice or a :class:`Chunk`), as views that share
        the raw-ID tables, so codes keep their meaning."""
        index = part.slice if isinstance(part, Chunk) else part
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("an event stream is cut into contiguous ranges only")
        return EventStream(
            time=self.time[index],
            label=self.label[index],
            ids={k: v[index] for k, v in self.ids.items()},
            rating=None if self.rating is None else self.rating[index],
            values={k: v[index] for k, v in self.values.items()},
            source_row=self.source_row[index],
            order=self.order,
            has_timestamps=self.has_timestamps,
            name=self.name,
        )

    # ------------------------------------------------------------------ cuts
    def warmup_size(self, fraction: float) -> int:
        """Number of warm-up events: ``floor(fraction * n)`` (a float rounding error below one
        millionth of an event rounds up, so 0.29 of 100 events is 29)."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"warm-up fraction must be in [0, 1), got {fraction}")
        return min(len(self), math.floor(fraction * len(self) + 1e-6))

    def warmup(self, fraction: float = 0.2) -> Chunk:
        """The warm-up prefix ``[0, floor(fraction * n))``: for training and for choosing
        hyper-parameters only; no reported figure may use it."""
        return Chunk(0, 0, self.warmup_size(fraction), warmup=True)

    def chunks(
        self,
        by: Literal["events", "period"] = "events",
        size: int = 1000,
        seconds: int | None = None,
        origin: int = 0,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[Chunk]:
        """Cut ``[start, stop)`` into contiguous chunks, numbered from 0.

        Args:
            by: ``"events"``: ``size`` events each (the last may be shorter); ``"period"``: one
                chunk per time period ``floor((time - origin) / seconds)`` holding events
                (periods without events yield no chunk).
            size: events per chunk (``by="events"``).
            seconds: period length (``by="period"``), e.g. :data:`WEEK`.
            origin: period origin; :data:`MONDAY` with :data:`WEEK` gives calendar weeks.
            start / stop: the range to cut (default: the whole stream).

        Raises:
            DataError: ``by="period"`` on a stream without timestamps or not in time order.
        """
        stop = len(self) if stop is None else stop
        if not 0 <= start <= stop <= len(self):
            raise ValueError(f"bad range [{start}, {stop}) for {len(self)} events")
        if by == "events":
            if size <= 0:
                raise ValueError(f"chunk size must be positive, got {size}")
            bounds = np.append(np.arange(start, stop, size), stop)
        elif by == "period":
            if seconds is None or seconds <= 0:
                raise ValueError("by='period' needs seconds > 0 (e.g. seconds=WEEK)")
            if not self.has_timestamps:
                raise DataError(
                    f"{self.name!r} has no timestamps: cut it by event counts (by='events')"
                )
            times = self.time[start:stop]
            if np.any(np.diff(times) < 0):
                raise DataError(f"{self.name!r} is not in time order: cannot cut it by period")
            period = (times - origin) // seconds
            changes = np.flatnonzero(period[1:] != period[:-1]) + 1 + start
            bounds = np.concatenate([[start], changes, [stop]])
        else:
            raise ValueError(f"by must be 'events' or 'period', got {by!r}")
        if start == stop:
            return
        for index, (a, b) in enumerate(_ranges(bounds)):
            yield Chunk(index, a, b)

    def plan(
        self,
        by: Literal["events", "period"] = "events",
        size: int = 1000,
        seconds: int | None = None,
        origin: int = 0,
        warmup_fraction: float = 0.2,
    ) -> list[Chunk]:
        """Warm-up chunks (``warmup=True``) then evaluated chunks, numbered 0, 1, ... across
        both. Each part is cut on its own, so no chunk straddles the warm-up boundary: the
        evaluated events are exactly ``[warmup(fraction).stop, n)``."""
        boundary = self.warmup_size(warmup_fraction)
        parts = [
            (True, self.chunks(by, size, seconds, origin, 0, boundary)),
            (False, self.chunks(by, size, seconds, origin, boundary, len(self))),
        ]
        plan: list[Chunk] = []
        for is_warmup, chunks in parts:
            for chunk in chunks:
                plan.append(Chunk(len(plan), chunk.start, chunk.stop, warmup=is_warmup))
        return plan

    def sessions(self, n: int = 20, warmup_fraction: float = 0.2) -> list[Chunk]:
        """``n`` sessions of equal event counts (sizes differ by at most one, larger first)
        covering the events after the warm-up; session ``s`` is ``Chunk(s, ...)``."""
        boundary = self.warmup_size(warmup_fraction)
        remaining = len(self) - boundary
        if n <= 0 or n > remaining:
            raise ValueError(f"cannot cut {remaining} events into {n} non-empty sessions")
        sizes = np.full(n, remaining // n, dtype=np.int64)
        sizes[: remaining % n] += 1
        bounds = boundary + np.concatenate([[0], np.cumsum(sizes)])
        return [Chunk(s, a, b) for s, (a, b) in enumerate(_ranges(bounds))]

    # ------------------------------------------------------------------ reports
    def describe(self) -> dict[str, Any]:
        """JSON-able summary: events, distinct IDs per field, positive rate, time span."""
        out: dict[str, Any] = {
            "name": self.name,
            "events": len(self),
            "order": self.order,
            "positive_rate": round(float(self.label.mean()), 6) if len(self) else None,
            "has_rating": self.rating is not None,
            "distinct_ids": {k: v.n_ids for k, v in self.ids.items()},
        }
        if self.has_timestamps and len(self):
            out["time_span"] = [int(self.time.min()), int(self.time.max())]
        return out

    def __repr__(self) -> str:
        return (
            f"EventStream({self.name!r}, events={len(self)}, users={self.ids['user'].n_ids}, "
            f"items={self.ids['item'].n_ids}, order={self.order!r})"
        )
