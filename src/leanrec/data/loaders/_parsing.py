"""Shared, vectorised text-parsing helpers for the loaders (private).

Every loader follows the same contract: parse the whole file in one C/numpy pass, and when
that fails, locate the first offending line *after the fact* so the :class:`DataError` can name
the file and the 1-based line. Python-level loops only ever run on the error path.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError, require_file

# ASCII whitespace as understood by ``bytes.split()``: \t \n \v \f \r and space.
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True
_POW10 = 10 ** np.arange(19, dtype=np.int64)
_MAX_DIGITS = 18  # 10**18 still fits in int64

# Byte used to stand in for a multi-character separator such as "::" so that pandas' C engine
# (single-character separators only) can parse the file.
_UNIT_SEPARATOR = b"\x1f"


def read_bytes(path: str | Path, what: str = "data file") -> tuple[Path, bytes]:
    """Return ``(path, contents)``; :class:`DataError` if the file is missing or unreadable."""
    p = require_file(path, what)
    try:
        return p, p.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what}: {exc}", path=p) from None


def line_number_at(raw: bytes, byte_offset: int) -> int:
    """1-based line number of the byte at ``byte_offset`` in ``raw``."""
    return raw.count(b"\n", 0, byte_offset) + 1


def line_text(raw: bytes, line_no: int, encoding: str = "utf-8", limit: int = 80) -> str:
    """Text of 1-based line ``line_no`` (without the line break), shortened to ``limit`` chars."""
    lines = raw.split(b"\n", line_no)
    text = lines[line_no - 1].rstrip(b"\r").decode(encoding, errors="replace")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class LineIndex:
    """Where the non-blank lines of a delimited file are, and how many fields each has.

    Attributes:
        line_numbers: 1-based line number of every non-blank line, shape ``(n_rows,)``. Row ``r``
            of a pandas frame read with ``skip_blank_lines=True`` and no quoting is on line
            ``line_numbers[r]`` (plus the header offset, if any).
        n_fields: number of fields (separators + 1) on each non-blank line, shape ``(n_rows,)``.
    """

    line_numbers: np.ndarray
    n_fields: np.ndarray


def index_lines(raw: bytes, sep: bytes) -> LineIndex:
    """Vectorised field count per line for a single-byte separator (no quoting).

    A line is blank when it is empty after removing a trailing ``\\r``; blank lines are skipped
    (pandas does the same), so the returned arrays line up with the rows pandas produces.
    """
    if len(sep) != 1:
        raise ValueError("index_lines needs a single-byte separator")
    buf = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    line_starts = np.concatenate(([0], newlines + 1))
    line_ends = np.concatenate((newlines, [len(buf)]))  # exclusive
    if len(raw) and raw.endswith(b"\n"):
        # The text after the final newline is not a line.
        line_starts, line_ends = line_starts[:-1], line_ends[:-1]
    elif not raw:
        line_starts, line_ends = line_starts[:0], line_ends[:0]
    lengths = line_ends - line_starts
    has_cr = np.zeros(len(lengths), dtype=bool)
    nonempty = lengths > 0
    has_cr[nonempty] = buf[line_ends[nonempty] - 1] == 13
    blank = (lengths - has_cr) == 0
    sep_positions = np.flatnonzero(buf == sep[0])
    sep_lines = np.searchsorted(newlines, sep_positions)  # 0-based line of each separator
    n_fields = np.bincount(sep_lines, minlength=len(lengths))[: len(lengths)] + 1
    keep = ~blank
    return LineIndex(
        line_numbers=np.flatnonzero(keep).astype(np.int64) + 1,
        n_fields=n_fields[keep].astype(np.int64),
    )


def check_field_counts(
    index: LineIndex, expected: int, path: Path, sep_name: str, first_row: int = 0
) -> None:
    """Raise :class:`DataError` at the first line (from row ``first_row``) with a wrong field count."""
    bad = np.flatnonzero(index.n_fields[first_row:] != expected)
    if len(bad):
        row = first_row + int(bad[0])
        raise DataError(
            f"expected {expected} fields separated by {sep_name}, found {index.n_fields[row]}",
            path=path,
            line=int(index.line_numbers[row]),
        )


def single_byte_separator(raw: bytes, sep: str, path: Path) -> tuple[bytes, bytes]:
    """Map a (possibly multi-character) separator to one byte pandas' C engine accepts.

    Returns ``(raw, sep_byte)``: for ``"::"`` every occurrence is replaced by ``\\x1f`` (checked
    to be absent from the file so the replacement cannot merge with real data).
    """
    sep_b = sep.encode()
    if len(sep_b) == 1:
        return raw, sep_b
    if _UNIT_SEPARATOR in raw:
        offset = raw.index(_UNIT_SEPARATOR)
        raise DataError(
            "unexpected control character \\x1f in a text data file",
            path=path,
            line=line_number_at(raw, offset),
        )
    return raw.replace(sep_b, _UNIT_SEPARATOR), _UNIT_SEPARATOR


def first_bad_numeric(
    frame: pd.DataFrame, columns: list[str], integer: bool
) -> tuple[int, str, str] | None:
    """First ``(row, column, text)`` whose text is not a number (or not an integer), else None.

    ``frame`` holds the raw text (``dtype=str``); used on the error path to find what pandas'
    typed parse choked on.
    """
    worst: tuple[int, str, str] | None = None
    for col in columns:
        text = frame[col].astype(str)
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna().to_numpy()
        if integer:
            numeric = values.to_numpy(dtype=np.float64, na_value=np.nan)
            bad |= ~np.isnan(numeric) & (np.floor(numeric) != numeric)
            bad |= ~text.str.fullmatch(r"\s*[+-]?\d+\s*").to_numpy(dtype=bool, na_value=False)
        rows = np.flatnonzero(bad)
        if len(rows) and (worst is None or rows[0] < worst[0]):
            worst = (int(rows[0]), col, str(text.iloc[rows[0]]))
    return worst


def read_numeric_delimited(
    raw: bytes,
    path: Path,
    sep: str,
    names: list[str],
    integer_columns: list[str],
    float_columns: list[str],
) -> pd.DataFrame:
    """Parse a header-less, quote-free, all-numeric delimited file with pandas' C engine.

    Checks every non-blank line has ``len(names)`` fields (vectorised), then parses with typed
    columns (int64 / float64). Any failure becomes a :class:`DataError` naming the 1-based line.
    An empty file (no non-blank line) raises ``DataError("... empty ...")``.

    Returns:
        A frame with one row per non-blank line and the columns ``names``.
    """
    data, sep_byte = single_byte_separator(raw, sep, path)
    index = index_lines(data, sep_byte)
    if len(index.line_numbers) == 0:
        raise DataError("empty dataset: no data lines", path=path)
    check_field_counts(index, len(names), path, repr(sep))
    dtypes: dict[str, type] = {c: np.int64 for c in integer_columns}
    dtypes.update({c: np.float64 for c in float_columns})
    common = dict(
        sep=sep_byte.decode("latin-1"),
        header=None,
        names=names,
        engine="c",
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
    )
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=dtypes, **common)  # type: ignore[call-overload]
    except (ValueError, pd.errors.ParserError) as exc:
        text = pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False, **common
        )  # type: ignore[call-overload]
        found = first_bad_numeric(text, integer_columns, integer=True)
        found_f = first_bad_numeric(text, float_columns, integer=False)
        if found is None or (found_f is not None and found_f[0] < found[0]):
            found = found_f
        if found is None:
            raise DataError(f"cannot parse file: {exc}", path=path) from None
        row, col, value = found
        kind = "an integer" if col in integer_columns else "a number"
        raise DataError(
            f"field {col!r} is not {kind}: {value!r}",
            path=path,
            line=int(index.line_numbers[row]),
        ) from None
    if len(frame) != len(index.line_numbers):  # pragma: no cover - defensive
        raise DataError("row count does not match line count (stray quotes?)", path=path)
    return frame


@dataclass
class IntTokens:
    """The whitespace-separated non-negative integers of a file, with their line structure.

    Attributes:
        values: every integer token in file order, shape ``(n_tokens,)``, int64.
        line_index: 0-based line of each token, shape ``(n_tokens,)``, int64, non-decreasing.
        line_first: True for the first token of each line, shape ``(n_tokens,)``.
    """

    values: np.ndarray
    line_index: np.ndarray
    line_first: np.ndarray

    @property
    def line_owner(self) -> np.ndarray:
        """For each token, the position (among first tokens) of its line's first token."""
        return np.cumsum(self.line_first) - 1

    def tokens_per_line(self) -> np.ndarray:
        """Number of tokens on each non-blank line, in file order, shape ``(n_lines,)``."""
        return np.bincount(self.line_owner)


def tokenize_int_lines(raw: bytes, path: Path) -> IntTokens:
    """Parse a file of whitespace-separated non-negative integers without a Python loop.

    Works on the raw bytes with numpy: token boundaries from a whitespace mask, values by
    weighting each digit with its power of ten and ``np.add.reduceat`` per token. Any other byte
    (a letter, a sign, a comma) raises :class:`DataError` naming the line and the token.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    is_space = _WHITESPACE[buf]
    is_digit = (buf >= 48) & (buf <= 57)
    bad = ~(is_space | is_digit)
    if bad.any():
        pos = int(np.argmax(bad))
        start = pos
        while start > 0 and not _WHITESPACE[raw[start - 1]]:
            start -= 1
        end = pos
        while end < len(raw) and not _WHITESPACE[raw[end]]:
            end += 1
        token = raw[start:end].decode("utf-8", errors="replace")
        raise DataError(
            f"expected whitespace-separated non-negative integer IDs, found {token!r}",
            path=path,
            line=line_number_at(raw, pos),
        )
    prev_space = np.ones(len(buf), dtype=bool)
    prev_space[1:] = is_space[:-1]
    next_space = np.ones(len(buf), dtype=bool)
    next_space[:-1] = is_space[1:]
    starts = np.flatnonzero(is_digit & prev_space)
    ends = np.flatnonzero(is_digit & next_space)  # inclusive
    if len(starts) == 0:
        raise DataError("empty dataset: no data lines", path=path)
    lengths = ends - starts + 1
    if lengths.max() > _MAX_DIGITS:
        pos = int(starts[np.argmax(lengths > _MAX_DIGITS)])
        raise DataError(
            f"integer ID too large (more than {_MAX_DIGITS} digits)",
            path=path,
            line=line_number_at(raw, pos),
        )
    digit_positions = np.flatnonzero(is_digit)
    token_of_digit = np.repeat(np.arange(len(starts)), lengths)
    exponents = ends[token_of_digit] - digit_positions
    weighted = (buf[digit_positions].astype(np.int64) - 48) * _POW10[exponents]
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    values = np.add.reduceat(weighted, offsets)
    newlines = np.flatnonzero(buf == 10)
    line_index = np.searchsorted(newlines, starts).astype(np.int64)
    line_first = np.ones(len(starts), dtype=bool)
    line_first[1:] = line_index[1:] != line_index[:-1]
    return IntTokens(values=values.astype(np.int64), line_index=line_index, line_first=line_first)
