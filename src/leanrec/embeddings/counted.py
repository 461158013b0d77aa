"""What frequency-driven stream tables share: own rows behind an ID map, and per-ID counters.

:class:`~leanrec.embeddings.ThresholdEmbedding` (own row after ``n`` events) and
:class:`~leanrec.embeddings.HierarchicalSharedEmbedding` (AutoAssign+ positions) both keep an
ID's own row in a :class:`~leanrec.embeddings.GrowingEmbedding` and count every ID's events.
:class:`CountedRowsTable` holds that once: the row table ``unique``, the per-ID buffers that grow
with its ID map (``count_of_id`` and what a subclass adds), counting a chunk, and optimiser state
that follows the rows. Each subclass decides who holds a row and what the others read.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from leanrec.embeddings.base import StreamTable
from leanrec.embeddings.growing import GrowingEmbedding, OptimizerRowSync


class CountedRowsTable(StreamTable):
    """Own rows in ``unique`` plus per-ID state of the ID map's length (``id_capacity``).

    Args:
        num_embeddings: IDs known so far (``N``); grows with :meth:`extend_ids`.
        embedding_dim: vector width ``d``.
        min_capacity, compact_below, init_std, sparse_grad, generator: of the row table, as in
            :class:`~leanrec.embeddings.GrowingEmbedding` (its fallback vector is drawn first).

    Attributes:
        unique: the own rows, a :class:`~leanrec.embeddings.GrowingEmbedding`.
        count_of_id: events seen per ID (never reset), int32 ``(id_capacity,)``.
    """

    per_id_state: ClassVar[dict[str, torch.dtype]] = {"count_of_id": torch.int32}
    """Per-ID buffers in registration order (state-dict order), each ``(id_capacity,)`` zeros
    for a new ID; a subclass lists them in ``resized_on_load`` too."""

    count_of_id: torch.Tensor

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        min_capacity: int,
        compact_below: float,
        init_std: float,
        sparse_grad: bool,
        generator: torch.Generator | None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.unique = GrowingEmbedding(
            num_embeddings,
            embedding_dim,
            min_capacity=min_capacity,
            compact_below=compact_below,
            init_std=init_std,
            sparse_grad=sparse_grad,
            generator=generator,
        )
        for name, dtype in self.per_id_state.items():
            self.register_buffer(name, torch.zeros(self.unique.id_capacity, dtype=dtype))

    @property
    def min_capacity(self) -> int:
        """Smallest storage of the own rows (a power of two)."""
        return self.unique.min_capacity

    @property
    def compact_below(self) -> float:
        """The own rows compact when fewer than this share of them is used."""
        return self.unique.compact_below

    @property
    def init_std(self) -> float:
        """Std of the normal initialisation of rows not initialised from a shared vector."""
        return self.unique.init_std

    def counts(self, ids: torch.Tensor) -> torch.Tensor:
        """Events seen so far per ID; ``(B,)`` -> ``(B,)`` int64."""
        self._check_ids(ids)
        return self.count_of_id[ids].to(torch.int64)

    def extend_ids(self, num_embeddings: int) -> None:
        """Accept IDs up to ``num_embeddings - 1`` (no row, zero per-ID state); the per-ID
        buffers grow with the row table's ID map (by doubling)."""
        if num_embeddings <= self.num_embeddings:
            return
        old_id_capacity = self.unique.id_capacity
        self.unique.extend_ids(num_embeddings)
        if self.unique.id_capacity > old_id_capacity:
            for name in self.per_id_state:
                old = getattr(self, name)
                new = torch.zeros(self.unique.id_capacity, dtype=old.dtype, device=old.device)
                new[:old_id_capacity] = old
                setattr(self, name, new)
        self.num_embeddings = num_embeddings

    def _count_events(self, ids: torch.Tensor) -> torch.Tensor:
        """Check the chunk's ``(n,)`` IDs and add their events to ``count_of_id``; returns the
        distinct IDs, sorted ``(m,)``."""
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        self._check_ids(ids)
        distinct, times = torch.unique(ids, return_counts=True)
        self.count_of_id[distinct] += times.to(torch.int32)
        return distinct

    def row_sync(self, optimizer: torch.optim.Optimizer) -> None:
        """Per-row optimiser state of the own rows follows them (:class:`OptimizerRowSync`)."""
        OptimizerRowSync(optimizer, self.unique)
