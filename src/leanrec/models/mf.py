"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.models.base import DotProductRecommender


@dataclass
class MFConfig:
    """Configuration of :class:`MF`."""

    embedding_dim: int = 64
    """Width ``d`` of the user and item vectors."""


class MF(DotProductRecommender):
    """``score(u, i) = <p_u, q_i>`` with user table ``P (U, d)`` and item table ``Q (I, d)``."""

    name = "mf"
    config_class = MFConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: MFConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        config = config or MFConfig()
        super().__init__(n_users, n_items, config, table_factory)
        self.user_embedding = self.table_factory("user_embedding", n_users, config.embedding_dim)
        self.item_embedding = self.table_factory("item_embedding", n_items, config.embedding_dim)

    def id_tables(self) -> tuple[EmbeddingTable, EmbeddingTable]:
        return self.user_embedding, self.item_embedding

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.all(), self.item_embedding.all()
