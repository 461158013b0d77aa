"""Embedding a :class:`~leanrec.data.behavior.BehaviorBatch` for the CTR models.

One :class:`BehaviorEmbedder` holds one :class:`~leanrec.embeddings.EmbeddingTable` per
vocabulary (the history shares the target item's table, history tags share the target tags'
table) and turns a batch of IDs into an :class:`EmbeddedBatch`:

* ``fields (B, F', d)``: the ``F`` categorical fields of ``sparse`` in column order, then the
  target's tags mean-pooled over its non-zero tag IDs as one more field (``F' = F + 1`` when the
  feature map has a tag field);
* ``history (B, N, d)``: per history position, item vector + mean-pooled tag vector; exactly 0
  on padded positions;
* ``history_mask (B, N)``: True on real positions;
* ``target (B, d)``: target item vector + its pooled tag vector, built like one history
  position so that attention can compare the two.

Tables are looked up with 1-d ID tensors only (the :class:`EmbeddingTable` contract) and padded
positions are never looked up, so neither the ID stored at a padded position nor the vector of
row 0 can change a model's output through the history.

Example (4 categorical fields, a tag field, ``N = 20``):
    >>> embedder = BehaviorEmbedder(samples.feature_map, embedding_dim=16)
    >>> inputs = embedder(samples.batch(np.arange(32)))
    >>> inputs.fields.shape, inputs.history.shape
    (torch.Size([32, 5, 16]), torch.Size([32, 20, 16]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from leanrec.data.behavior import BehaviorBatch, FeatureMap
from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.embeddings.full import FullEmbedding, FullTableFactory

Pooling = Literal["mean", "sum"]


def history_mask(batch: BehaviorBatch) -> torch.Tensor:
    """``(B, N)`` bool, True on real history positions.

    A position is real when it lies within the right-aligned ``history_length`` *and* holds a
    non-zero item ID, so both a stray ID in the padding and a missing (0) item inside the
    history are ignored.
    """
    items = batch.history_items
    n = items.shape[1]
    positions = torch.arange(n, device=items.device)
    within = positions[None, :] >= (n - batch.history_length)[:, None]
    return within & (items > 0)


@dataclass
class EmbeddedBatch:
    """A batch as vectors (see the module docstring for how each is built).

    Attributes:
        fields: ``(B, F', d)`` categorical fields + pooled target tags.
        history: ``(B, N, d)`` item + pooled tags per position; 0 on padding.
        history_mask: ``(B, N)`` bool, True on real positions.
        target: ``(B, d)`` target item + pooled target tags.
        first_order: ``(B, F' + 1)`` first-order (1-d) weights: one per field of ``fields``, then
            the history's (mean over real positions of item + pooled tag weights); None when
            the embedder has no first-order tables.
        l2: scalar, ``Σ |e|² / 2 / B`` over every vector looked up for this batch (0 when not
            requested).
    """

    fields: torch.Tensor
    history: torch.Tensor
    history_mask: torch.Tensor
    target: torch.Tensor
    first_order: torch.Tensor | None
    l2: torch.Tensor

    def pooled_history(self, mode: Pooling = "mean") -> torch.Tensor:
        """History vectors pooled over real positions, ``(B, d)`` (0 for an empty history)."""
        total = self.history.sum(dim=1)
        if mode == "sum":
            return total
        if mode == "mean":
            count = self.history_mask.sum(dim=1, keepdim=True).clamp(min=1)
            return total / count.to(total.dtype)
        raise ValueError(f"history pooling must be 'mean' or 'sum', got {mode!r}")

    def fields_with_history(self, mode: Pooling = "mean") -> torch.Tensor:
        """``fields`` plus the pooled history as one more field, ``(B, F' + 1, d)``."""
        return torch.cat([self.fields, self.pooled_history(mode)[:, None, :]], dim=1)


@dataclass
class _Lookup:
    """What one pass over a set of tables returns (width ``w``: ``d`` or 1)."""

    fields: torch.Tensor  # (B, F', w)
    history: torch.Tensor  # (B, N, w)
    target: torch.Tensor  # (B, w)
    squared_norm: torch.Tensor  # scalar


class BehaviorEmbedder(nn.Module):
    """Embedding tables of a :class:`FeatureMap` and the lookups that build an
    :class:`EmbeddedBatch`.

    Args:
        feature_map: the field layout; every categorical field and the tag field get a table
            of ``vocab_size`` rows unless ``shares_vocabulary_with`` names another field.
        embedding_dim: ``d``.
        table_factory: builds the ``d``-wide tables (``(name, rows, d) -> EmbeddingTable``);
            the tables are named after the field owning the vocabulary (``"item_id"``,
            ``"genres"``). Default: full tables with ``init_std``.
        first_order: also hold first-order (1-wide) tables for linear parts; these are always
            full tables (they are not sized by embedding-size policies) and are listed by
            :meth:`first_order_tables`, not :meth:`embedding_tables`.
        init_std: normal initialisation std of the default tables and the first-order tables.
    """

    def __init__(
        self,
        feature_map: FeatureMap,
        embedding_dim: int,
        table_factory: TableFactory | None = None,
        first_order: bool = False,
        init_std: float = 1e-4,
    ) -> None:
        super().__init__()
        self.feature_map = feature_map
        self.embedding_dim = embedding_dim
        categorical = feature_map.categorical
        if not categorical:
            raise ValueError("the feature map has no categorical field")
        self.target_column = feature_map.column(feature_map.target_field)
        self.column_tables = [self._owner(f.name) for f in categorical]
        self.item_table = self.column_tables[self.target_column]
        self.tag_table = self._owner(feature_map.tag_field) if feature_map.tag_field else None
        for spec in feature_map.fields:
            if spec.kind == "sequence" and self._owner(spec.name) != self.item_table:
                raise ValueError(
                    f"sequence field {spec.name!r} must share the vocabulary of the target field "
                    f"{feature_map.target_field!r}"
                )
        extra = [self.tag_table] if self.tag_table is not None else []
        owners = list(dict.fromkeys([*self.column_tables, *extra]))
        factory = table_factory or FullTableFactory(init_std)
        self.tables = nn.ModuleDict(
            {o: factory(o, feature_map.field(o).vocab_size, embedding_dim) for o in owners}
        )
        for name, table in self.tables.items():
            if table.embedding_dim != embedding_dim:
                raise ValueError(
                    f"table {name!r} has width {table.embedding_dim}, not {embedding_dim}"
                )
        self.linear_tables = (
            nn.ModuleDict(
                {
                    o: FullEmbedding(feature_map.field(o).vocab_size, 1, init_std=init_std)
                    for o in owners
                }
            )
            if first_order
            else None
        )

    def _owner(self, name: str) -> str:
        """The field whose vocabulary (and table) field ``name`` uses."""
        seen = {name}
        spec = self.feature_map.field(name)
        while spec.shares_vocabulary_with is not None:
            name = spec.shares_vocabulary_with
            if name in seen:
                raise ValueError(f"vocabulary sharing loops through {name!r}")
            seen.add(name)
            spec = self.feature_map.field(name)
        return name

    # ------------------------------------------------------------------ description
    @property
    def field_names(self) -> list[str]:
        """Names of the ``F'`` rows of :attr:`EmbeddedBatch.fields`."""
        names = [f.name for f in self.feature_map.categorical]
        if self.tag_table is not None:
            names.append(f"target_{self.feature_map.tag_field}")
        return names

    @property
    def num_fields(self) -> int:
        """``F'``."""
        return len(self.field_names)

    def embedding_tables(self) -> dict[str, EmbeddingTable]:
        """The ``d``-wide tables by vocabulary name."""
        return {name: table for name, table in self.tables.items()}  # type: ignore[misc]

    def first_order_tables(self) -> dict[str, EmbeddingTable]:
        """The 1-wide first-order tables by vocabulary name (empty without first order)."""
        if self.linear_tables is None:
            return {}
        return {name: table for name, table in self.linear_tables.items()}  # type: ignore[misc]

    # ------------------------------------------------------------------ lookups
    def forward(self, batch: BehaviorBatch, with_l2: bool = False) -> EmbeddedBatch:
        """Embed ``batch``; ``with_l2`` also sums the squared norms of the looked-up vectors."""
        mask = history_mask(batch)
        index = _BatchIndex.of(batch, mask, self.target_column, self.tag_table is not None)
        main = self._lookup(self.embedding_tables(), batch, index, with_l2)
        first_order = None
        if self.linear_tables is not None:
            linear = self._lookup(self.first_order_tables(), batch, index, False)
            count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(linear.history.dtype)
            history_weight = linear.history.sum(dim=1) / count  # (B, 1)
            first_order = torch.cat([linear.fields.squeeze(-1), history_weight], dim=1)
        return EmbeddedBatch(
            fields=main.fields,
            history=main.history,
            history_mask=mask,
            target=main.target,
            first_order=first_order,
            l2=main.squared_norm / 2 / max(1, len(batch)),
        )

    def _lookup(
        self,
        tables: dict[str, EmbeddingTable],
        batch: BehaviorBatch,
        index: _BatchIndex,
        with_l2: bool,
    ) -> _Lookup:
        sparse = batch.sparse
        b, n = batch.history_items.shape
        item_table = tables[self.item_table]
        width = item_table.embedding_dim
        squared = torch.zeros((), device=sparse.device)

        # target items and real history items in one lookup of the shared item table
        item_vectors = item_table.lookup(index.item_ids)  # (B + M, w)
        if with_l2:
            squared = squared + item_vectors.pow(2).sum()
        target_item = item_vectors[:b]

        columns: list[torch.Tensor] = []
        for column, owner in enumerate(self.column_tables):
            if column == self.target_column:
                columns.append(target_item)
                continue
            vectors = tables[owner].lookup(sparse[:, column])
            if with_l2:
                squared = squared + vectors.pow(2).sum()
            columns.append(vectors)

        combined = item_vectors  # target and real history positions, (B + M, w)
        if self.tag_table is not None:
            tag_vectors = tables[self.tag_table].lookup(index.tag_ids)  # (K, w)
            if with_l2:
                squared = squared + tag_vectors.pow(2).sum()
            pooled = item_vectors.new_zeros(item_vectors.shape).index_add(
                0, index.tag_rows, tag_vectors
            )
            pooled = pooled / index.tag_counts
            columns.append(pooled[:b])
            combined = item_vectors + pooled

        history = combined.new_zeros(b * n, width).index_copy(0, index.positions, combined[b:])
        return _Lookup(
            fields=torch.stack(columns, dim=1),
            history=history.view(b, n, width),
            target=combined[:b],
            squared_norm=squared,
        )


@dataclass
class _BatchIndex:
    """Integer indices of a batch shared by every set of tables (``M`` real history positions,
    ``K`` non-zero tags among the target's and the real positions' tags)."""

    positions: torch.Tensor  # (M,) flat index of each real history position in B * N
    item_ids: torch.Tensor  # (B + M,) target item IDs, then the real history items
    tag_ids: torch.Tensor  # (K,) non-zero tag IDs
    tag_rows: torch.Tensor  # (K,) row of each tag in [0, B + M), rows ordered like item_ids
    tag_counts: torch.Tensor  # (B + M, 1) float, tags per row (at least 1)

    @classmethod
    def of(
        cls, batch: BehaviorBatch, mask: torch.Tensor, target_column: int, with_tags: bool
    ) -> _BatchIndex:
        b, n = batch.history_items.shape
        positions = mask.reshape(-1).nonzero().squeeze(1)
        history_ids = batch.history_items.reshape(-1).index_select(0, positions)
        item_ids = torch.cat([batch.sparse[:, target_column], history_ids])
        empty = positions.new_zeros(0)
        if not with_tags:
            ones = torch.ones(len(item_ids), 1, device=item_ids.device)
            return cls(positions, item_ids, empty, empty, ones)
        g = batch.history_tags.shape[-1]
        history_tags = batch.history_tags.reshape(b * n, g).index_select(0, positions)
        tags = torch.cat([batch.target_tags, history_tags])  # (B + M, G), 0-padded
        present = tags > 0
        counts = present.sum(dim=1, keepdim=True).clamp(min=1).to(torch.float32)
        return cls(positions, item_ids, tags[present], present.nonzero()[:, 0], counts)


__all__ = ["BehaviorEmbedder", "EmbeddedBatch", "Pooling", "history_mask"]
