"""NeuMF (He et al., WWW 2017): a GMF branch and an MLP branch fused by one output layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from leanrec.embeddings.base import TableFactory
from leanrec.models.base import PairwiseOutput, Recommender
from leanrec.options import check_at_least, check_dropout


@dataclass
class NeuMFConfig:
    """Configuration of :class:`NeuMF`."""

    embedding_dim: int = 64
    """Width of each of the four ID tables (GMF user/item, MLP user/item)."""
    mlp_layers: list[int] = field(default_factory=lambda: [128, 64, 32])
    """Hidden widths of the MLP branch (input is ``2 * embedding_dim``)."""
    dropout: float = 0.0
    """Dropout between MLP layers."""
    score_chunk: int = 128
    """Users scored at once in :meth:`NeuMF.score_all` (bounds the ``(B, I, d)`` intermediate)."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "embedding_dim", "mlp_layers", "score_chunk")
        check_dropout(self, "dropout")


class NeuMF(Recommender):
    """``y = h^T [p_u^G ⊙ q_i^G ; MLP([p_u^M ; q_i^M])]`` (paper Eq. 11).

    Four ID tables: ``gmf_user``, ``gmf_item``, ``mlp_user``, ``mlp_item``; every one is sized
    by an embedding-size policy and counts toward memory.
    """

    name = "neumf"
    config_class = NeuMFConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: NeuMFConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        config = config or NeuMFConfig()
        super().__init__(n_users, n_items, config, table_factory)
        d = config.embedding_dim
        self.gmf_user = self.table_factory("gmf_user", n_users, d)
        self.gmf_item = self.table_factory("gmf_item", n_items, d)
        self.mlp_user = self.table_factory("mlp_user", n_users, d)
        self.mlp_item = self.table_factory("mlp_item", n_items, d)
        layers: list[nn.Module] = []
        width = 2 * d
        for hidden in config.mlp_layers:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = hidden
        self.mlp = nn.Sequential(*layers)
        self.output = nn.Linear(d + width, 1)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of aligned ``users``/``items`` pairs of any equal shape ``S`` -> ``S``."""
        shape = users.shape
        u, i = users.reshape(-1), items.reshape(-1)
        gmf = self.gmf_user.lookup(u) * self.gmf_item.lookup(i)
        mlp = self.mlp(torch.cat([self.mlp_user.lookup(u), self.mlp_item.lookup(i)], dim=-1))
        return self.output(torch.cat([gmf, mlp], dim=-1)).reshape(shape)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        d = self.config.embedding_dim
        item_gmf = self.gmf_item.all()
        item_mlp = self.mlp_item.all()
        first = self.mlp[0] if len(self.mlp) else None
        out = []
        for chunk in users.split(self.config.score_chunk):
            gmf = self.gmf_user.lookup(chunk)[:, None, :] * item_gmf[None, :, :]
            if isinstance(first, nn.Linear):
                # split the first MLP layer: W [p; q] = W_u p + W_i q, computed once per side
                w_user, w_item = first.weight[:, :d], first.weight[:, d:]
                hidden = (
                    (self.mlp_user.lookup(chunk) @ w_user.T)[:, None, :]
                    + (item_mlp @ w_item.T)[None, :, :]
                    + first.bias
                )
                mlp = self.mlp[1:](hidden)
            else:
                user_mlp = self.mlp_user.lookup(chunk)[:, None, :].expand(-1, self.n_items, -1)
                mlp = self.mlp(torch.cat([user_mlp, item_mlp.expand(len(chunk), -1, -1)], -1))
            out.append(self.output(torch.cat([gmf, mlp], dim=-1)).squeeze(-1))
        return torch.cat(out, dim=0)

    def pairwise(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> PairwiseOutput:
        pos = self.score_pairs(users, positives)
        neg_users = users if negatives.dim() == 1 else users[:, None].expand_as(negatives)
        neg = self.score_pairs(neg_users, negatives)
        l2 = torch.zeros(())
        flat_neg = negatives.reshape(-1)
        for table, ids in (
            (self.gmf_user, users),
            (self.mlp_user, users),
            (self.gmf_item, positives),
            (self.mlp_item, positives),
            (self.gmf_item, flat_neg),
            (self.mlp_item, flat_neg),
        ):
            l2 = l2 + table.lookup(ids).pow(2).sum()
        return PairwiseOutput(pos, neg, l2 / 2 / max(1, len(users)))
