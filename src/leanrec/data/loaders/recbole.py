"""RecBole atomic ``.inter`` files.

A TAB-separated table whose header names every column as ``name:type`` with ``type`` one of
``token``, ``token_seq``, ``float``, ``float_seq`` (e.g. ``user_id:token  item_id:token
rating:float  timestamp:float``). Tokens are kept as strings, exactly as RecBole treats them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders._parsing import check_field_counts, check_utf8, index_lines, read_bytes

RECBOLE_TYPES: frozenset[str] = frozenset({"token", "token_seq", "float", "float_seq"})


def parse_recbole_header(header_line: str, path: Path) -> dict[str, str]:
    """``{"user_id": "token", ...}`` from the header line, in column order.

    Raises:
        DataError (line 1): a column without ``:type``, an unknown type, or a repeated name.
    """
    fields: dict[str, str] = {}
    for token in header_line.rstrip("\r\n").split("\t"):
        name, colon, kind = token.rpartition(":")
        if not colon or not name:
            raise DataError(
                f"header column {token!r} has no type: RecBole headers are 'name:type' "
                f"(types {', '.join(sorted(RECBOLE_TYPES))}), TAB-separated",
                path=path,
                line=1,
            )
        if kind not in RECBOLE_TYPES:
            raise DataError(
                f"header column {token!r} has unknown type {kind!r} "
                f"(expected one of {', '.join(sorted(RECBOLE_TYPES))})",
                path=path,
                line=1,
            )
        if any(ch.isspace() for ch in name):
            raise DataError(
                f"header column {token!r} contains whitespace: columns must be TAB-separated",
                path=path,
                line=1,
            )
        if name in fields:
            raise DataError(f"header names column {name!r} twice", path=path, line=1)
        fields[name] = kind
    return fields


def load_recbole_atomic(
    path: str | Path,
    user_field: str = "user_id",
    item_field: str = "item_id",
    rating_field: str | None = "rating",
    timestamp_field: str | None = "timestamp",
    name: str | None = None,
) -> Interactions:
    """Load a RecBole ``.inter`` file into :class:`Interactions`.

    Args:
        path: the ``.inter`` file.
        user_field / item_field: header names of the user and item columns (required, scalar
            types ``token`` or ``float``).
        rating_field / timestamp_field: header names of the optional rating / time columns;
            used when the header has them (must be ``float``), ignored otherwise; ``None`` to
            ignore them in any case.
        name: dataset name (default: the file stem).

    Returns:
        :class:`Interactions` with string raw IDs (``float`` ID columns are kept as their text),
        float32 ratings and int64 timestamps (fractions truncated) when present.

    Raises:
        DataError: missing file; a header without ``:type`` tokens or without the user/item
            fields (the message lists the fields found); a line with the wrong number of fields
            or a non-numeric rating/timestamp (line named); no data rows.
    """
    p, raw = read_bytes(path, "RecBole .inter file")
    fields, optional = _checked_header(
        raw, p, {"user": user_field, "item": item_field}, rating_field, timestamp_field
    )
    check_utf8(raw, p)
    index = index_lines(raw, b"\t")
    if len(index.line_numbers) <= 1:
        raise DataError("empty dataset: header but no data rows", path=p)
    check_field_counts(index, len(fields), p, "TAB", first_row=1)
    names = list(fields)
    frame = pd.read_csv(
        io.BytesIO(raw),
        sep="\t",
        header=None,
        skiprows=1,
        names=names,
        usecols=[user_field, item_field, *optional.values()],
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        quoting=csv.QUOTE_NONE,
        engine="c",
    )
    row_lines = index.line_numbers[1:]
    for role, field_name in (("user", user_field), ("item", item_field)):
        empty = (frame[field_name].str.len() == 0).to_numpy()
        if empty.any():
            row = int(np.argmax(empty))
            raise DataError(f"empty {role} field {field_name!r}", path=p, line=int(row_lines[row]))
    numeric = _numeric_fields(frame, optional, row_lines, p)
    return Interactions.from_raw(
        frame[user_field].to_numpy(dtype=object).astype(str),
        frame[item_field].to_numpy(dtype=object).astype(str),
        ratings=numeric.get("rating"),
        timestamps=None if "timestamp" not in numeric else numeric["timestamp"].astype(np.int64),
        name=name or p.stem,
    )


def _checked_header(
    raw: bytes,
    path: Path,
    id_fields: dict[str, str],
    rating_field: str | None,
    timestamp_field: str | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The header's ``{field: type}`` and the optional fields present (``{"rating" |
    "timestamp": field}``), after checking the ID fields (``{"user" | "item": field}``) exist
    and are scalar and the optional ones are ``float``."""
    header_end = raw.find(b"\n")
    header_bytes = raw if header_end < 0 else raw[:header_end]
    if not header_bytes.strip():
        raise DataError("empty file: no RecBole header", path=path, line=1)
    fields = parse_recbole_header(header_bytes.decode("utf-8", errors="replace"), path)
    found = ", ".join(f"{k}:{v}" for k, v in fields.items())
    for role, field_name in id_fields.items():
        if field_name not in fields:
            raise DataError(
                f"header has no {role} field {field_name!r}; fields found: {found}",
                path=path,
                line=1,
            )
        if fields[field_name].endswith("_seq"):
            raise DataError(
                f"{role} field {field_name!r} must be a scalar type, not {fields[field_name]}",
                path=path,
                line=1,
            )
    optional: dict[str, str] = {}
    for role, optional_name in (("rating", rating_field), ("timestamp", timestamp_field)):
        if optional_name is not None and optional_name in fields:
            if fields[optional_name] != "float":
                raise DataError(
                    f"{role} field {optional_name!r} must have type float, "
                    f"not {fields[optional_name]}",
                    path=path,
                    line=1,
                )
            optional[role] = optional_name
    return fields, optional


def _numeric_fields(
    frame: pd.DataFrame, optional: dict[str, str], row_lines: np.ndarray, path: Path
) -> dict[str, np.ndarray]:
    """Float64 values ``(n,)`` of each optional field by role; a non-numeric value raises
    :class:`DataError` naming its line (``row_lines``: file line of each data row)."""
    numeric: dict[str, np.ndarray] = {}
    for role, field_name in optional.items():
        values = pd.to_numeric(frame[field_name], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(
                f"{role} field {field_name!r} is not a number: {frame[field_name].iloc[row]!r}",
                path=path,
                line=int(row_lines[row]),
            )
        numeric[role] = values.to_numpy(dtype=np.float64)
    return numeric
