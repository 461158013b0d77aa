"""Errors raised for bad input data: each names the file and, where there is one, the line."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A dataset cannot be read or used as asked (missing file, malformed line, empty data...).

    Attributes:
        path: the offending file, if any.
        line: 1-based line number in ``path``, if known.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


def require_file(path: str | Path, what: str = "data file") -> Path:
    """Return ``path`` as a Path, or raise :class:`DataError` if it is missing."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{what} expected, found a directory", path=p)
    if not p.is_file():
        raise DataError(f"{what} not found (missing file)", path=p)
    return p
