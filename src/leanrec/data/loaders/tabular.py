"""Generic tables (CSV, TSV, Parquet) with a header, mapped to interactions by column name.

For data that comes in no recommender-specific format: say which column holds the user, the
item and optionally the rating and the timestamp, e.g.
``load_table("events.csv", {"user": "customer_id", "item": "sku", "timestamp": "ts"})``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
        :class:`Interactions` whose raw IDs are integers when every ID of the column is one
        written plainly, else the text as written (``007`` and ``7`` stay two IDs; Parquet
        columns keep their type), float32 ratings, int64 timestamps (numbers are truncated;
        date/time text becomes Unix seconds).

    Raises:
        DataError: missing file; columns absent from the file (the message lists the missing
            and the found columns); wrong field count; empty user/item; non-numeric rating or
            unparseable timestamp (line, or row for Parquet, named); no rows.
    """
    _check_roles(columns)
    p = require_file(path, "table file")
    is_parquet = p.suffix.lower() in _PARQUET_SUFFIXES
    wanted = list(dict.fromkeys(columns.values()))
    separator = "" if is_parquet else (sep if sep is not None else _guess_separator(p))
    found = _parquet_columns(p) if is_parquet else _header_columns(p, separator)
    check_columns_named_once(found, wanted, p, line=None if is_parquet else 1)
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; columns found: {found}"
            + ("" if is_parquet else f" (separator {separator!r})"),
            path=p,
            line=None if is_parquet else 1,
        )
    ids = [columns["user"], columns["item"]]
    if is_parquet:
        frame = pd.read_parquet(p, columns=wanted)
    else:
        frame = _read_text(p, separator, wanted, ids)
    frame = frame[wanted]
    if len(frame) == 0:
        raise DataError("empty dataset: no data rows", path=p)

    locate = _RowLocator(p, separator, is_parquet)
    for role in ("user", "item"):
        missing_id = frame[columns[role]].isna().to_numpy()
        if missing_id.any():
            row = int(np.argmax(missing_id))
            raise DataError(
                f"empty {role} column {columns[role]!r}{locate.note(row)}", **locate(row)
            )
    ratings = _ratings(frame, columns["rating"], locate) if "rating" in columns else None
    timestamps = (
        _timestamps(frame, columns["timestamp"], locate) if "timestamp" in columns else None
    )
    return Interactions.from_raw(
        frame[columns["user"]].to_numpy(),
        frame[columns["item"]].to_numpy(),
        ratings=ratings,
        timestamps=timestamps,
        name=name or p.stem,
    )


def _check_roles(columns: Mapping[str, str]) -> None:
    """``ValueError`` for an unknown role or a missing ``user`` / ``item`` role."""
    unknown = sorted(set(columns) - set(TABLE_ROLES))
    if unknown:
        raise ValueError(f"unknown column roles {unknown}; expected some of {list(TABLE_ROLES)}")
    for role in ("user", "item"):
        if role not in columns:
            raise ValueError(f"columns must map the {role!r} role to a column name")


def _parquet_columns(path: Path) -> list[str]:
    """Column names of a Parquet file's schema (pyarrow imported here: optional)."""
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"cannot read Parquet file: {exc}", path=path) from None


def _header_columns(path: Path, separator: str) -> list[str]:
    """Column names of a text table's header line (stripped)."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = next(csv.reader(handle, delimiter=separator), [])
    found = [h.strip() for h in header]
    if any("\ufffd" in h for h in found):  # a header that is not UTF-8 (UTF-16, Latin-1 ...)
        raise_on_bad_encoding(path)
    if not found:
        raise DataError("empty file: no header line", path=path, line=1)
    return found


def _read_text(
    path: Path, separator: str, wanted: list[str], id_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Every column of a text table (empty cells of ``wanted`` as NaN); a row with another
    field count than the header raises :class:`DataError` naming its line. The ``id_columns``
    are read as text, then as integers when every ID is one written plainly
    (:func:`_integer_ids`): ``007`` and ``7`` stay two IDs."""
    try:
        # All columns are read (no usecols): only then does the C engine reject rows with
        # too many fields instead of silently truncating them.
        frame = pd.read_csv(
            path,
            sep=separator,
            engine="c",
            encoding="utf-8-sig",  # a byte-order mark is not part of the first column's name
            keep_default_na=False,
            na_values={c: [""] for c in wanted},
            dtype={c: str for c in id_columns},
        )
    except UnicodeDecodeError:
        raise_on_bad_encoding(path)
        raise
    except (ValueError, pd.errors.ParserError) as exc:
        _raise_on_bad_field_count(path, separator)
        raise DataError(f"cannot parse table: {exc}", path=path) from None
    # Short rows are padded with NaN by pandas: look for them only when NaN occurs.
    if frame.isna().any().any():
        _raise_on_bad_field_count(path, separator)
    for column in dict.fromkeys(id_columns):
        frame[column] = _integer_ids(frame[column])
    return frame


def _integer_ids(texts: pd.Series) -> pd.Series:
    """``texts`` (an ID column read as text) as int64 when every ID is an integer written
    plainly (``0|-?[1-9][0-9]*``, spaces around allowed), else as the text itself: reading
    ``007``, ``07`` and ``7`` as integers would merge three IDs into one. Empty cells (NaN)
    are left for the caller to report."""
    present = texts.dropna()
    stripped = present.str.strip()
    if len(present) and not stripped.str.fullmatch(r"0|-?[1-9][0-9]*").all():
        return texts
    try:
        numbers = stripped.astype(np.int64)
    except (OverflowError, ValueError):  # past int64: the text is the ID
        return texts
    if len(present) == len(texts):
        return numbers
    out = texts.astype(object)
    out[present.index] = numbers
    return out


def check_columns_named_once(
    header: Sequence[str], wanted: Sequence[str], path: Path, line: int | None = 1
) -> None:
    """:class:`DataError` when the header names a ``wanted`` column more than once (pandas and
    ``csv`` readers would silently read one of them)."""
    for column in wanted:
        if header.count(column) > 1:
            raise DataError(
                f"column {column!r} appears {header.count(column)} times in the header; rename one",
                path=path,
                line=line,
            )


def raise_on_bad_encoding(path: Path) -> None:
    """Raise :class:`DataError` naming the first line of ``path`` that is not UTF-8 text
    (call it where decoding the file failed)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                byte = line[error.start]
                column = len(line[: error.start].decode("utf-8", errors="replace")) + 1
                raise DataError(
                    f"not UTF-8 text: byte 0x{byte:02x} at column {column} cannot be "
                    "decoded; save the file as UTF-8",
                    path=path,
                    line=number,
                ) from None


def line_of_row(path: str | Path, row: int, sep: str | None = None) -> int | None:
    """1-based line of data row ``row`` (0-based, after the header) of a text table read by
    :func:`load_table`, for error messages; None for a Parquet file (it has no lines)."""
    p = Path(path)
    if p.suffix.lower() in _PARQUET_SUFFIXES:
        return None
    return _data_line_of_row(p, sep if sep is not None else _guess_separator(p), row)


class _RowLocator:
    """Where data row ``row`` (0-based) of a table is, for error messages: its line in a text
    file (:meth:`__call__`, the keyword arguments of :class:`DataError`), its row number in a
    Parquet file (:meth:`note`, text appended to the message)."""

    def __init__(self, path: Path, separator: str, is_parquet: bool) -> None:
        self.path = path
        self.separator = separator
        self.is_parquet = is_parquet

    def __call__(self, row: int) -> dict[str, Any]:
        if self.is_parquet:
            return {"path": self.path, "line": None}
        return {"path": self.path, "line": _data_line_of_row(self.path, self.separator, row)}

    def note(self, row: int) -> str:
        return f" (row {row})" if self.is_parquet else ""


def _ratings(frame: pd.DataFrame, column: str, locate: _RowLocator) -> np.ndarray:
    """Float32 ratings ``(n,)``; a non-numeric value raises :class:`DataError`."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad_rating = values.isna().to_numpy()
    if bad_rating.any():
        row = int(np.argmax(bad_rating))
        value = frame[column].iloc[row]
        shown = "an empty cell" if pd.isna(value) else repr(value)
        raise DataError(
            f"rating column {column!r} is not a number: {shown}" + locate.note(row),
            **locate(row),
        )
    return values.to_numpy(dtype=np.float32)


def _timestamps(frame: pd.DataFrame, column: str, locate: _RowLocator) -> np.ndarray:
    """Int64 timestamps ``(n,)``: numbers truncated, date/time text as Unix seconds; a value
    that is neither raises :class:`DataError`."""
    raw_time = frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw_time) or pd.api.types.is_numeric_dtype(raw_time):
        parsed = raw_time
    else:
        # Text: numbers among which a bad value made the column text, or date/time text.
        # Whichever reading fits more values is the column's, so the value named is the bad one.
        as_number = pd.to_numeric(raw_time, errors="coerce")
        as_date = pd.to_datetime(raw_time, errors="coerce", format="mixed", utc=True)
        parsed = as_number if as_number.notna().sum() >= as_date.notna().sum() else as_date
    bad_time = parsed.isna().to_numpy()
    if bad_time.any():
        row = int(np.argmax(bad_time))
        raise DataError(
            f"timestamp column {column!r} is not a number or a date/time: "
            f"{raw_time.iloc[row]!r}" + locate.note(row),
            **locate(row),
        )
    if pd.api.types.is_numeric_dtype(parsed):
        return parsed.to_numpy(dtype=np.float64).astype(np.int64)
    return _unix_seconds(parsed)
