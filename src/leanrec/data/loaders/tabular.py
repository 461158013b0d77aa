"""Generic tables (CSV, TSV, Parquet) with a header, mapped to interactions by column name.

For data that comes in no recommender-specific format: say which column holds the user, the
item and optionally the rating and the timestamp, e.g.
``load_table("events.csv", {"user": "customer_id", "item": "sku", "timestamp": "ts"})``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError, require_file
from leanrec.data.interactions import Interactions

TABLE_ROLES: tuple[str, ...] = ("user", "item", "rating", "timestamp")
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})


def _raise_on_bad_field_count(path: Path, separator: str) -> None:
    """Raise :class:`DataError` naming the first line whose field count differs, if any."""
    bad = _first_bad_field_count(path, separator)
    if bad is not None:
        line, expected, got = bad
        raise DataError(
            f"expected {expected} fields separated by {separator!r}, found {got}",
            path=path,
            line=line,
        )


def _guess_separator(path: Path) -> str:
    """TAB for ``.tsv``/``.tab``, comma for ``.csv``, else whichever occurs in the header line."""
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    with path.open("rb") as handle:
        header = handle.readline()
    for candidate in (b"\t", b",", b";", b"|"):
        if candidate in header:
            return candidate.decode()
    return ","


def _data_line_of_row(path: Path, sep: str, row: int) -> int:
    """1-based line where data row ``row`` (0-based, after the header) starts (error path).

    Blank lines are skipped like pandas does; quoted fields may span lines.
    """
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=sep)
        data_row = -1  # the header
        line = 1
        for record in reader:
            if record:
                if data_row == row:
                    return line
                data_row += 1
            line = reader.line_num + 1
    return line


def _first_bad_field_count(path: Path, sep: str) -> tuple[int, int, int] | None:
    """``(line, expected, found)`` for the first record whose field count differs from the
    header's (error path; a Python loop over records is fine here)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=sep)
        expected = -1
        line = 1
        for record in reader:
            if record:
                if expected < 0:
                    expected = len(record)
                elif len(record) != expected:
                    return line, expected, len(record)
            line = reader.line_num + 1
    return None


def _unix_seconds(times: pd.Series) -> np.ndarray:
    """Datetimes (naive = UTC, or tz-aware) as int64 Unix seconds, shape ``(n,)``."""
    if times.dt.tz is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.astype("datetime64[s]").astype(np.int64).to_numpy()


def load_table(
    path: str | Path,
    columns: Mapping[str, str],
    sep: str | None = None,
    name: str | None = None,
) -> Interactions:
    """Load interactions from a CSV/TSV (with header) or Parquet file.

    Args:
        path: the file; ``.parquet``/``.pq`` is read as Parquet, anything else as text.
        columns: role -> column name, with roles ``"user"`` and ``"item"`` (required) and
            ``"rating"``, ``"timestamp"`` (optional).
        sep: text separator; ``None`` picks TAB for ``.tsv``, comma for ``.csv``, else sniffs
            the header line.
        name: dataset name (default: the file stem).

    Returns:
        :class:`Interactions` whose raw IDs are the column values as pandas reads them (ints
        stay ints, anything else is text), float32 ratings, int64 timestamps (numbers are
        truncated; date/time text becomes Unix seconds).

    Raises:
        DataError: missing file; columns absent from the file (the message lists the missing
            and the found columns); wrong field count; empty user/item; non-numeric rating or
            unparseable timestamp (line, or row for Parquet, named); no rows.
    """
    unknown = sorted(set(columns) - set(TABLE_ROLES))
    if unknown:
        raise ValueError(f"unknown column roles {unknown}; expected some of {list(TABLE_ROLES)}")
    for role in ("user", "item"):
        if role not in columns:
            raise ValueError(f"columns must map the {role!r} role to a column name")
    p = require_file(path, "table file")
    is_parquet = p.suffix.lower() in _PARQUET_SUFFIXES
    wanted = list(dict.fromkeys(columns.values()))

    if is_parquet:
        try:
            import pyarrow.parquet as pq

            found = list(pq.read_schema(p).names)
        except Exception as exc:  # pyarrow raises several types for unreadable files
            raise DataError(f"cannot read Parquet file: {exc}", path=p) from None
        separator = ""
    else:
        separator = sep if sep is not None else _guess_separator(p)
        with p.open(encoding="utf-8", errors="replace", newline="") as handle:
            header = next(csv.reader(handle, delimiter=separator), [])
        found = [h.strip() for h in header]
        if not found:
            raise DataError("empty file: no header line", path=p, line=1)

    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; columns found: {found}"
            + ("" if is_parquet else f" (separator {separator!r})"),
            path=p,
            line=None if is_parquet else 1,
        )

    def where(row: int) -> dict[str, int | None]:
        if is_parquet:
            return {"line": None}
        return {"line": _data_line_of_row(p, separator, row)}

    def row_note(row: int) -> str:
        return f" (row {row})" if is_parquet else ""

    if is_parquet:
        frame = pd.read_parquet(p, columns=wanted)
    else:
        try:
            # All columns are read (no usecols): only then does the C engine reject rows with
            # too many fields instead of silently truncating them.
            frame = pd.read_csv(
                p,
                sep=separator,
                engine="c",
                keep_default_na=False,
                na_values={c: [""] for c in wanted},
            )
        except (ValueError, pd.errors.ParserError) as exc:
            _raise_on_bad_field_count(p, separator)
            raise DataError(f"cannot parse table: {exc}", path=p) from None
        # Short rows are padded with NaN by pandas: look for them only when NaN occurs.
        if frame.isna().any().any():
            _raise_on_bad_field_count(p, separator)
    frame = frame[wanted]
    if len(frame) == 0:
        raise DataError("empty dataset: no data rows", path=p)

    for role in ("user", "item"):
        missing_id = frame[columns[role]].isna().to_numpy()
        if missing_id.any():
            row = int(np.argmax(missing_id))
            raise DataError(
                f"empty {role} column {columns[role]!r}{row_note(row)}", path=p, **where(row)
            )

    ratings = None
    if "rating" in columns:
        column = columns["rating"]
        values = pd.to_numeric(frame[column], errors="coerce")
        bad_rating = values.isna().to_numpy()
        if bad_rating.any():
            row = int(np.argmax(bad_rating))
            raise DataError(
                f"rating column {column!r} is not a number: {frame[column].iloc[row]!r}"
                + row_note(row),
                path=p,
                **where(row),
            )
        ratings = values.to_numpy(dtype=np.float32)

    timestamps = None
    if "timestamp" in columns:
        column = columns["timestamp"]
        raw_time = frame[column]
        if pd.api.types.is_datetime64_any_dtype(raw_time) or pd.api.types.is_numeric_dtype(
            raw_time
        ):
            parsed = raw_time
        else:
            parsed = pd.to_datetime(raw_time, errors="coerce", format="mixed", utc=True)
        bad_time = parsed.isna().to_numpy()
        if bad_time.any():
            row = int(np.argmax(bad_time))
            raise DataError(
                f"timestamp column {column!r} is not a number or a date/time: "
                f"{raw_time.iloc[row]!r}" + row_note(row),
                path=p,
                **where(row),
            )
        if pd.api.types.is_numeric_dtype(parsed):
            timestamps = parsed.to_numpy(dtype=np.float64).astype(np.int64)
        else:
            timestamps = _unix_seconds(parsed)

    return Interactions.from_raw(
        frame[columns["user"]].to_numpy(),
        frame[columns["item"]].to_numpy(),
        ratings=ratings,
        timestamps=timestamps,
        name=name or p.stem,
    )
