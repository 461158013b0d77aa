"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leanrec.embeddings.base import TableFactory
from leanrec.models.base import DotProductRecommender
from leanrec.options import check_at_least


@dataclass
class MFConfig:
    """Configuration of :class:`MF`."""

    embedding_dim: int = 64
    """Width ``d`` of the user and item vectors."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "embedding_dim")


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
        super().__init__(n_users, n_items, config or MFConfig(), table_factory)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.all(), self.item_embedding.all()
