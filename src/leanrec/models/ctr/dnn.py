"""DNN (YouTube-style, Covington et al. RecSys 2016): concatenated fields + pooled history
into an MLP."""

from __future__ import annotations

import torch

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import MLP


class DeepTower(MLP):
    """The deep part shared by DNN, Wide&Deep, DeepFM and xDeepFM: ``(B, m·d) -> (B,)``."""

    def __init__(self, input_dim: int, config: CTRConfig) -> None:
        super().__init__(input_dim, config.mlp_dims, config.activation, config.dropout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)


class DNN(CTRModel):
    """``y = MLP([v_1; ...; v_F'; pool(history)])``, the behaviour-blind-to-target baseline.

    The history is mean- (or sum-) pooled over its real positions (``history_pooling``), as
    the YouTube candidate model averages watched-video vectors.
    """

    name = "dnn"
    config_class = CTRConfig

    def __init__(
        self,
        feature_map: FeatureMap,
        config: CTRConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__(feature_map, config, table_factory)
        d = self.config.embedding_dim
        self.deep = DeepTower((self.num_fields + 1) * d, self.config)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        stacked = inputs.fields_with_history(self.config.history_pooling)  # (B, F'+1, d)
        return self.deep(stacked.flatten(1))  # type: ignore[no-any-return]


__all__ = ["DNN", "DeepTower"]
