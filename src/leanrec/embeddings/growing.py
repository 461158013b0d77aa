"""A table whose rows come and go along a stream: :class:`GrowingEmbedding`.

In a stream, IDs arrive over time and a policy decides which of them hold a row of their own
(frequency threshold, LFU/LRU eviction, AutoAssign+ promotions and demotions). An ID without a
row reads the table's one shared fallback vector. The table's bytes follow the decisions:

* **allocate**: an ID gets a row; the lowest free rows are taken first (the free list is the set
  of rows whose ``id_of_row`` is -1, scanned once per call, vectorised), so used rows stay packed
  low;
* **grow**: when no row is free, the capacity doubles (powers of two);
* **free**: an ID loses its row (the row is zeroed and becomes free);
* **compact**: when used rows fall below ``compact_below`` (default half) of the capacity, used
  rows move down to ``0..used-1`` in their order, storage shrinks to the next power of two
  ``>= used`` (at least ``min_capacity``) and the ID -> row map is updated. Only then do freed
  bytes really go.

Both maps are int32: a table holds at most ``2**31`` IDs (IDs and rows stay below ``2**31``;
:meth:`GrowingEmbedding.extend_ids` raises beyond), which halves the per-ID bytes of int64 maps.
Methods take and return int64 IDs and rows, as every index tensor in leanrec.

:meth:`nbytes` counts what the table holds: the allocated capacity (not just the used rows), the
fallback vector, and the per-ID state (the ID -> row map, itself grown by doubling, and the
row -> ID map). For ``d``-wide float32 rows::

    nbytes = 4 * d * capacity + 4 * d + 4 * id_capacity + 4 * capacity

Optimiser state follows the rows. The ``weight`` Parameter object is kept across every
relayout (its ``.data`` is swapped), so an optimiser built on ``table.parameters()`` stays
attached; per-row optimiser state (Adam's moments, Adagrad's sums, momentum buffers) is moved by
:class:`OptimizerRowSync`, which listens to the table's :class:`RowRelayout` (grow, compact) and
:class:`RowReset` (a reused row starts with fresh state) events. Any other per-row state kept
outside the table can listen the same way (:meth:`GrowingEmbedding.add_listener`). Relayouts
happen in ``allocate`` / ``free`` / ``compact``, which must be called between optimiser steps
(not between ``backward`` and ``step``); they drop ``weight.grad``.

Example:
    >>> table = GrowingEmbedding(5, 4, min_capacity=2)
    >>> table.allocate(torch.tensor([3, 0])).tolist()   # rows for IDs 3 and 0
    [0, 1]
    >>> table.capacity, table.used_rows, table.nbytes()  # 4*4*2 + 4*4 + 4*5 + 4*2
    (2, 2, 76)
    >>> torch.equal(table.lookup(torch.tensor([1]))[0], table.fallback[0])  # ID 1: no row
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from leanrec.embeddings.base import StreamTable


@dataclass(frozen=True)
class RowRelayout:
    """Rows moved to new storage: row ``source[j]`` of the old storage (``old_capacity`` rows)
    is now row ``target[j]`` of the new one (``new_capacity`` rows); rows not listed are free.
    ``source`` and ``target`` are int64 tensors of shape ``(used,)``."""

    source: torch.Tensor
    target: torch.Tensor
    old_capacity: int
    new_capacity: int

    def move(self, per_row: torch.Tensor) -> torch.Tensor:
        """Per-row state ``(old_capacity, ...)`` laid out like the new storage:
        ``(new_capacity, ...)``, row ``source[j]`` at ``target[j]``, zeros on free rows."""
        moved = per_row.new_zeros((self.new_capacity, *per_row.shape[1:]))
        moved[self.target] = per_row[self.source]
        return moved


@dataclass(frozen=True)
class RowReset:
    """Rows (int64, shape ``(k,)``) just given to new IDs: per-row state must start afresh.

    ``accumulator`` (float32 ``(k,)``, or ``(k, d)`` one per column; optional): the rows resume
    an ID's earlier row (e.g. one parked by
    :class:`~leanrec.embeddings.HierarchicalSharedEmbedding`), and a per-row sum of squared
    gradients (Adagrad's) starts at this value instead of 0, so the resumed row keeps its small
    steps rather than taking a fresh row's first large ones."""

    rows: torch.Tensor
    accumulator: torch.Tensor | None = None


RowEvent = RowRelayout | RowReset
RowListener = Callable[[RowEvent], None]


class RowStorage(Protocol):
    """What :class:`OptimizerRowSync` needs of a table whose rows move or are reused: the row
    Parameter ``weight`` of shape ``(capacity, d)`` and its row events."""

    @property
    def weight(self) -> torch.Tensor: ...

    @property
    def capacity(self) -> int: ...

    def add_listener(self, listener: RowListener) -> None: ...


MAX_IDS = 2**31
"""Most IDs a :class:`GrowingEmbedding` holds: its ID and row maps are int32."""


def check_id_space(num_embeddings: int, table: str) -> None:
    """Raise ``ValueError`` when ``num_embeddings`` IDs do not fit int32 ID maps."""
    if num_embeddings > MAX_IDS:
        raise ValueError(
            f"{table} keeps IDs and rows as int32: at most 2**31 IDs, got {num_embeddings}"
        )


def _next_power_of_two(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


class GrowingEmbedding(StreamTable):
    """Rows allocated and freed per ID, a doubling capacity, and compaction when half empty.

    Args:
        num_embeddings: IDs known so far (``N``); grows with :meth:`extend_ids`. IDs are
            ``0..N-1``, e.g. the indices of a growing stream vocabulary.
        embedding_dim: row width ``d``.
        min_capacity: smallest storage (rounded up to a power of two); the first allocation
            creates it, compaction never shrinks below it.
        compact_below: compact when ``used_rows < compact_below * capacity``.
        init_std: std of the normal initialisation of new rows and of the fallback vector.
        sparse_grad: lookups produce sparse gradients for ``weight`` (for ``torch.optim.SGD`` /
            ``SparseAdam``: an optimiser step then touches only the rows looked up).
        generator: RNG for initialisations (one generator passed down, seeded by the caller).
        allocate_on_observe: :meth:`observe` gives every observed ID without a row a new row
            (the all-unique baseline: every ID its own row on first sight). Off by default: a
            policy (or a table built on this one) decides who holds a row.

    Attributes:
        weight: rows, shape ``(capacity, d)`` (a Parameter whose identity never changes).
        fallback: the shared vector of IDs without a row, shape ``(1, d)``.
        row_of_id: row per ID or -1, shape ``(id_capacity,)``, int32 buffer.
        id_of_row: ID per row or -1 (free), shape ``(capacity,)``, int32 buffer.
    """

    kind = "growing"
    spec_options = ("min_capacity", "compact_below", "init_std", "allocate_on_observe")
    resized_on_load = ("weight", "row_of_id", "id_of_row")

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        min_capacity: int = 16,
        compact_below: float = 0.5,
        init_std: float = 0.01,
        sparse_grad: bool = False,
        generator: torch.Generator | None = None,
        allocate_on_observe: bool = False,
    ) -> None:
        super().__init__()
        if num_embeddings < 0 or embedding_dim <= 0 or min_capacity <= 0:
            raise ValueError("need num_embeddings >= 0, embedding_dim > 0, min_capacity > 0")
        check_id_space(num_embeddings, type(self).__name__)
        if not 0.0 <= compact_below <= 0.5:
            raise ValueError(f"compact_below must be in [0, 0.5], got {compact_below}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.min_capacity = _next_power_of_two(min_capacity)
        self.compact_below = compact_below
        self.init_std = init_std
        self.sparse_grad = sparse_grad
        self.generator = generator
        self.allocate_on_observe = allocate_on_observe
        self.weight = nn.Parameter(torch.zeros(0, embedding_dim))
        self.fallback = nn.Parameter(torch.empty(1, embedding_dim))
        with torch.no_grad():
            self.fallback.normal_(0.0, init_std, generator=generator)
        self.row_of_id: torch.Tensor
        self.id_of_row: torch.Tensor
        self.register_buffer("row_of_id", torch.full((num_embeddings,), -1, dtype=torch.int32))
        self.register_buffer("id_of_row", torch.zeros(0, dtype=torch.int32))
        self.used_rows = 0
        self._listeners: list[RowListener] = []

    # ------------------------------------------------------------------ sizes
    @property
    def capacity(self) -> int:
        """Rows allocated in storage (used or free)."""
        return int(self.weight.shape[0])

    @property
    def id_capacity(self) -> int:
        """Length of the ID -> row map (``>= num_embeddings``)."""
        return int(self.row_of_id.shape[0])

    def num_parameters(self) -> int:
        """Values that carry information: used rows and the fallback vector."""
        return (self.used_rows + 1) * self.embedding_dim

    def nbytes(self) -> int:
        """``4*d*capacity + 4*d + 4*id_capacity + 4*capacity`` for float32 rows (see module)."""
        return super().nbytes()

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: RowListener) -> None:
        """Call ``listener`` with every :class:`RowRelayout` and :class:`RowReset`."""
        self._listeners.append(listener)

    def _emit(self, event: RowEvent) -> None:
        for listener in self._listeners:
            listener(event)

    # ------------------------------------------------------------------ lookups
    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Row of each ID, -1 for an ID without a row; ``(B,)`` -> ``(B,)`` int64."""
        self._check_ids(ids)
        return self.row_of_id[ids].to(torch.int64)

    def has_row(self, ids: torch.Tensor) -> torch.Tensor:
        """Whether each ID holds a row; ``(B,)`` -> ``(B,)`` bool."""
        return self.rows(ids) >= 0

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` IDs -> ``(B, d)``: own row where held, the fallback vector elsewhere."""
        rows = self.rows(ids)
        held = rows >= 0
        if self.capacity == 0:
            return self.fallback.expand(len(ids), -1)
        own = nn.functional.embedding(rows.clamp(min=0), self.weight, sparse=self.sparse_grad)
        return torch.where(held.unsqueeze(1), own, self.fallback)

    def all(self) -> torch.Tensor:
        return self.lookup(torch.arange(self.num_embeddings, device=self.row_of_id.device))

    # ------------------------------------------------------------------ growth of the ID space
    def extend_ids(self, num_embeddings: int) -> None:
        """Accept IDs up to ``num_embeddings - 1`` (new IDs have no row); the ID map doubles
        when it has to grow, so extending once per chunk costs O(1) amortised per ID.

        Raises:
            ValueError: beyond ``2**31`` IDs (int32 maps).
        """
        if num_embeddings <= self.num_embeddings:
            return
        check_id_space(num_embeddings, type(self).__name__)
        if num_embeddings > self.id_capacity:
            new_capacity = min(max(num_embeddings, 2 * self.id_capacity), MAX_IDS)
            grown = torch.full((new_capacity,), -1, dtype=torch.int32, device=self._device())
            grown[: self.id_capacity] = self.row_of_id
            self.row_of_id = grown
        self.num_embeddings = num_embeddings

    def observe(self, ids: torch.Tensor) -> None:
        """With ``allocate_on_observe``, give the chunk's IDs (``(n,)``) that hold no row a new
        row each (in increasing ID order); otherwise only check the IDs."""
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        self._check_ids(ids)
        if self.allocate_on_observe and len(ids):
            distinct = torch.unique(ids)
            self.allocate(distinct[self.row_of_id[distinct] < 0])

    def row_sync(self, optimizer: torch.optim.Optimizer) -> None:
        """Attach an :class:`OptimizerRowSync` for ``weight``."""
        OptimizerRowSync(optimizer, self)

    def accumulators(self, rows: torch.Tensor, columns: bool = False) -> torch.Tensor | None:
        """Per row, the mean of its optimiser's sum of squared gradients (Adagrad's ``sum``),
        float32 ``(k,)``, or with ``columns`` every column's sum ``(k, d)``; None when no
        attached optimiser keeps one (yet)."""
        for listener in self._listeners:
            read = getattr(listener, "accumulators", None)
            if read is not None:
                values = read(rows, columns)
                if values is not None:
                    return values
        return None

    # ------------------------------------------------------------------ rows
    def allocate(
        self,
        ids: torch.Tensor,
        init: torch.Tensor | None = None,
        accumulator: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Give each of ``ids`` (shape ``(k,)``, distinct, none holding a row) a row.

        Args:
            ids: IDs to promote.
            init: initial rows, shape ``(k, d)`` (e.g. the shared vector each ID had);
                default ``N(0, init_std)``.
            accumulator: per row, the value a sum-of-squares optimiser state starts at
                (:class:`RowReset`), shape ``(k,)``; default 0 (fresh state).

        Returns:
            The rows given, shape ``(k,)`` int64 (lowest free rows first, in ``ids`` order).
        """
        ids = ids.to(torch.int64).reshape(-1)
        k = len(ids)
        if k == 0:
            return torch.zeros(0, dtype=torch.int64)
        self._check_ids(ids)
        if len(torch.unique(ids)) != k:
            raise ValueError("allocate: ids must be distinct")
        if bool((self.row_of_id[ids] >= 0).any()):
            raise ValueError("allocate: some ids already hold a row (check has_row first)")
        if init is not None and tuple(init.shape) != (k, self.embedding_dim):
            raise ValueError(f"init must have shape ({k}, {self.embedding_dim})")
        needed = self.used_rows + k
        if needed > self.capacity:
            new_capacity = max(self.min_capacity, self.capacity)
            while new_capacity < needed:
                new_capacity *= 2
            used = torch.nonzero(self.id_of_row >= 0).reshape(-1)
            self._relayout(used, used, new_capacity)
        rows = torch.nonzero(self.id_of_row < 0).reshape(-1)[:k]
        with torch.no_grad():
            if init is None:
                values = torch.empty(k, self.embedding_dim, device=self._device())
                values.normal_(0.0, self.init_std, generator=self.generator)
            else:
                values = init.detach().to(self.weight.device, torch.float32)
            self.weight[rows] = values
        self.id_of_row[rows] = ids.to(torch.int32)
        self.row_of_id[ids] = rows.to(torch.int32)
        self.used_rows += k
        self._emit(RowReset(rows, accumulator))
        return rows

    def free(self, ids: torch.Tensor) -> None:
        """Take the rows of ``ids`` (shape ``(k,)``, each holding a row) back; compacts when
        the used rows fall below ``compact_below * capacity``."""
        ids = ids.to(torch.int64).reshape(-1)
        if len(ids) == 0:
            return
        self._check_ids(ids)
        if len(torch.unique(ids)) != len(ids):
            raise ValueError("free: ids must be distinct")
        rows = self.row_of_id[ids].to(torch.int64)
        if bool((rows < 0).any()):
            raise ValueError("free: some ids hold no row")
        with torch.no_grad():
            self.weight[rows] = 0.0
        self.id_of_row[rows] = -1
        self.row_of_id[ids] = -1
        self.used_rows -= len(ids)
        if self.used_rows < self.compact_below * self.capacity:
            self.compact()

    def compact(self) -> None:
        """Move used rows down to ``0..used-1`` (keeping their order) and shrink storage to the
        next power of two ``>= used`` (at least ``min_capacity``)."""
        source = torch.nonzero(self.id_of_row >= 0).reshape(-1)
        target = torch.arange(len(source), device=self._device())
        new_capacity = max(self.min_capacity, _next_power_of_two(self.used_rows))
        if new_capacity >= self.capacity and torch.equal(source, target):
            return
        self._relayout(source, target, min(new_capacity, self.capacity))

    def _relayout(self, source: torch.Tensor, target: torch.Tensor, new_capacity: int) -> None:
        """New storage of ``new_capacity`` rows with old row ``source[j]`` at ``target[j]``;
        ``source`` lists exactly the used rows."""
        old_capacity = self.capacity
        if len(source) != self.used_rows or bool((self.id_of_row[source] < 0).any()):
            raise RuntimeError("relayout must move exactly the used rows")
        weight = torch.zeros(new_capacity, self.embedding_dim, device=self._device())
        id_of_row = torch.full((new_capacity,), -1, dtype=torch.int32, device=self._device())
        with torch.no_grad():
            weight[target] = self.weight[source]
        id_of_row[target] = self.id_of_row[source]
        moved = id_of_row[target].to(torch.int64)
        self.row_of_id[moved] = target.to(torch.int32)
        self.weight.data = weight
        self.weight.grad = None
        self.id_of_row = id_of_row
        self._emit(RowRelayout(source, target, old_capacity, new_capacity))

    # ------------------------------------------------------------------ persistence
    def set_extra_state(self, state: dict[str, int]) -> None:
        super().set_extra_state(state)
        self.used_rows = int((self.id_of_row >= 0).sum())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, used_rows={self.used_rows}, capacity={self.capacity}"


SUM_STATE = "sum"
"""Adagrad's per-coordinate sum of squared gradients in ``torch.optim`` state."""


class OptimizerRowSync:
    """Keeps an optimiser's per-row state of ``table.weight`` in step with the table's rows.

    On a :class:`RowRelayout`, every state tensor whose first dimension was the old capacity
    (Adam's ``exp_avg`` / ``exp_avg_sq``, Adagrad's ``sum``, SGD's ``momentum_buffer``) is
    rebuilt at the new capacity with row ``source[j]`` moved to ``target[j]`` (free rows get
    zeros). On a :class:`RowReset`, those rows are zeroed, so a reused row does not inherit its
    previous owner's moments. Scalar state (Adam's ``step``) is shared by all rows and left as
    is. Zero is the starting state of Adam, SGD momentum and Adagrad with its default
    ``initial_accumulator_value=0``.

    Example:
        >>> table = GrowingEmbedding(8, 4, min_capacity=2)
        >>> optimizer = torch.optim.Adam(table.parameters(), lr=0.01)
        >>> sync = OptimizerRowSync(optimizer, table)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, table: RowStorage) -> None:
        self.optimizer = optimizer
        self.table = table
        table.add_listener(self)

    def __call__(self, event: RowEvent) -> None:
        state = self.optimizer.state.get(self.table.weight)
        if not state:
            return
        for key, value in list(state.items()):
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue
            if isinstance(event, RowRelayout):
                if value.shape[0] != event.old_capacity:
                    continue
                state[key] = event.move(value)
            elif value.shape[0] == self.table.capacity:
                value[event.rows] = 0
                if key == SUM_STATE and event.accumulator is not None:
                    start = event.accumulator.to(value.dtype)
                    if start.dim() == 1:  # one value per row, for all its columns
                        start = start.reshape(-1, *([1] * (value.dim() - 1)))
                    value[event.rows] = start

    def accumulators(self, rows: torch.Tensor, columns: bool = False) -> torch.Tensor | None:
        """Mean of Adagrad's ``sum`` over each row's columns, float32 ``(k,)``, or with
        ``columns`` the sums themselves ``(k, d)`` (None: the optimiser keeps no such state for
        the table, or has taken no step yet)."""
        value = self.optimizer.state.get(self.table.weight, {}).get(SUM_STATE)
        if not isinstance(value, torch.Tensor) or value.shape[0] != self.table.capacity:
            return None
        per_row = value[rows].reshape(len(rows), -1).float()
        return per_row if columns else per_row.mean(dim=1)
