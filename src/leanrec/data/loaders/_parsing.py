"""Shared, vectorised text-parsing helpers for the loaders (private).

Every loader follows the same contract: parse the whole file in one C/numpy pass, and when
that fails, locate the first offending line *after the fact* so the :class:`DataError` can name
the file and the 1-based line. Python-level loops only ever run on the error path.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError, require_file
from leanrec.data.interactions import IdVocabulary

# ASCII whitespace as understood by ``bytes.split()``: \t \n \v \f \r and space.
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[48:58] = True
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


def check_utf8(raw: bytes, path: Path) -> None:
    """Raise :class:`DataError` naming the line of the first byte sequence that is not UTF-8.

    Done up front (one fast C pass) so that pandas never raises a bare ``UnicodeDecodeError``
    and no ID is silently altered by a replacement character.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 text (byte {raw[exc.start : exc.start + 1]!r})",
            path=path,
            line=line_number_at(raw, exc.start),
        ) from None


def line_number_at(raw: bytes, byte_offset: int) -> int:
    """1-based line number of the byte at ``byte_offset`` in ``raw``."""
    return raw.count(b"\n", 0, byte_offset) + 1


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
    """Raise :class:`DataError` at the first line, from row ``first_row`` on, whose field count
    is not ``expected``."""
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
        if integer:
            bad = ~text.str.fullmatch(r"\s*[+-]?\d+\s*").to_numpy(dtype=bool, na_value=False)
        else:
            bad = pd.to_numeric(text, errors="coerce").isna().to_numpy()
        rows = np.flatnonzero(bad)
        if len(rows) and (worst is None or rows[0] < worst[0]):
            worst = (int(rows[0]), col, str(text.iloc[rows[0]]))
    return worst


def _typed_frame_ok(
    frame: pd.DataFrame, integer_columns: list[str], float_columns: list[str]
) -> bool:
    """True when pandas' untyped parse produced clean numbers: integer columns came out as an
    integer dtype (so no NaN, no decimals, no text) and float columns as numbers without NaN."""
    if len(frame) == 0:
        return False
    for col in integer_columns:
        if frame[col].dtype.kind not in "iu":
            return False
    for col in float_columns:
        if frame[col].dtype.kind not in "iuf" or bool(frame[col].isna().any()):
            return False
    return True


def read_numeric_delimited(
    raw: bytes,
    path: Path,
    sep: str,
    names: list[str],
    integer_columns: list[str],
    float_columns: list[str],
) -> pd.DataFrame:
    """Parse a header-less, quote-free, all-numeric delimited file with pandas' C engine.

    Fast path: one untyped ``read_csv`` (letting pandas infer types is several times faster
    than forcing them) followed by a dtype check. Only if that fails is the file re-scanned,
    vectorised, to report the first line with a wrong field count or a non-numeric field as a
    :class:`DataError`; an empty file raises ``DataError("empty dataset ...")``.

    Returns:
        A frame with one row per non-blank line and the columns ``names``; integer columns are
        int64, float columns int64 or float64.
    """
    data, sep_byte = single_byte_separator(raw, sep, path)
    common = dict(
        sep=sep_byte.decode("latin-1"),
        header=None,
        names=names,
        engine="c",
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=True,
    )
    parse_error: Exception | None = None
    try:
        frame = pd.read_csv(io.BytesIO(data), **common)  # type: ignore[call-overload]
        if _typed_frame_ok(frame, integer_columns, float_columns):
            return frame
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        parse_error = exc
    # Error path: find the first offending line.
    index = index_lines(data, sep_byte)
    if len(index.line_numbers) == 0:
        raise DataError("empty dataset: no data lines", path=path)
    check_field_counts(index, len(names), path, repr(sep))
    text = pd.read_csv(
        io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False, **common
    )  # type: ignore[call-overload]
    found = first_bad_numeric(text, integer_columns, integer=True)
    found_float = first_bad_numeric(text, float_columns, integer=False)
    if found is None or (found_float is not None and found_float[0] < found[0]):
        found = found_float
    if found is None:
        detail = f": {parse_error}" if parse_error is not None else " (number out of range?)"
        raise DataError(f"cannot parse file as numbers{detail}", path=path) from None
    row, col, value = found
    kind = "an integer" if col in integer_columns else "a number"
    raise DataError(
        f"field {col!r} is not {kind}: {value!r}", path=path, line=int(index.line_numbers[row])
    )


def int_vocabulary(raw_ids: np.ndarray, name: str) -> IdVocabulary:
    """Vocabulary of the sorted distinct IDs, the same as :meth:`IdVocabulary.from_raw`.

    For non-negative integer IDs of moderate range it uses ``np.bincount`` (O(n)) instead of
    the O(n log n) sort inside ``np.unique``, which dominates loading time on 1M rows.
    """
    raw = np.asarray(raw_ids)
    if (
        raw.dtype.kind in "iu"
        and len(raw)
        and raw.min() >= 0
        and raw.max() <= max(1 << 22, 4 * len(raw))
    ):
        present = np.flatnonzero(np.bincount(raw)).astype(raw.dtype)
        return IdVocabulary(present, name=name)
    return IdVocabulary.from_raw(raw, name=name)


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


def _parse_digit_tokens(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Values of the digit-only tokens at ``starts`` (byte offsets) of ``lengths`` bytes.

    Each digit is weighted by its power of ten and summed per token with ``np.add.reduceat``.
    """
    token_of_digit = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    digit_positions = (
        np.arange(len(token_of_digit)) - offsets[token_of_digit] + starts[token_of_digit]
    )
    exponents = starts[token_of_digit] + lengths[token_of_digit] - 1 - digit_positions
    weighted = (buf[digit_positions].astype(np.int64) - 48) * _POW10[exponents]
    return np.add.reduceat(weighted, offsets)


def tokenize_int_lines(raw: bytes, path: Path) -> IntTokens:
    """Parse a file of whitespace-separated non-negative integers without a Python loop.

    Works on the raw bytes with numpy: a lookup table classifies every byte (digit / whitespace
    / other), token boundaries come from where that class changes, line numbers from a running
    count of newlines, and the values from numpy's C text parser (``np.fromstring``), which is
    safe to use once the bytes are known to be digits and whitespace only. Any other byte (a
    letter, a sign, a comma) raises :class:`DataError` naming the line and the token.
    """
    buf = np.frombuffer(raw, dtype=np.uint8)
    is_space = _WHITESPACE[buf]
    is_digit = _DIGIT[buf]
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
    # A token starts at a digit preceded by whitespace (or the start of the file) and ends at
    # a digit followed by whitespace (or the end).
    boundary = np.diff(is_digit.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(boundary == 1)
    ends = np.flatnonzero(boundary == -1)  # exclusive
    if len(starts) == 0:
        raise DataError("empty dataset: no data lines", path=path)
    lengths = ends - starts
    if lengths.max() > _MAX_DIGITS:
        pos = int(starts[np.argmax(lengths > _MAX_DIGITS)])
        raise DataError(
            f"integer ID too large (more than {_MAX_DIGITS} digits)",
            path=path,
            line=line_number_at(raw, pos),
        )
    values: np.ndarray | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(raw, dtype=np.int64, sep=" ")  # type: ignore[call-overload]
    except (ValueError, Warning):  # pragma: no cover - depends on the numpy version
        values = None
    if values is None or len(values) != len(starts):  # pragma: no cover - numpy fallback
        values = _parse_digit_tokens(buf, starts, lengths)
    newlines_before = np.cumsum(buf == 10, dtype=np.int64)
    line_index = newlines_before[starts]
    line_first = np.ones(len(starts), dtype=bool)
    line_first[1:] = line_index[1:] != line_index[:-1]
    return IntTokens(values=values.astype(np.int64), line_index=line_index, line_first=line_first)
