"""Click-through-rate tables (Criteo DAC, Avazu) as dense + sparse feature matrices.

CTR data is not user-item interactions, so these loaders return a :class:`CTRTable`:
labels, a float matrix of numeric features and an int matrix of categorical features, each
categorical field encoded to its own contiguous range ``1..V`` with 0 reserved for a missing or
unknown value. Vocabularies fit on one file (the training file) are kept in the table, so other
files (validation / test) can be encoded with the same indices via :meth:`CTRTable.encode_like`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError
from leanrec.data.loaders._parsing import check_field_counts, check_utf8, index_lines, read_bytes

CRITEO_DENSE: tuple[str, ...] = tuple(f"I{i}" for i in range(1, 14))
CRITEO_SPARSE: tuple[str, ...] = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS: tuple[str, ...] = ("label", *CRITEO_DENSE, *CRITEO_SPARSE)
"""The 40 Criteo DAC columns: click label, 13 integer features, 26 hashed categorical ones."""

AVAZU_COLUMNS: tuple[str, ...] = (
    "id",
    "click",
    "hour",
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
)
"""The 24 Avazu columns (``id`` is a row ID and not used as a feature)."""

AVAZU_SPARSE: tuple[str, ...] = ("hour_of_day", "weekday", *AVAZU_COLUMNS[3:])
"""Avazu categorical fields: ``hour`` (YYMMDDHH) becomes hour of day and weekday, then C1..C21."""

CTRFormat = Literal["criteo", "avazu"]


@dataclass
class CTRTable:
    """A CTR dataset ready for embedding-based models (FM, DeepFM, DCN, ...).

    Attributes:
        labels: click label per row, shape ``(n,)``, float32 in {0, 1}.
        dense: numeric features, shape ``(n, n_dense)``, float32; missing -> 0, and
            ``sign(x) * log1p(|x|)`` applied when ``log_dense``. ``n_dense`` is 0 for Avazu.
        sparse: categorical features, shape ``(n, n_sparse)``, int64; column ``j`` holds indices
            in ``[0, vocab_sizes[j])`` where 0 means missing or unknown (unseen when the
            vocabulary was fit, or rarer than ``min_count``).
        dense_names / sparse_names: field names of the columns of ``dense`` / ``sparse``.
        vocabularies: per sparse field, the known raw values (text); value ``vocabularies[f][k]``
            is encoded as ``k + 1``.
        log_dense / min_count: the encoding settings, reused by :meth:`encode_like`.
        source_format: ``"criteo"`` or ``"avazu"``; tells :meth:`encode_like` how to parse.
        name: dataset name, for messages.
    """

    labels: np.ndarray
    dense: np.ndarray
    sparse: np.ndarray
    dense_names: tuple[str, ...]
    sparse_names: tuple[str, ...]
    vocabularies: dict[str, np.ndarray]
    log_dense: bool
    min_count: int
    source_format: CTRFormat
    name: str = "ctr"

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_dense(self) -> int:
        return self.dense.shape[1]

    @property
    def n_sparse(self) -> int:
        return self.sparse.shape[1]

    @property
    def field_names(self) -> tuple[str, ...]:
        """All feature names: dense fields first, then sparse fields."""
        return (*self.dense_names, *self.sparse_names)

    @property
    def vocab_sizes(self) -> tuple[int, ...]:
        """Embedding table size per sparse field (known values + 1 for missing/unknown)."""
        return tuple(len(self.vocabularies[f]) + 1 for f in self.sparse_names)

    def encode_like(self, path: str | Path, header: bool | None = None) -> CTRTable:
        """Load another file of the same format, encoded with this table's vocabularies.

        Use it for validation/test files: categorical values not seen here map to 0, and the
        dense transform is the same, so a model fit on this table can score the result.
        """
        if self.source_format == "criteo":
            return load_criteo(path, like=self)
        return load_avazu(path, header=header, like=self)

    def __repr__(self) -> str:
        return (
            f"CTRTable({self.name!r}, n={len(self)}, dense={self.n_dense}, "
            f"sparse={self.n_sparse}, positive_rate={float(self.labels.mean()):.4f})"
        )


# ---------------------------------------------------------------------------------- reading
def _first_line(raw: bytes) -> bytes:
    return raw.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")


def _read_text_columns(
    raw: bytes, path: Path, sep: str, names: tuple[str, ...], has_header: bool
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every column as text (empty string for an empty field) plus each row's 1-based line.

    Field counts are checked per line first (vectorised), so short and long rows are reported
    with their line number instead of being padded or raising a bare pandas error.
    """
    check_utf8(raw, path)
    index = index_lines(raw, sep.encode())
    first_row = 1 if has_header else 0
    if len(index.line_numbers) <= first_row:
        raise DataError("empty dataset: no data rows", path=path)
    sep_name = "TAB" if sep == "\t" else repr(sep)
    check_field_counts(index, len(names), path, sep_name, first_row=first_row)
    frame = pd.read_csv(
        io.BytesIO(raw),
        sep=sep,
        header=None,
        skiprows=int(index.line_numbers[0]) if has_header else None,
        names=list(names),
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )
    return frame, index.line_numbers[first_row:]


def _check_header(raw: bytes, path: Path, sep: str, expected: tuple[str, ...]) -> None:
    found = tuple(_first_line(raw).decode("utf-8", errors="replace").split(sep))
    if found != expected:
        missing = [c for c in expected if c not in found]
        unexpected = [c for c in found if c not in expected]
        detail = f"missing {missing}" if missing else ""
        if unexpected:
            detail += ("; " if detail else "") + f"unexpected {unexpected}"
        if not detail:
            detail = "columns out of order"
        raise DataError(
            f"header does not match the expected {len(expected)} columns "
            f"({', '.join(expected[:4])}, ...): {detail}",
            path=path,
            line=int(index_lines(raw, sep.encode()).line_numbers[0]),
        )


def _numeric_column(
    text: pd.Series, column: str, path: Path, row_lines: np.ndarray, allow_missing: bool
) -> np.ndarray:
    """``text`` parsed as float64, shape ``(n,)``; NaN for empty fields when ``allow_missing``."""
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    empty = (text.str.len() == 0).to_numpy()
    bad = np.isnan(values) & ~(empty & allow_missing)
    if bad.any():
        row = int(np.argmax(bad))
        what = "is empty" if empty[row] else f"is not a number: {text.iloc[row]!r}"
        raise DataError(f"field {column!r} {what}", path=path, line=int(row_lines[row]))
    return values


def _labels(text: pd.Series, column: str, path: Path, row_lines: np.ndarray) -> np.ndarray:
    values = _numeric_column(text, column, path, row_lines, allow_missing=False)
    bad = (values != 0) & (values != 1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"label {column!r} must be 0 or 1, found {text.iloc[row]!r}",
            path=path,
            line=int(row_lines[row]),
        )
    return values.astype(np.float32)


def _fit_vocabularies(
    frame: pd.DataFrame, fields: tuple[str, ...], min_count: int
) -> dict[str, np.ndarray]:
    """Per field, the sorted non-empty values seen at least ``min_count`` times."""
    vocabularies: dict[str, np.ndarray] = {}
    for name in fields:
        counts = frame[name].value_counts()
        keep = counts.index[(counts.to_numpy() >= min_count) & (counts.index.str.len() > 0)]
        vocabularies[name] = np.sort(np.asarray(keep, dtype=str))
    return vocabularies


def _encode_sparse(
    frame: pd.DataFrame, fields: tuple[str, ...], vocabularies: dict[str, np.ndarray]
) -> np.ndarray:
    """Indices per field, shape ``(n, len(fields))``: position in the vocabulary + 1, or 0 for
    a missing or unknown value."""
    out = np.zeros((len(frame), len(fields)), dtype=np.int64)
    for j, name in enumerate(fields):
        out[:, j] = pd.Index(vocabularies[name]).get_indexer(frame[name].astype(str)) + 1
    return out


def _transform_dense(values: np.ndarray, log_dense: bool) -> np.ndarray:
    """Missing (NaN) -> 0, then optionally ``sign(x) * log1p(|x|)``; float32, same shape."""
    filled = np.nan_to_num(values, nan=0.0)
    if log_dense:
        filled = np.sign(filled) * np.log1p(np.abs(filled))
    return filled.astype(np.float32)


def _build_table(
    frame: pd.DataFrame,
    labels: np.ndarray,
    dense: np.ndarray,
    sparse_fields: tuple[str, ...],
    dense_fields: tuple[str, ...],
    like: CTRTable | None,
    log_dense: bool,
    min_count: int,
    source_format: CTRFormat,
    name: str,
) -> CTRTable:
    if like is not None:
        if like.source_format != source_format:
            raise ValueError(
                f"cannot encode a {source_format} file like a {like.source_format} table"
            )
        vocabularies, log_dense, min_count = like.vocabularies, like.log_dense, like.min_count
    else:
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        vocabularies = _fit_vocabularies(frame, sparse_fields, min_count)
    return CTRTable(
        labels=labels,
        dense=_transform_dense(dense, log_dense),
        sparse=_encode_sparse(frame, sparse_fields, vocabularies),
        dense_names=dense_fields,
        sparse_names=sparse_fields,
        vocabularies=vocabularies,
        log_dense=log_dense,
        min_count=min_count,
        source_format=source_format,
        name=name,
    )


# ---------------------------------------------------------------------------------- loaders
def load_criteo(
    path: str | Path,
    like: CTRTable | None = None,
    log_dense: bool = True,
    min_count: int = 1,
    name: str | None = None,
) -> CTRTable:
    """Load Criteo DAC rows: ``label``, ``I1..I13`` (numeric), ``C1..C26`` (hashed categories).

    Two layouts are detected from the first line: comma-separated with the header
    ``label,I1,...,C26`` (DeepCTR's ``criteo_sample.txt``) or the original TAB-separated
    layout without header (Kaggle ``train.txt`` and its subsets). Empty fields are missing.

    Args:
        path: the file.
        like: a table fit on training data; its vocabularies and settings are reused (unknown
            categories -> 0) instead of fitting new ones.
        log_dense: apply ``sign(x) * log1p(|x|)`` to the integer features (counts are
            heavy-tailed; some, like I2, can be negative).
        min_count: categories seen fewer times than this while fitting map to 0.
        name: dataset name (default: the file stem).

    Returns:
        :class:`CTRTable` with ``dense`` of shape ``(n, 13)`` and ``sparse`` of shape ``(n, 26)``.

    Raises:
        DataError: missing file, wrong header, a row without 40 fields, a non-numeric integer
            feature or label (the line is named), or no rows.
    """
    p, raw = read_bytes(path, "Criteo file")
    first = _first_line(raw)
    if not first:
        raise DataError("empty dataset: no data rows", path=p)
    has_header = first.startswith(b"label")
    if has_header:
        sep = "," if b"," in first else "\t"
        _check_header(raw, p, sep, CRITEO_COLUMNS)
    else:
        sep = "\t" if b"\t" in first else ","
    frame, row_lines = _read_text_columns(raw, p, sep, CRITEO_COLUMNS, has_header)
    labels = _labels(frame["label"], "label", p, row_lines)
    dense = np.stack(
        [_numeric_column(frame[c], c, p, row_lines, allow_missing=True) for c in CRITEO_DENSE],
        axis=1,
    )
    return _build_table(
        frame,
        labels,
        dense,
        CRITEO_SPARSE,
        CRITEO_DENSE,
        like,
        log_dense,
        min_count,
        "criteo",
        name or p.stem,
    )


def load_avazu(
    path: str | Path,
    header: bool | None = None,
    like: CTRTable | None = None,
    min_count: int = 1,
    name: str | None = None,
) -> CTRTable:
    """Load Avazu rows (24 comma-separated columns: ``id, click, hour, C1, banner_pos, ...``).

    All features are categorical. ``hour`` (``YYMMDDHH``) is replaced by two fields,
    ``hour_of_day`` and ``weekday``, which generalise across days; ``id`` is dropped.

    Args:
        path: the file.
        header: whether the first line is the header; ``None`` detects it (first field ``id``).
            The Avazu-9k dev/test files have no header.
        like: a table fit on training data whose vocabularies are reused (unknown -> 0).
        min_count: categories seen fewer times than this while fitting map to 0.
        name: dataset name (default: the file stem).

    Returns:
        :class:`CTRTable` with ``dense`` of shape ``(n, 0)`` and ``sparse`` of shape ``(n, 23)``
        (:data:`AVAZU_SPARSE`); ``labels`` is the ``click`` column.

    Raises:
        DataError: missing file, wrong header, a row without 24 fields, a bad click label or
            ``hour`` (line named), or no rows.
    """
    p, raw = read_bytes(path, "Avazu file")
    first = _first_line(raw)
    if not first:
        raise DataError("empty dataset: no data rows", path=p)
    if header is None:
        header = first.split(b",", 1)[0] == b"id"
    if header:
        _check_header(raw, p, ",", AVAZU_COLUMNS)
    frame, row_lines = _read_text_columns(raw, p, ",", AVAZU_COLUMNS, header)
    labels = _labels(frame["click"], "click", p, row_lines)
    hour = _numeric_column(frame["hour"], "hour", p, row_lines, allow_missing=False)
    dates = pd.to_datetime(
        pd.Series(hour // 100, dtype=np.int64).astype(str), format="%y%m%d", errors="coerce"
    )
    bad = dates.isna().to_numpy() | (hour % 100 > 23)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"field 'hour' is not a YYMMDDHH time: {frame['hour'].iloc[row]!r}",
            path=p,
            line=int(row_lines[row]),
        )
    frame["hour_of_day"] = (hour % 100).astype(np.int64).astype(str)
    frame["weekday"] = dates.dt.day_of_week.astype(str).to_numpy()
    return _build_table(
        frame,
        labels,
        np.zeros((len(frame), 0), dtype=np.float64),
        AVAZU_SPARSE,
        (),
        like,
        False,
        min_count,
        "avazu",
        name or p.stem,
    )
