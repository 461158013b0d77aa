"""Run directories: where an experiment keeps its configuration, finished rows and outputs.

Every policy's experiment writes the same files, so that knowing one run directory means
knowing all of them::

    run = RunDirectory("runs/es-ml1m", config=experiment)      # writes config.json
    rows = run.rows(key=("method", "target_sparsity"))          # rows.json, resumable
    for method in methods:
        if rows.has(method=method.name, target_sparsity=0.9):
            continue                                             # finished before a kill
        rows.add({"method": method.name, "target_sparsity": 0.9, "test_recall@20": ...})
    run.write_results(summary)                                   # results.json
    run.write_table(markdown)                                    # table.md
    with run.figure("metric_vs_k.png") as (fig, axes): ...      # a PNG

Every write is atomic (a temporary file renamed over the target), so a run killed at any
point leaves either the old file or the new one, never a torn one; a rerun with the same
directory skips the rows it finds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Log = Callable[[str], None]
"""Where an experiment reports its stages: one line per stage or epoch."""


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses as dicts, tuples as lists, paths and other
    objects as strings, NumPy scalars and arrays as numbers and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` (made :func:`jsonable`) as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(jsonable(data), indent=2) + "\n")


class RowStore:
    """The finished rows of an experiment, one JSON list, rewritten atomically on every add.

    A row is a dict; its key is the values of ``key_fields`` (e.g. ``("method", "seed")``). A
    row added with the key of an existing row replaces it, so rerunning a cell overwrites its
    row instead of doubling it.

    Args:
        path: the JSON file (read when it exists: a resumed run starts from its rows).
        key_fields: the fields that identify a row; every added row must have them.
    """

    def __init__(self, path: str | Path, key_fields: Sequence[str]) -> None:
        self.path = Path(path)
        self.key_fields = tuple(key_fields)
        if not self.key_fields:
            raise ValueError("a row store needs at least one key field")
        self._rows: list[dict[str, Any]] = []
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"{self.path}: not a JSON list of rows ({error})") from error
            if not isinstance(loaded, list):
                raise ValueError(f"{self.path}: expected a JSON list of rows")
            self._rows = loaded

    def key(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """The key of ``row``; a missing key field is an error naming it."""
        missing = [f for f in self.key_fields if f not in row]
        if missing:
            raise KeyError(f"row has no key field(s) {missing}: {sorted(row)}")
        return tuple(row[f] for f in self.key_fields)

    def _key_of(self, fields: dict[str, Any]) -> tuple[Any, ...]:
        if set(fields) != set(self.key_fields):
            raise TypeError(f"give exactly the key fields {self.key_fields}, got {sorted(fields)}")
        return tuple(fields[f] for f in self.key_fields)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, in the order they were first added."""
        return list(self._rows)

    def get(self, **key: Any) -> dict[str, Any] | None:
        """The row with this key (every key field given by name), or None."""
        wanted = self._key_of(key)
        for row in self._rows:
            if self.key(row) == wanted:
                return row
        return None

    def has(self, **key: Any) -> bool:
        """Whether a row with this key is stored."""
        return self.get(**key) is not None

    def select(self, **where: Any) -> list[dict[str, Any]]:
        """Rows whose fields equal every ``field=value`` given (any fields, not only keys)."""
        return [r for r in self._rows if all(r.get(f) == v for f, v in where.items())]

    def add(self, row: dict[str, Any]) -> None:
        """Store ``row`` (replacing a row with its key, in place) and rewrite the file."""
        row = jsonable(row)
        key = self.key(row)
        for i, existing in enumerate(self._rows):
            if self.key(existing) == key:
                self._rows[i] = row
                break
        else:
            self._rows.append(row)
        atomic_write_json(self.path, self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._rows))


def file_in(folder: str | Path, name: str) -> Path:
    """The path of ``name`` inside ``folder`` (its parent folders created): what a job running
    off the search's process (it holds the run directory's path, not the object) writes to."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class RunDirectory:
    """One experiment's directory: ``config.json``, ``rows.json``, ``results.json``,
    ``table.md``, ``run.log``, PNG plots and whatever artefacts the experiment saves.

    Args:
        path: the directory (created; an existing one is resumed).
        config: the experiment's configuration, written to ``config.json`` (a dataclass or a
            dict; None writes nothing).
        log: where stage lines go besides ``run.log`` (default ``print``; None: only the file).
    """

    def __init__(self, path: str | Path, config: Any = None, log: Log | None = print) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._echo = log
        if config is not None:
            atomic_write_json(self.path / "config.json", config)

    def file(self, name: str) -> Path:
        """The path of ``name`` inside the run directory (its parent folders created)."""
        return file_in(self.path, name)

    def log(self, message: str) -> None:
        """One line to ``run.log`` (time-stamped) and to the echo callable, so a background
        run can be followed with ``tail -f run.log``."""
        with open(self.path / "run.log", "a") as stream:
            stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self._echo is not None:
            self._echo(message)

    def rows(self, key: Sequence[str], name: str = "rows.json") -> RowStore:
        """The run's row store (``rows.json``), keyed by ``key``."""
        return RowStore(self.path / name, key)

    def read_json(self, name: str, default: Any = None) -> Any:
        """The JSON file ``name`` of the run, or ``default`` when it does not exist."""
        path = self.path / name
        return json.loads(path.read_text()) if path.exists() else default

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``name`` (JSON) atomically."""
        return atomic_write_json(self.path / name, data)

    def write_results(self, summary: dict[str, Any]) -> Path:
        """``results.json``: the experiment's summary (what its table is made from)."""
        return self.write_json("results.json", summary)

    def write_table(self, markdown: str) -> Path:
        """``table.md``: the summary as a markdown table."""
        return atomic_write_text(self.path / "table.md", markdown)

    def table(self) -> str:
        """The last written ``table.md`` ('' before the first)."""
        path = self.path / "table.md"
        return path.read_text() if path.exists() else ""

    @contextmanager
    def figure(
        self, name: str, ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (5.0, 4.0)
    ) -> Iterator[tuple[Figure, np.ndarray]]:
        """A matplotlib figure (off-screen backend) saved as ``name`` when the block ends.

        Yields ``(figure, axes)`` with ``axes`` a ``(nrows, ncols)`` array; ``size`` is the
        size of one panel in inches.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(
            nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
        )
        try:
            yield fig, axes
            fig.tight_layout()
            tmp = self.file(name + ".tmp.png")
            fig.savefig(tmp, dpi=120)
            os.replace(tmp, self.path / name)
        finally:
            plt.close(fig)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"


__all__ = [
    "Log",
    "RowStore",
    "RunDirectory",
    "atomic_write_json",
    "atomic_write_text",
    "file_in",
    "jsonable",
]
