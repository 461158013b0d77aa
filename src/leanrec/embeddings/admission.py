"""Admission by frequency or by use: who gets a row of their own, decided from the stream.

* :class:`ThresholdEmbedding`: an ID gets its own row once it has been seen ``n`` times (the
  frequency filter of production feature stores); until then it reads one shared default row.
  Rows live in a :class:`~leanrec.embeddings.GrowingEmbedding` and are never taken back
  (counts never reset), so bytes grow with the IDs that reached ``n``.
* :class:`EvictingEmbedding`: a fixed table of ``C`` rows with LFU or LRU eviction and a shared
  fallback row (the managed collision scheme of large production systems). A new ID is always
  admitted, evicting the least frequently (LFU) or least recently (LRU) used resident; an
  evicted ID reads the fallback row again. Its bytes are bounded by ``C`` whatever the number
  of IDs: the ID -> row map is a sorted array of the ``C`` resident IDs (binary search), not a
  per-ID array. Its ID and row indices are int32 (at most ``2**31`` IDs).

Both update their state in :meth:`observe`, once per chunk, vectorised (``torch.unique`` and
scatter over the chunk, selection over the ``C`` rows; no per-event Python loop).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from leanrec.embeddings.base import StreamTable
from leanrec.embeddings.counted import CountedRowsTable
from leanrec.embeddings.growing import OptimizerRowSync, RowListener, RowReset, check_id_space


class ThresholdEmbedding(CountedRowsTable):
    """Own row after ``n`` occurrences, one shared default row before.

    :meth:`observe` counts the chunk's events per ID; every ID whose count reaches the
    threshold then gets a row, initialised from the shared default row it read until then
    (``init_from_shared``, so its vector does not jump) or at random. Admission happens once per
    chunk: an ID crossing ``n`` inside a chunk holds its row for the chunk's training.

    Bytes (float32 rows of width ``d``; ``capacity`` and ``id_capacity`` as in
    :class:`GrowingEmbedding`)::

        nbytes = 4*d*capacity + 4*capacity   # rows and their row -> ID map (int32)
               + 4*d                         # the shared default row
               + (4 + 4) * id_capacity       # per ID: row (int32) and count (int32)

    Args:
        num_embeddings: IDs known so far (``N``); grows with :meth:`extend_ids`.
        embedding_dim: vector width ``d``.
        threshold: ``n >= 1``, occurrences before an ID gets its row (1: every ID on first
            sight, the all-unique table plus counters).
        init_from_shared: a new row starts as the shared default row (else ``N(0, init_std)``).
        min_capacity, compact_below, init_std, sparse_grad, generator: as in
            :class:`GrowingEmbedding`.

    Example (``n = 2``, ``d = 2``, 3 IDs; by hand ``8 + 8*3 = 32`` bytes before any row):
        >>> table = ThresholdEmbedding(3, 2, threshold=2, min_capacity=1)
        >>> table.nbytes()
        32
        >>> table.observe(torch.tensor([0, 1, 0]))  # ID 0 seen twice: a row
        >>> table.has_row(torch.arange(3)).tolist(), table.nbytes()  # + 4*2*1 + 4*1
        ([True, False, False], 44)
    """

    kind = "threshold"
    spec_options = ("threshold", "init_from_shared", "min_capacity", "compact_below", "init_std")
    resized_on_load = ("count_of_id",)

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        threshold: int,
        init_from_shared: bool = True,
        min_capacity: int = 16,
        compact_below: float = 0.5,
        init_std: float = 0.01,
        sparse_grad: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold}")
        super().__init__(
            num_embeddings,
            embedding_dim,
            min_capacity,
            compact_below,
            init_std,
            sparse_grad,
            generator,
        )
        self.threshold = threshold
        self.init_from_shared = init_from_shared

    @property
    def shared(self) -> torch.Tensor:
        """The shared default row, shape ``(1, d)`` (the row table's fallback vector)."""
        return self.unique.fallback

    def has_row(self, ids: torch.Tensor) -> torch.Tensor:
        """Whether each ID holds its own row; ``(B,)`` -> ``(B,)`` bool."""
        return self.unique.has_row(ids)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` IDs -> ``(B, d)``: own row where held, the shared default row elsewhere."""
        return self.unique.lookup(ids)

    def num_parameters(self) -> int:
        """The used rows and the shared default row."""
        return self.unique.num_parameters()

    def nbytes(self) -> int:
        """``(4d + 4)*capacity + 4d + 8*id_capacity`` for float32 rows (see class)."""
        return super().nbytes()

    def observe(self, ids: torch.Tensor) -> None:
        """Count the chunk's events; IDs whose count reached ``n`` get a row (increasing ID
        order)."""
        distinct = self._count_events(ids)
        admitted = distinct[
            (self.count_of_id[distinct] >= self.threshold) & (self.unique.row_of_id[distinct] < 0)
        ]
        if len(admitted):
            init = self.shared.detach().expand(len(admitted), -1) if self.init_from_shared else None
            self.unique.allocate(admitted, init=init)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, threshold={self.threshold}"


EvictionPolicy = Literal["lfu", "lru"]


def _lowest(primary: torch.Tensor, secondary: torch.Tensor | None, k: int) -> torch.Tensor:
    """Indices of the ``k`` smallest entries by ``(primary, secondary)``, ``k <= len``.

    O(n): a ``topk`` finds the ``k``-th primary value ``t``; everything below ``t`` is taken,
    and the rest of the ``k`` among the entries equal to ``t`` by smallest ``secondary``.
    """
    if k <= 0:
        return torch.zeros(0, dtype=torch.int64, device=primary.device)
    if k >= len(primary):
        return torch.arange(len(primary), device=primary.device)
    cutoff = torch.topk(primary, k, largest=False).values.max()
    below = torch.nonzero(primary < cutoff).reshape(-1)
    tied = torch.nonzero(primary == cutoff).reshape(-1)
    still = k - len(below)
    if secondary is None:
        picked = tied[:still]
    else:
        picked = tied[torch.topk(secondary[tied], still, largest=False).indices]
    return torch.cat([below, picked])


class EvictingEmbedding(StreamTable):
    """``C`` rows for the most frequently (LFU) or recently (LRU) used IDs, and a fallback row.

    Per chunk (:meth:`observe`), residents update their statistics (LFU: uses since admitted;
    LRU: the global index of their last event) and the chunk's other IDs (newcomers) arrive
    with their chunk's statistics. While rows are free, everyone gets one. Otherwise the rows
    go, in one vectorised selection, to what event-by-event processing leaves at the end of the
    chunk:

    * LRU: the ``C`` most recently used IDs (exactly the event-by-event LRU set);
    * LFU (always admit, evict the fewest uses, ties the least recent): the newcomer that
      arrived last (it evicted someone and nobody evicted it), and for the other ``C - 1``
      rows the most used of the residents and the other newcomers (ties: most recent). This is
      exactly event-by-event LFU when every ID's uses are those at the end of the chunk; with
      one event per chunk it is exact.

    Statistics belong to rows: an evicted ID forgets its uses (bounded state), and one that
    comes back starts again from its chunk's uses.

    Bytes (float32 rows of width ``d``), independent of the number of IDs::

        nbytes = 4*d*C + 4*d              # rows and the shared fallback row
               + 4*C * 3                  # row -> ID, sorted resident IDs, their rows (int32)
               + 8*C                      # last use per row (int64: an event clock)
               + 8*C  (LFU only)          # uses per row (int64)

    Args:
        num_embeddings: IDs known so far (``N``; only the range checked by lookups).
        embedding_dim: vector width ``d``.
        capacity: ``C`` rows, allocated at construction (a fixed-size table).
        policy: ``"lfu"`` or ``"lru"``.
        init_from_shared: an admitted ID's row starts as the fallback row (else random).
        init_std: std of the normal initialisation of the fallback row (and of random rows).
        sparse_grad: sparse gradients for the rows.
        generator: RNG for initialisations.

    Example (``C = 2``, LRU: the third ID evicts the least recently used):
        >>> table = EvictingEmbedding(10, 4, capacity=2, policy="lru")
        >>> table.observe(torch.tensor([3, 5, 3]))      # 5 last used at event 1, 3 at event 2
        >>> table.observe(torch.tensor([7]))            # 7 evicts 5
        >>> table.resident(torch.tensor([3, 5, 7])).tolist()
        [True, False, True]
        >>> table.nbytes()  # 4*4*2 + 4*4 + 4*2*3 + 8*2
        88
    """

    kind = "evicting"
    spec_options = ("capacity", "policy", "init_from_shared", "init_std")

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        capacity: int,
        policy: EvictionPolicy = "lfu",
        init_from_shared: bool = True,
        init_std: float = 0.01,
        sparse_grad: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if capacity <= 0 or embedding_dim <= 0:
            raise ValueError("need capacity > 0 and embedding_dim > 0")
        if policy not in ("lfu", "lru"):
            raise ValueError(f"policy must be 'lfu' or 'lru', got {policy!r}")
        check_id_space(num_embeddings, type(self).__name__)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.policy = policy
        self.init_from_shared = init_from_shared
        self.init_std = init_std
        self.sparse_grad = sparse_grad
        self.generator = generator
        self.events_seen = 0
        """Events observed so far: the clock of ``last_use``."""
        self.weight = nn.Parameter(torch.zeros(capacity, embedding_dim))
        self.fallback = nn.Parameter(torch.empty(1, embedding_dim))
        with torch.no_grad():
            self.fallback.normal_(0.0, init_std, generator=generator)
        self.id_of_row: torch.Tensor
        self.sorted_ids: torch.Tensor
        self.row_of_sorted: torch.Tensor
        self.last_use: torch.Tensor
        self.use_count: torch.Tensor
        self.register_buffer("id_of_row", torch.full((capacity,), -1, dtype=torch.int32))
        self.register_buffer("sorted_ids", torch.full((capacity,), -1, dtype=torch.int32))
        self.register_buffer("row_of_sorted", torch.arange(capacity, dtype=torch.int32))
        self.register_buffer("last_use", torch.full((capacity,), -1, dtype=torch.int64))
        self.register_buffer(
            "use_count", torch.zeros(capacity if policy == "lfu" else 0, dtype=torch.int64)
        )
        self._listeners: list[RowListener] = []

    @property
    def capacity(self) -> int:
        """Rows ``C``."""
        return int(self.weight.shape[0])

    @property
    def used_rows(self) -> int:
        """Rows holding an ID."""
        return int((self.id_of_row >= 0).sum())

    def add_listener(self, listener: RowListener) -> None:
        """Call ``listener`` with a :class:`RowReset` whenever rows are given to new IDs."""
        self._listeners.append(listener)

    def row_sync(self, optimizer: torch.optim.Optimizer) -> None:
        """A row given to a new ID starts with fresh optimiser state (rows never move)."""
        OptimizerRowSync(optimizer, self)

    # ------------------------------------------------------------------ lookups
    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Row of each ID, -1 if not resident; ``(B,)`` -> ``(B,)`` int64 (binary search)."""
        self._check_ids(ids)
        ids = ids.to(torch.int64)
        at = torch.searchsorted(self.sorted_ids, ids).clamp(max=self.capacity - 1)
        found = self.sorted_ids[at] == ids
        return torch.where(found, self.row_of_sorted[at].to(torch.int64), -1)

    def resident(self, ids: torch.Tensor) -> torch.Tensor:
        """Whether each ID holds a row; ``(B,)`` -> ``(B,)`` bool."""
        return self.rows(ids) >= 0

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` IDs -> ``(B, d)``: own row when resident, the fallback row otherwise."""
        rows = self.rows(ids)
        own = nn.functional.embedding(rows.clamp(min=0), self.weight, sparse=self.sparse_grad)
        return torch.where((rows >= 0).unsqueeze(1), own, self.fallback)

    def num_parameters(self) -> int:
        """Values that carry information: the used rows and the fallback row."""
        return (self.used_rows + 1) * self.embedding_dim

    def nbytes(self) -> int:
        """``4d*C + 4d + 20*C`` (LRU) or ``+ 28*C`` (LFU), see class."""
        return super().nbytes()

    # ------------------------------------------------------------------ stream
    def extend_ids(self, num_embeddings: int) -> None:
        """Accept IDs up to ``num_embeddings - 1`` (nothing is stored per ID; at most ``2**31``
        IDs, held as int32 while resident)."""
        check_id_space(num_embeddings, type(self).__name__)
        self.num_embeddings = max(self.num_embeddings, num_embeddings)

    def observe(self, ids: torch.Tensor) -> None:
        """Update residents' statistics with the chunk ``(n,)`` (event order), then give the
        rows to the residents and newcomers that keep them (see class)."""
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        self._check_ids(ids)
        n = len(ids)
        if n == 0:
            return
        distinct, inverse, times = torch.unique(ids, return_inverse=True, return_counts=True)
        positions = torch.arange(n)
        empty = torch.zeros(len(distinct), dtype=torch.int64)
        last = self.events_seen + empty.scatter_reduce(
            0, inverse, positions, reduce="amax", include_self=False
        )
        rows = self.rows(distinct)
        held = rows >= 0
        self.last_use[rows[held]] = last[held]
        if self.policy == "lfu":
            self.use_count[rows[held]] += times[held]
        if not bool(held.all()):
            first = empty.scatter_reduce(0, inverse, positions, reduce="amin", include_self=False)
            newcomer = ~held
            self._admit(distinct[newcomer], times[newcomer], last[newcomer], first[newcomer])
        self.events_seen += n

    def _admit(
        self,
        new_ids: torch.Tensor,
        new_uses: torch.Tensor,
        new_last: torch.Tensor,
        new_first: torch.Tensor,
    ) -> None:
        """Newcomers (``(m,)`` IDs, uses, last and first event) take free rows, or compete with
        the residents for the ``C`` rows (see class)."""
        occupied = torch.nonzero(self.id_of_row >= 0).reshape(-1)
        free = torch.nonzero(self.id_of_row < 0).reshape(-1)
        if len(new_ids) <= len(free):
            self._give(free[: len(new_ids)], new_ids, new_uses, new_last)
            return
        # the pool: residents first, then newcomers; the lowest priorities beyond C go
        last = torch.cat([self.last_use[occupied], new_last])
        excess = len(last) - self.capacity
        if self.policy == "lru":
            dropped = _lowest(last, None, excess)
        else:
            uses = torch.cat([self.use_count[occupied], new_uses])
            arrived_last = len(occupied) + int(torch.argmax(new_first))
            uses[arrived_last] = torch.iinfo(torch.int64).max  # always admitted
            dropped = _lowest(uses, last, excess)
        kept = torch.ones(len(last), dtype=torch.bool)
        kept[dropped] = False
        evicted = occupied[~kept[: len(occupied)]]
        admitted = kept[len(occupied) :]
        self.id_of_row[evicted] = -1
        rows = torch.cat([free, evicted])
        self._give(rows, new_ids[admitted], new_uses[admitted], new_last[admitted])

    def _give(
        self, rows: torch.Tensor, ids: torch.Tensor, uses: torch.Tensor, last: torch.Tensor
    ) -> None:
        """Rows ``(k,)`` start afresh for ``ids`` ``(k,)`` with their statistics."""
        if len(rows) == 0:
            return
        with torch.no_grad():
            if self.init_from_shared:
                self.weight[rows] = self.fallback.detach().expand(len(rows), -1)
            else:
                values = torch.empty(len(rows), self.embedding_dim, device=self._device())
                self.weight[rows] = values.normal_(0.0, self.init_std, generator=self.generator)
        self.id_of_row[rows] = ids.to(torch.int32)
        self.last_use[rows] = last
        if self.policy == "lfu":
            self.use_count[rows] = uses
        self._reindex(rows, ids)
        for listener in self._listeners:
            listener(RowReset(rows))

    def _reindex(self, rows: torch.Tensor, ids: torch.Tensor) -> None:
        """Update the sorted ID -> row map after ``rows`` ``(k,)`` were given to ``ids``: drop
        the entries of those rows, merge the ``k`` new ones in (O(C) per chunk, no sort of
        the ``C`` entries; free rows stay first with ID -1)."""
        changed = torch.zeros(self.capacity, dtype=torch.bool)
        changed[rows] = True
        stays = ~changed[self.row_of_sorted]
        kept_ids, kept_rows = self.sorted_ids[stays], self.row_of_sorted[stays]
        order = torch.argsort(ids)
        new_ids, new_rows = ids[order].to(torch.int32), rows[order].to(torch.int32)
        at = torch.searchsorted(kept_ids, new_ids) + torch.arange(len(new_ids))
        is_new = torch.zeros(self.capacity, dtype=torch.bool)
        is_new[at] = True
        sorted_ids = torch.empty_like(self.sorted_ids)
        row_of_sorted = torch.empty_like(self.row_of_sorted)
        sorted_ids[at], row_of_sorted[at] = new_ids, new_rows
        sorted_ids[~is_new], row_of_sorted[~is_new] = kept_ids, kept_rows
        self.sorted_ids, self.row_of_sorted = sorted_ids, row_of_sorted

    # ------------------------------------------------------------------ persistence
    def get_extra_state(self) -> dict[str, int]:
        return {**super().get_extra_state(), "events_seen": self.events_seen}

    def set_extra_state(self, state: dict[str, int]) -> None:
        super().set_extra_state(state)
        self.events_seen = int(state["events_seen"])

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, capacity={self.capacity}, policy={self.policy}, "
            f"used_rows={self.used_rows}"
        )
