"""MovieLens 100K and 1M in their GroupLens text formats.

* ML-100K: ``u.data`` (TAB-separated ``user item rating timestamp``), ``u.user`` and ``u.item``
  (``|``-separated, Latin-1).
* ML-1M: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``; the shared complete copy has
  no timestamp column, so 3 fields are accepted too), ``users.dat`` and ``movies.dat``
  (ISO-8859-1).

Raw IDs are kept as the integers in the files, so ``interactions.user_vocab.to_raw(i)`` is the
GroupLens user ID and indexes ``side["users"]``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders._parsing import (
    check_field_counts,
    index_lines,
    int_vocabulary,
    line_number_at,
    read_bytes,
    read_numeric_delimited,
    single_byte_separator,
)

ML100K_GENRES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
"""The 19 genre flag columns of ``u.item``, in file order (from the ML-100K README)."""

_LATIN1 = "latin-1"


def _require_directory(directory: str | Path) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise DataError("dataset directory not found", path=path)
    return path


def _to_interactions(frame: pd.DataFrame, name: str, has_timestamp: bool) -> Interactions:
    raw_users = frame["user"].to_numpy(dtype=np.int64)
    raw_items = frame["item"].to_numpy(dtype=np.int64)
    return Interactions.from_raw(
        raw_users,
        raw_items,
        ratings=frame["rating"].to_numpy(dtype=np.float32),
        timestamps=frame["timestamp"].to_numpy(dtype=np.int64) if has_timestamp else None,
        name=name,
        user_vocab=int_vocabulary(raw_users, "user"),
        item_vocab=int_vocabulary(raw_items, "item"),
    )


def _read_text_table(
    path: Path, sep: str, names: list[str], encoding: str = _LATIN1
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a quote-free, header-less metadata table as text columns (``dtype=str``).

    Returns the frame and the 1-based line number of each of its rows, shape ``(n_rows,)``.
    """
    _, raw = read_bytes(path, "metadata file")
    data, sep_byte = single_byte_separator(raw, sep, path)
    index = index_lines(data, sep_byte)
    if len(index.line_numbers) == 0:
        raise DataError("empty metadata file: no data lines", path=path)
    check_field_counts(index, len(names), path, repr(sep))
    frame = pd.read_csv(
        io.BytesIO(data),
        sep=sep_byte.decode(_LATIN1),
        header=None,
        names=names,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        quoting=csv.QUOTE_NONE,
        encoding=encoding,
        engine="c",
    )
    return frame, index.line_numbers


def _integer_column(frame: pd.DataFrame, column: str, path: Path, raw_lines: np.ndarray) -> None:
    """Convert ``frame[column]`` to int64 in place, or raise naming the offending line."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"field {column!r} is not an integer: {frame[column].iloc[row]!r}",
            path=path,
            line=int(raw_lines[row]),
        )
    frame[column] = values.astype(np.int64)


def read_ml100k_users(path: str | Path) -> pd.DataFrame:
    """``u.user`` as a frame indexed by raw user ID: ``age`` (int), ``gender``, ``occupation``,
    ``zip_code`` (text: some zip codes are alphanumeric)."""
    p = Path(path)
    frame, lines = _read_text_table(p, "|", ["user_id", "age", "gender", "occupation", "zip_code"])
    _integer_column(frame, "user_id", p, lines)
    _integer_column(frame, "age", p, lines)
    return frame.set_index("user_id")


def read_ml100k_items(path: str | Path) -> pd.DataFrame:
    """``u.item`` as a frame indexed by raw item ID: ``title``, ``release_date`` (text, may be
    empty) and the 19 genre flags of :data:`ML100K_GENRES` (int8 0/1). Latin-1 encoded."""
    p = Path(path)
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
    frame, lines = _read_text_table(p, "|", names)
    _integer_column(frame, "item_id", p, lines)
    for genre in ML100K_GENRES:
        _integer_column(frame, genre, p, lines)
        frame[genre] = frame[genre].astype(np.int8)
    return frame.drop(columns=["video_release_date", "imdb_url"]).set_index("item_id")


def read_ml1m_users(path: str | Path) -> pd.DataFrame:
    """``users.dat`` as a frame indexed by raw user ID: ``gender``, ``age`` (the ML-1M age
    bucket: 1, 18, 25, ...), ``occupation`` (code 0-20), ``zip_code`` (text)."""
    p = Path(path)
    frame, lines = _read_text_table(p, "::", ["user_id", "gender", "age", "occupation", "zip_code"])
    for column in ("user_id", "age", "occupation"):
        _integer_column(frame, column, p, lines)
    return frame.set_index("user_id")


def read_ml1m_movies(path: str | Path) -> pd.DataFrame:
    """``movies.dat`` (ISO-8859-1) as a frame indexed by raw movie ID.

    Columns: ``title``, ``genres`` (list of genre names, split on ``|``) and one int8 0/1 flag
    column per genre that occurs in the file (sorted by name), so it can be used as features.
    """
    p = Path(path)
    frame, lines = _read_text_table(p, "::", ["item_id", "title", "genres"])
    _integer_column(frame, "item_id", p, lines)
    flags = frame["genres"].str.get_dummies(sep="|").astype(np.int8)
    frame["genres"] = frame["genres"].str.split("|")
    return pd.concat([frame, flags], axis=1).set_index("item_id")


def load_movielens_100k(directory: str | Path, name: str = "ml-100k") -> Interactions:
    """Load ML-100K from a folder holding ``u.data`` (and, if present, ``u.user`` / ``u.item``).

    Args:
        directory: the unzipped ``ml-100k`` folder.
        name: dataset name carried by the result.

    Returns:
        :class:`Interactions` with ratings (1-5, float32) and Unix
        timestamps; 100,000 interactions, 943 users, 1,682 items for the official file.
        ``side["users"]`` / ``side["items"]`` are the frames of :func:`read_ml100k_users` /
        :func:`read_ml100k_items` when those files exist.

    Raises:
        DataError: missing folder or ``u.data``, a line without 4 TAB-separated fields, a
            non-numeric field, or an empty file; the message names the file and line.
    """
    folder = _require_directory(directory)
    path, raw = read_bytes(folder / "u.data", "ML-100K ratings file")
    frame = read_numeric_delimited(
        raw,
        path,
        "\t",
        names=["user", "item", "rating", "timestamp"],
        integer_columns=["user", "item", "timestamp"],
        float_columns=["rating"],
    )
    interactions = _to_interactions(frame, name, has_timestamp=True)
    if (folder / "u.user").is_file():
        interactions.side["users"] = read_ml100k_users(folder / "u.user")
    if (folder / "u.item").is_file():
        interactions.side["items"] = read_ml100k_items(folder / "u.item")
    return interactions


def find_ml1m_ratings_file(directory: str | Path) -> Path:
    """The ratings file of an ML-1M folder: ``ratings.dat``, else the only ``ratings*.dat``.

    Raises:
        DataError: no candidate, or several ``ratings*.dat`` files and no ``ratings.dat``.
    """
    folder = _require_directory(directory)
    exact = folder / "ratings.dat"
    if exact.is_file():
        return exact
    candidates = sorted(p for p in folder.glob("ratings*.dat") if p.is_file())
    if not candidates:
        raise DataError(
            "no ratings.dat or ratings*.dat in ML-1M folder (missing file)", path=folder
        )
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise DataError(
            f"several ratings files ({names}); pass ratings_file= to choose one", path=folder
        )
    return candidates[0]


def load_movielens_1m(
    directory: str | Path, ratings_file: str | Path | None = None, name: str = "ml-1m"
) -> Interactions:
    """Load ML-1M (or a piece of it) from a folder of ``::``-separated GroupLens files.

    The ratings file has 4 fields (``user::item::rating::timestamp``, the official layout) or 3
    (``user::item::rating``, e.g. the complete copy without timestamps); the field count of the
    first line decides and every line must match it.

    Args:
        directory: folder with the ratings file and optionally ``users.dat`` / ``movies.dat``.
        ratings_file: file name inside ``directory`` (or any path); default
            :func:`find_ml1m_ratings_file` (``ratings.dat`` else ``ratings*.dat``).
        name: dataset name carried by the result.

    Returns:
        :class:`Interactions` with float32 ratings, and int64 Unix timestamps
        when the file has them (``timestamps is None`` otherwise). ``side["users"]`` and
        ``side["items"]`` hold :func:`read_ml1m_users` / :func:`read_ml1m_movies` when present.

    Raises:
        DataError: missing folder/file, a line with a wrong number of ``::`` fields (e.g.
            "expected 4 fields separated by '::', found 1"), a non-numeric field, or no data.
    """
    folder = _require_directory(directory)
    if ratings_file is None:
        ratings_path = find_ml1m_ratings_file(folder)
    else:
        inside = folder / ratings_file
        ratings_path = inside if inside.is_file() else Path(ratings_file)
    path, raw = read_bytes(ratings_path, "ML-1M ratings file")
    stripped = raw.lstrip(b"\r\n")
    first_line = stripped.split(b"\n", 1)[0].rstrip(b"\r")
    if not first_line:
        raise DataError("empty dataset: no data lines", path=path)
    n_fields = first_line.count(b"::") + 1
    if n_fields not in (3, 4):
        raise DataError(
            f"expected 4 fields separated by '::', found {n_fields}",
            path=path,
            line=line_number_at(raw, len(raw) - len(stripped)),
        )
    names = ["user", "item", "rating", "timestamp"][:n_fields]
    frame = read_numeric_delimited(
        raw,
        path,
        "::",
        names=names,
        integer_columns=[c for c in names if c != "rating"],
        float_columns=["rating"],
    )
    interactions = _to_interactions(frame, name, has_timestamp=n_fields == 4)
    if (folder / "users.dat").is_file():
        interactions.side["users"] = read_ml1m_users(folder / "users.dat")
    if (folder / "movies.dat").is_file():
        interactions.side["items"] = read_ml1m_movies(folder / "movies.dat")
    return interactions
