"""Column ranges of one table: :class:`ColumnView` (a model's table slot) and
:class:`ColumnRows` (what a row optimiser steps).

A model may read one ID field through several tables: DeepFM reads a field's ``d``-wide vector
and its 1-wide first-order weight, NeuMF a user's GMF and MLP vectors. On a stream each table of
its own would keep its own per-ID state (ID -> row map, counts, positions), so a 4-byte weight
would cost its field's whole per-ID state again. Instead, one **field table** holds every
width of the field side by side (``d + 1`` columns for DeepFM, ``2d`` for NeuMF) and each of the
model's slots reads its columns through a :class:`ColumnView`:

* the view holds no parameter, buffer or state of its own (its ``nbytes`` is 0): rows, shared
  vectors and ID maps are the field table's, counted once there;
* the field table is *not* a submodule of the view (whoever owns the field table registers it
  once), so a state dict holds each field table once;
* ``lookup(ids)`` is ``field_table.lookup(ids)[:, start:stop]``; within
  :meth:`FieldLookups.shared` the field table is read once per ``ids`` tensor for all its views
  (a forward that reads several slots of a field with the same IDs looks them up once).

:class:`ColumnRows` gives a :class:`~leanrec.train.row_optim.RowOptimizer` the columns of one
slot as if they were a table of their own (its ``weight`` is a view of the field table's rows,
its row events are the field table's), so each slot keeps its own step size and accumulator.

Example (a field table of width ``4 + 1``, viewed as DeepFM's two slots):
    >>> table = GrowingEmbedding(3, 5, allocate_on_observe=True)
    >>> vectors, weights = ColumnView(table, 0, 4), ColumnView(table, 4, 5)
    >>> table.observe(torch.tensor([0, 2]))
    >>> torch.equal(weights.lookup(torch.tensor([2])), table.lookup(torch.tensor([2]))[:, 4:])
    True
    >>> vectors.nbytes(), weights.num_parameters()
    (0, 0)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.growing import RowListener, RowStorage

__all__ = ["ColumnRows", "ColumnView", "FieldLookups"]


class FieldLookups:
    """The lookups of one field table that its views share while :meth:`shared` is open.

    Args:
        table: the field table.
    """

    def __init__(self, table: EmbeddingTable) -> None:
        self.table = table
        self._open = False
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``table.lookup(ids)`` ``(B, width)``; while shared, reused for the same ``ids``
        tensor object."""
        if not self._open:
            return self.table.lookup(ids)
        if self._last is None or self._last[0] is not ids:
            self._last = (ids, self.table.lookup(ids))
        return self._last[1]

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Within the block the table does not change, so a lookup of the same ``ids`` tensor
        is read once (the block holds the tensors it saw; they go when it closes)."""
        self._open = True
        try:
            yield
        finally:
            self._open = False
            self._last = None


class ColumnView(EmbeddingTable):
    """Columns ``start:stop`` of a field table, as a table of width ``stop - start``.

    Args:
        source: the field table, or its :class:`FieldLookups` (shared by the field's views).
        start: first column.
        stop: one past the last column.
    """

    def __init__(self, source: EmbeddingTable | FieldLookups, start: int, stop: int) -> None:
        super().__init__()
        lookups = source if isinstance(source, FieldLookups) else FieldLookups(source)
        if not 0 <= start < stop <= lookups.table.embedding_dim:
            raise ValueError(
                f"columns {start}:{stop} are not inside a table of width "
                f"{lookups.table.embedding_dim}"
            )
        # a plain attribute, not a submodule: the field table is registered by its owner once
        self.__dict__["lookups"] = lookups
        self.start = start
        self.stop = stop
        self.embedding_dim = stop - start

    lookups: FieldLookups

    @property
    def table(self) -> EmbeddingTable:
        """The field table the columns belong to."""
        return self.lookups.table

    @property  # type: ignore[override]
    def num_embeddings(self) -> int:
        """The field table's IDs so far."""
        return self.table.num_embeddings

    @num_embeddings.setter
    def num_embeddings(self, value: int) -> None:
        raise AttributeError("a column view's IDs are its field table's (extend that table)")

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` IDs -> ``(B, stop - start)``: the field table's vectors, these columns."""
        return self.lookups.lookup(ids)[:, self.start : self.stop]

    def num_parameters(self) -> int:
        """0: the values are the field table's (counted there)."""
        return 0

    def _device(self) -> torch.device:
        return self.table._device()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, columns={self.start}:{self.stop}"


class ColumnRows:
    """Columns ``start:stop`` of a row table's ``weight``, for a row optimiser
    (:class:`~leanrec.embeddings.growing.RowStorage`): ``weight`` is a view ``(capacity,
    stop - start)`` of the table's current storage, and row events are the table's.

    Args:
        table: a row table (``weight`` ``(capacity, width)``, ``capacity``, ``add_listener``),
            e.g. a :class:`~leanrec.embeddings.GrowingEmbedding`.
        start: first column.
        stop: one past the last column.
    """

    def __init__(self, table: RowStorage, start: int, stop: int) -> None:
        self.table = table
        self.start = start
        self.stop = stop

    @property
    def weight(self) -> torch.Tensor:
        """The columns of the table's rows now (a view: in-place updates reach the table)."""
        return self.table.weight.data[:, self.start : self.stop]

    @property
    def capacity(self) -> int:
        return self.table.capacity

    def add_listener(self, listener: RowListener) -> None:
        self.table.add_listener(listener)
