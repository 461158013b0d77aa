"""A user's own interaction file, usable wherever a registered dataset name is.

Every entry point that takes a dataset (``leanrec train``, the experiments,
:func:`~leanrec.api.train`, :func:`~leanrec.data.registry.load_dataset`) also takes a
:class:`DataFile`: a path plus how to read it. Two kinds of file:

* a **table** (CSV, TSV or Parquet with a header), read by
  :func:`~leanrec.data.loaders.tabular.load_table` with the columns named here;
* a **sequence file** (``format="sequences"``): ``user item`` pairs in time order, or one user
  per line (``user item1 item2 ...``), read by
  :func:`~leanrec.data.loaders.sequences.load_user_sequences`.

Outputs are named after the file: ``str(DataFile("data/ratings.csv"))`` is ``"ratings"``.

Example::

    from leanrec.api import TrainConfig, train
    data = DataFile("ratings.csv", user_col="userId", item_col="movieId",
                    rating_col="rating", threshold=4)
    run = train(TrainConfig(dataset=data, model="mf"))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders.sequences import SequenceLayout, load_user_sequences
from leanrec.data.loaders.tabular import load_table
from leanrec.options import check_literals

__all__ = ["DataFile", "FileFormat", "dataset_name"]

FileFormat = Literal["table", "sequences"]


@dataclass(frozen=True)
class DataFile:
    """An interaction file of one's own and how to read it."""

    path: str
    """The file: ``.csv``, ``.tsv``, ``.parquet`` (tables) or a text file of sequences."""
    format: FileFormat = "table"
    """``"table"`` (a header names the columns) or ``"sequences"`` (integer IDs, see
    :attr:`layout`)."""
    user_col: str = "user"
    """Table column of the user ID."""
    item_col: str = "item"
    """Table column of the item ID."""
    rating_col: str | None = None
    """Table column of the rating (None: every row is a positive interaction)."""
    time_col: str | None = None
    """Table column of the timestamp, a number or date/time text (None: no time order)."""
    sep: str | None = None
    """Text separator (None: TAB for ``.tsv``, comma for ``.csv``, else sniffed)."""
    threshold: float | None = None
    """Keep rows with ``rating >= threshold`` as positives (needs :attr:`rating_col`); users
    and items left with none leave the vocabularies. None: keep every row."""
    layout: SequenceLayout = "auto"
    """Sequence files: ``"pairs"`` (``user item`` per line), ``"lines"`` (a user per line) or
    ``"auto"`` (pairs when every line has two IDs)."""
    duplicates: Literal["keep", "first", "last"] = "keep"
    """Rows repeating a (user, item) pair: ``"keep"`` them all (a table without a time column
    that has some says so with a warning: each trains as an interaction, and a test pair also
    in training is left out of the test), or keep only the ``"first"`` / ``"last"`` (by time
    when there is a time column, else by line)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.sep is not None and len(self.sep) != 1:
            raise ValueError(
                f"sep must be one character (the text between two fields), got {self.sep!r}"
            )
        named = [c for c in (self.user_col, self.item_col, self.rating_col, self.time_col) if c]
        if len(set(named)) < len(named):
            raise ValueError(
                f"each column is read once: user_col {self.user_col!r}, item_col "
                f"{self.item_col!r}, rating_col {self.rating_col!r} and time_col "
                f"{self.time_col!r} name one column twice"
            )
        if self.threshold is not None and self.rating_col is None and self.format == "table":
            raise ValueError("threshold needs rating_col: the column whose values it compares")
        if self.format == "sequences" and self.threshold is not None:
            raise ValueError("threshold applies to tables with ratings, not to sequence files")

    @property
    def name(self) -> str:
        """The file's stem (``ratings.csv`` -> ``ratings``): the name of every output."""
        return Path(self.path).stem

    @property
    def kind(self) -> Literal["ranking", "sequence"]:
        """``"sequence"`` for a sequence file or a table with a time column (time-ordered per
        user, as next-item retrieval needs), else ``"ranking"``."""
        return "sequence" if self.format == "sequences" or self.time_col else "ranking"

    def __str__(self) -> str:
        return self.name

    def load(self, apply_threshold: bool = True) -> Interactions:
        """The file's interactions, named :attr:`name`.

        Args:
            apply_threshold: keep only the positives of :attr:`threshold` (False: every row,
                ratings kept; a stream labels them itself).

        Raises:
            DataError: a missing or malformed file (file and line named), or no row left
                above the threshold.
        """
        return self._one_per_pair(self._read(apply_threshold))

    def _one_per_pair(self, data: Interactions) -> Interactions:
        """``data`` after :attr:`duplicates`."""
        from leanrec.data.splits import drop_duplicates

        if self.duplicates != "keep":
            return drop_duplicates(data, self.duplicates)
        if self.kind == "ranking":
            repeated = len(data) - len(data.sorted_keys())
            if repeated:
                warnings.warn(
                    f"{self.path}: {repeated:,} rows repeat a (user, item) pair of another row; "
                    "kept, each trains as an interaction, and a test pair also in training is "
                    "left out of the test: duplicates='first' or 'last' (--duplicates) keeps "
                    "one",
                    stacklevel=3,
                )
        return data

    def _read(self, apply_threshold: bool) -> Interactions:
        if self.format == "sequences":
            return load_user_sequences(self.path, self.layout, name=self.name)
        columns = {"user": self.user_col, "item": self.item_col}
        if self.rating_col is not None:
            columns["rating"] = self.rating_col
        if self.time_col is not None:
            columns["timestamp"] = self.time_col
        data = load_table(self.path, columns, sep=self.sep, name=self.name)
        if not apply_threshold or self.threshold is None:
            return data
        from leanrec.data.splits import kcore_filter, to_implicit

        positives = to_implicit(data, self.threshold)
        if len(positives) == 0:
            raise DataError(
                f"no row has {self.rating_col} >= {self.threshold} (--threshold)", path=self.path
            )
        return kcore_filter(positives, 1, 1)


def dataset_name(dataset: str | DataFile) -> str:
    """What outputs are named after: a registered name as it is, a file by its stem."""
    return dataset.name if isinstance(dataset, DataFile) else dataset
