"""NGCF (Wang et al., SIGIR 2019): graph propagation with feature transforms and affinity terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F

from leanrec.embeddings.base import TableFactory
from leanrec.models.graph import (
    DEFAULT_SAMPLED_ABOVE_EDGES,
    GraphRecommender,
    SampledHops,
    check_propagation,
)
from leanrec.options import check_at_least, check_dropout


@dataclass
class NGCFConfig:
    """Configuration of :class:`NGCF` (paper defaults)."""

    embedding_dim: int = 64
    """Width of the layer-0 ID embeddings."""
    layer_sizes: list[int] = field(default_factory=lambda: [64, 64, 64])
    """Output width of each propagation layer (paper: three layers of 64)."""
    message_dropout: float = 0.1
    """Dropout on each layer's output during training (paper Sec. 2.4.2)."""
    propagation: str = "auto"
    """Training propagation: ``"full"`` (the whole graph at every step, as in the paper),
    ``"sampled"`` (the batch's neighbourhood, ``fanout`` neighbours per node and hop; the
    aggregated ``L E`` equals full propagation in expectation), ``"snapshot"`` (a full
    propagation taken per epoch, corrected through the edges among the batch's own nodes) or
    ``"auto"`` (full up to ``sampled_above_edges`` training edges, snapshot above). Evaluation
    propagates in full."""
    fanout: int = 10
    """Neighbours kept per node and hop when training samples."""
    snapshots_per_epoch: int = 1
    """With ``propagation="snapshot"``: full propagations per epoch's worth of training
    interactions (the first at the epoch's start); more keep the neighbours outside the batch
    fresher, each at the cost of one forward propagation over the graph."""
    sampled_above_edges: int = DEFAULT_SAMPLED_ABOVE_EDGES
    """With ``propagation="auto"``: train on snapshots when the training graph has more edges
    than this (below it a full propagation per step costs about as much and is exact)."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "embedding_dim", "layer_sizes")
        check_dropout(self, "message_dropout")
        check_propagation(self)


class NGCF(GraphRecommender):
    """Layer ``l``: ``E' = LeakyReLU((L + I) E W1 + (L E ⊙ E) W2)`` (paper Eq. 7), L2-normalised;
    the final representation concatenates all layers (Eq. 9), score ``<e_u, e_i>``.
    """

    name = "ngcf"
    config_class = NGCFConfig

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: NGCFConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        config = config or NGCFConfig()
        super().__init__(n_users, n_items, config, table_factory)
        widths = [config.embedding_dim, *config.layer_sizes]
        self.graph_weights = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        self.bilinear_weights = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        for layer in [*self.graph_weights, *self.bilinear_weights]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.dropout = nn.Dropout(config.message_dropout)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        graph = self.require_graph()
        ego = torch.cat([self.user_embedding.all(), self.item_embedding.all()], dim=0)
        layers = [ego]
        for w1, w2 in zip(self.graph_weights, self.bilinear_weights):
            side = graph.matmul(ego)
            ego = F.leaky_relu(w1(side + ego) + w2(side * ego), negative_slope=0.2)
            ego = self.dropout(ego)
            layers.append(F.normalize(ego, p=2, dim=1))
        final = torch.cat(layers, dim=1)
        return final[: self.n_users], final[self.n_users :]

    @property
    def n_hops(self) -> int:
        return len(self.config.layer_sizes)

    def propagate_sampled(self, hops: SampledHops) -> torch.Tensor:
        """The layers of :meth:`final_embeddings` on shrinking node sets: layer ``l`` lives on
        ``hops.nodes[L - l]``, its ``L E`` term from the sampled operator, its ``E`` term the
        first rows of the layer below."""
        n_seeds = len(hops.nodes[0])
        ego = self.node_embeddings(hops.nodes[-1])
        layers = [ego[:n_seeds]]
        for operator, w1, w2 in zip(
            reversed(hops.operators), self.graph_weights, self.bilinear_weights
        ):
            side = operator.matmul(ego)
            ego = ego[: operator.shape[0]]
            ego = F.leaky_relu(w1(side + ego) + w2(side * ego), negative_slope=0.2)
            ego = self.dropout(ego)
            layers.append(F.normalize(ego[:n_seeds], p=2, dim=1))
        return torch.cat(layers, dim=1)

    def propagation_layer(
        self, index: int, side: torch.Tensor, ego: torch.Tensor, training: bool
    ) -> torch.Tensor:
        """``LeakyReLU(W1 (L E + E) + W2 (L E ⊙ E))`` of layer ``index``, with message dropout
        when ``training``."""
        w1, w2 = self.graph_weights[index], self.bilinear_weights[index]
        ego = F.leaky_relu(w1(side + ego) + w2(side * ego), negative_slope=0.2)
        return self.dropout(ego) if training else ego

    def readout(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """Layer 0 and the L2-normalised layers ``1..L``, concatenated."""
        return torch.cat([layers[0], *(F.normalize(x, p=2, dim=1) for x in layers[1:])], dim=1)
