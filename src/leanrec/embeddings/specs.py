"""Rebuild tables from their :meth:`~leanrec.embeddings.EmbeddingTable.spec`.

A saved model records each table's spec; loading builds empty tables of the right kind and
layout, then ``load_state_dict`` fills them. This is how a model saved with masked or packed
tables loads back without the caller knowing how they were stored. Stream tables (growing,
hierarchical, admission, hashed) load the stored per-ID state and capacities as they are, so a
loaded model serves exactly what was saved, including an ID's shared vector when it has no row.
"""

from __future__ import annotations

from typing import Any

import torch

from leanrec.embeddings.admission import EvictingEmbedding, ThresholdEmbedding
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.full import FullEmbedding
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.embeddings.hashed import HashedEmbedding, QREmbedding
from leanrec.embeddings.hierarchical import HierarchicalSharedEmbedding
from leanrec.embeddings.masked import MaskedEmbedding
from leanrec.embeddings.pruned import ElementMaskedEmbedding, SoftThresholdEmbedding
from leanrec.embeddings.ragged import RaggedEmbedding


def table_from_spec(
    spec: dict[str, Any], num_embeddings: int, embedding_dim: int
) -> EmbeddingTable:
    """An empty table of the kind ``spec`` names, ready for ``load_state_dict``."""
    kind = spec.get("kind")
    if kind == "full":
        return FullEmbedding(num_embeddings, embedding_dim)
    if kind == "masked":
        return MaskedEmbedding(num_embeddings, embedding_dim)
    if kind == "element_masked":
        return ElementMaskedEmbedding(
            torch.zeros(num_embeddings, embedding_dim),
            torch.ones(num_embeddings, embedding_dim, dtype=torch.bool),
        )
    if kind == "soft_threshold":
        return SoftThresholdEmbedding(torch.zeros(num_embeddings, embedding_dim))
    if kind == "ragged":
        # placeholder layout; RaggedEmbedding adopts the stored shapes when loading
        sizes = torch.zeros(num_embeddings, dtype=torch.int64)
        return RaggedEmbedding(sizes, embedding_dim, values=torch.zeros(0))
    # stream tables: capacities and per-ID state are adopted from the stored state dict
    if kind == "growing":
        return GrowingEmbedding(
            num_embeddings,
            embedding_dim,
            min_capacity=spec["min_capacity"],
            compact_below=spec["compact_below"],
            init_std=spec["init_std"],
            allocate_on_observe=spec.get("allocate_on_observe", False),
        )
    if kind == "hierarchical":
        return HierarchicalSharedEmbedding(
            num_embeddings,
            embedding_dim,
            levels=spec["levels"],
            max_bytes=spec["max_bytes"],
            min_capacity=spec["min_capacity"],
            compact_below=spec["compact_below"],
            init_std=spec["init_std"],
        )
    if kind == "threshold":
        return ThresholdEmbedding(
            num_embeddings,
            embedding_dim,
            threshold=spec["threshold"],
            init_from_shared=spec["init_from_shared"],
            min_capacity=spec["min_capacity"],
            compact_below=spec["compact_below"],
            init_std=spec["init_std"],
        )
    if kind == "evicting":
        return EvictingEmbedding(
            num_embeddings,
            embedding_dim,
            capacity=spec["capacity"],
            policy=spec["policy"],
            init_from_shared=spec["init_from_shared"],
            init_std=spec["init_std"],
        )
    if kind == "hashed":
        return HashedEmbedding(
            num_embeddings,
            embedding_dim,
            num_buckets=spec["num_buckets"],
            seed=spec["seed"],
            init_std=spec["init_std"],
        )
    if kind == "qr":
        return QREmbedding(
            num_embeddings,
            embedding_dim,
            num_remainders=spec["num_remainders"],
            num_quotients=spec["num_quotients"],
            combine=spec["combine"],
            init_std=spec["init_std"],
        )
    raise ValueError(
        f"unknown embedding table kind {kind!r} (known: full, masked, ragged, element_masked, "
        "soft_threshold, growing, hierarchical, threshold, evicting, hashed, qr)"
    )


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
