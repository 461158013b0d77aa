"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from leanrec.embeddings.base import TableFactory
from leanrec.embeddings.ragged import RaggedEmbedding
from leanrec.models.base import DotProductRecommender, PairwiseOutput
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

    def scores_from_packed_tables(self) -> bool:
        """True when the item table is packed: scores then come from its ``sum(d_i)`` values,
        never from a cache of ``(I, d_max)`` padded rows."""
        return isinstance(self.item_embedding, RaggedEmbedding)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """``(B,)`` -> ``(B, I)``. With a packed item table and outside training, scored from
        the packed values (:meth:`RaggedEmbedding.inner_products`): no ``(I, d_max)`` padded
        copy, only the output, the items' order by size and a bounded chunk beyond the tables;
        otherwise through the cached final embeddings."""
        if self.training or not self.scores_from_packed_tables():
            return super().score_all(users)
        assert isinstance(self.item_embedding, RaggedEmbedding)
        return self.item_embedding.inner_products(self.user_embedding.lookup(users))

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``<p_u, q_i>`` of each pair, ``(P,)`` and ``(P,)`` -> ``(P,)``, from two lookups
        (packed or not: no full row of scores)."""
        return (self.user_embedding.lookup(users) * self.item_embedding.lookup(items)).sum(-1)

    def pairwise(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> PairwiseOutput:
        """BPR scores of the batch. With sparse table gradients on (a row-wise optimiser,
        :mod:`leanrec.train.row_optim`), the vectors are looked up row by row, so the
        gradient holds the batch's rows only; otherwise the shared path over every row."""
        user_table, item_table = self.id_tables()
        if not (user_table.sparse_gradients or item_table.sparse_gradients):
            return super().pairwise(users, positives, negatives)
        u = user_table.lookup(users)  # (B, d)
        items = item_table.lookup(torch.cat([positives, negatives.reshape(-1)]))  # one gather
        positive = items[: len(positives)]  # (B, d)
        negative = items[len(positives) :].reshape(*negatives.shape, -1)  # (B, d) or (B, n, d)
        if negatives.dim() == 1:
            negative_scores = (u * negative).sum(-1)  # (B,)
        else:
            negative_scores = torch.einsum("bd,bnd->bn", u, negative)  # (B, n)
        l2 = u.pow(2).sum() + positive.pow(2).sum() + negative.pow(2).sum()
        return PairwiseOutput((u * positive).sum(-1), negative_scores, l2 / 2 / max(1, len(users)))
