"""LightGCN (He et al., SIGIR 2020): linear propagation over the normalised user-item graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from leanrec.embeddings.base import TableFactory
from leanrec.models.graph import (
    DEFAULT_SAMPLED_ABOVE_EDGES,
    GraphRecommender,
    SampledHops,
    SparseGraph,
    check_propagation,
)
from leanrec.options import check_at_least


@dataclass
class LightGCNConfig:
    """Configuration of :class:`LightGCN` (paper defaults)."""

    embedding_dim: int = 64
    """Width ``d`` of the layer-0 ID embeddings."""
    n_layers: int = 3
    """Propagation depth ``K`` (paper Eq. 8)."""
    propagation: str = "auto"
    """Training propagation: ``"full"`` (the whole graph at every step, as in the paper),
    ``"sampled"`` (the batch's ``K``-hop neighbourhood with ``fanout`` neighbours per node and
    hop, equal to full propagation in expectation), ``"snapshot"`` (a full propagation
    taken per epoch, corrected through the edges among the batch's own nodes:
    :class:`~leanrec.models.graph.PropagationSnapshot`) or ``"auto"`` (full up to
    ``sampled_above_edges`` training edges, snapshot above, so an epoch stays linear in the
    edges). Evaluation always propagates in full."""
    fanout: int = 10
    """``F``, neighbours kept per node and hop when training samples."""
    snapshots_per_epoch: int = 1
    """With ``propagation="snapshot"``: full propagations per epoch's worth of training
    interactions (the first at the epoch's start); more keep the neighbours outside the batch
    fresher, each at the cost of one forward propagation over the graph."""
    sampled_above_edges: int = DEFAULT_SAMPLED_ABOVE_EDGES
    """With ``propagation="auto"``: train on snapshots when the training graph has more edges
    than this (below it a full propagation per step costs about as much and is exact)."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "embedding_dim")
        check_at_least(self, 0, "n_layers")
        check_propagation(self)


class LightGCN(GraphRecommender):
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
        super().__init__(n_users, n_items, config or LightGCNConfig(), table_factory)

    propagate_kept_columns: ClassVar[bool] = True
    """Propagate only the columns some row keeps (:meth:`EmbeddingTable.kept_width`); off:
    every column (a benchmark's reference)."""

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``mean_k Â^k E`` over ``k = 0..K`` (Eq. 8-9), ``(U, d)`` and ``(I, d)``.

        When every row keeps a prefix of at most ``w < d`` columns (uniform or capped sizes),
        only ``E[:, :w]`` is propagated and the zero columns are padded back: ``Â`` is linear,
        so a column that is zero in ``E`` is zero in every layer, and each kept column is
        computed as before (the propagation's work and memory follow ``w``, not ``d``).
        """
        graph = self.require_graph()
        layer = torch.cat([self.user_embedding.all(), self.item_embedding.all()], dim=0)
        width = layer.shape[1]
        if self.propagate_kept_columns:
            width = max(1, max(table.kept_width() for table in self.id_tables()))
        if width < layer.shape[1]:
            mean = F.pad(self._layer_mean(graph, layer[:, :width]), (0, layer.shape[1] - width))
        else:
            mean = self._layer_mean(graph, layer)
        return mean[: self.n_users], mean[self.n_users :]

    def _layer_mean(self, graph: SparseGraph, layer: torch.Tensor) -> torch.Tensor:
        """``mean_k Â^k layer`` over ``k = 0..K``, ``(N, w) -> (N, w)``."""
        total = layer
        for _ in range(self.config.n_layers):
            layer = graph.matmul(layer)
            total = total + layer
        return total / (self.config.n_layers + 1)

    @property
    def n_hops(self) -> int:
        return int(self.config.n_layers)

    def propagate_sampled(self, hops: SampledHops) -> torch.Tensor:
        """Layer ``k`` lives on ``hops.nodes[K - k]`` (``P_j`` maps layer ``k - 1`` on
        ``nodes[j + 1]`` to layer ``k`` on ``nodes[j]``); the batch's rows are the first
        ``len(nodes[0])`` of every layer, averaged over ``k = 0..K``."""
        n_seeds = len(hops.nodes[0])
        layer = self.node_embeddings(hops.nodes[-1])
        total = layer[:n_seeds]
        for operator in reversed(hops.operators):
            layer = operator.matmul(layer)
            total = total + layer[:n_seeds]
        return total / (self.config.n_layers + 1)

    def propagation_layer(
        self, index: int, side: torch.Tensor, ego: torch.Tensor, training: bool
    ) -> torch.Tensor:
        """``e^(k+1) = (Â e^(k))``: the aggregate itself."""
        return side

    def readout(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """The mean of the ``K + 1`` layers."""
        total = layers[0]
        for layer in layers[1:]:
            total = total + layer
        return total / len(layers)
