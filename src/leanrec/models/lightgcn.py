"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised user-item graph."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leanrec.data.interactions import Interactions
from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.models.base import DotProductRecommender
from leanrec.models.graph import SparseGraph, normalized_adjacency


@dataclass
class LightGCNConfig:
    """Configuration of :class:`LightGCN` (paper defaults)."""

    embedding_dim: int = 64
    """Width ``d`` of the layer-0 ID embeddings."""
    n_layers: int = 3
    """Propagation depth ``K`` (paper Eq. 8)."""


class LightGCN(DotProductRecommender):
    """``e^(k+1) = Â e^(k)``; final ``e = mean_k e^(k)`` for ``k = 0..K`` (paper Eq. 7-8).

    The adjacency ``Â = D^{-1/2} A D^{-1/2}`` is sparse, built by :meth:`attach` from the
    training interactions; scores are ``<e_u, e_i>``.
    """

    name = "lightgcn"
    config_class = LightGCNConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: LightGCNConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        config = config or LightGCNConfig()
        super().__init__(n_users, n_items, config, table_factory)
        self.user_embedding = self.table_factory("user_embedding", n_users, config.embedding_dim)
        self.item_embedding = self.table_factory("item_embedding", n_items, config.embedding_dim)
        self.graph: SparseGraph | None = None

    def attach(self, train: Interactions) -> None:
        super().attach(train)
        self.graph = SparseGraph(normalized_adjacency(train))

    def after_load(self) -> None:
        super().after_load()
        self.graph = SparseGraph(_adjacency_from_seen(self))

    def id_tables(self) -> tuple[EmbeddingTable, EmbeddingTable]:
        return self.user_embedding, self.item_embedding

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.graph is None:
            raise RuntimeError("LightGCN needs its training graph: call model.attach(train) first")
        layer = torch.cat([self.user_embedding.all(), self.item_embedding.all()], dim=0)
        total = layer
        for _ in range(self.config.n_layers):
            layer = self.graph.matmul(layer)
            total = total + layer
        mean = total / (self.config.n_layers + 1)
        return mean[: self.n_users], mean[self.n_users :]


def _adjacency_from_seen(model: DotProductRecommender):  # type: ignore[no-untyped-def]
    """Rebuild the normalised adjacency from a model's stored seen-item CSR."""
    seen = model.seen_matrix().tocoo()
    from leanrec.data.interactions import IdVocabulary

    train = Interactions(
        users=seen.row.astype("int64"),
        items=seen.col.astype("int64"),
        user_vocab=IdVocabulary.identity(model.n_users, "user"),
        item_vocab=IdVocabulary.identity(model.n_items, "item"),
    )
    return normalized_adjacency(train)
