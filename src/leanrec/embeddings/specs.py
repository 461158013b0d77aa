"""Rebuild tables from their :meth:`~leanrec.embeddings.EmbeddingTable.spec`.

A saved model records each table's spec; loading builds empty tables of the right kind and
layout, then ``load_state_dict`` fills them. This is how a model saved with masked or packed
tables loads back without the caller knowing how they were stored. Stream tables (growing,
hierarchical, admission, hashed) load the stored per-ID state and capacities as they are, so a
loaded model serves exactly what was saved, including an ID's shared vector when it has no row.
"""

from __future__ import annotations

from typing import Any

from leanrec.embeddings.admission import EvictingEmbedding, ThresholdEmbedding
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.full import FullEmbedding
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.embeddings.hashed import HashedEmbedding, QREmbedding
from leanrec.embeddings.hierarchical import HierarchicalSharedEmbedding
from leanrec.embeddings.masked import MaskedEmbedding
from leanrec.embeddings.pruned import ElementMaskedEmbedding, SoftThresholdEmbedding
from leanrec.embeddings.ragged import RaggedEmbedding

TABLE_KINDS: dict[str, type[EmbeddingTable]] = {
    table.kind: table
    for table in (
        FullEmbedding,
        MaskedEmbedding,
        RaggedEmbedding,
        ElementMaskedEmbedding,
        SoftThresholdEmbedding,
        GrowingEmbedding,
        HierarchicalSharedEmbedding,
        ThresholdEmbedding,
        EvictingEmbedding,
        HashedEmbedding,
        QREmbedding,
    )
}
"""Every saveable table class by its spec ``kind``; each rebuilds itself
(:meth:`~leanrec.embeddings.EmbeddingTable.from_spec`)."""


def table_from_spec(
    spec: dict[str, Any], num_embeddings: int, embedding_dim: int
) -> EmbeddingTable:
    """An empty table of the kind ``spec`` names, ready for ``load_state_dict``."""
    kind = spec.get("kind")
    table = TABLE_KINDS.get(kind) if isinstance(kind, str) else None
    if table is None:
        raise ValueError(f"unknown embedding table kind {kind!r} (known: {', '.join(TABLE_KINDS)})")
    return table.from_spec(spec, num_embeddings, embedding_dim)


class SpecTableFactory:
    """Table factory building each named table from a recorded spec (full when unrecorded)."""

    def __init__(self, specs: dict[str, dict[str, Any]]) -> None:
        self.specs = specs

    def __call__(self, name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        spec = self.specs.get(name, {"kind": "full"})
        return table_from_spec(spec, num_embeddings, embedding_dim)


class MaskedTableFactory:
    """Builds :class:`MaskedEmbedding` tables (every size ``d_max`` until set).

    Args:
        init_std: normal initialisation std (``None``: Xavier-uniform).
        prefix_dropout: train every prefix of each row (see :class:`MaskedEmbedding`).
    """

    def __init__(self, init_std: float | None = 0.1, prefix_dropout: bool = False) -> None:
        self.init_std = init_std
        self.prefix_dropout = prefix_dropout

    def __call__(self, name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return MaskedEmbedding(
            num_embeddings,
            embedding_dim,
            init_std=self.init_std,
            prefix_dropout=self.prefix_dropout,
        )
