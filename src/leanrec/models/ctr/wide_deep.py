"""Wide & Deep (Cheng et al., DLRS 2016): a linear model over one-hot fields + a DNN."""

from __future__ import annotations

import torch
from torch import nn

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.dnn import DeepTower
from leanrec.models.ctr.inputs import EmbeddedBatch


class WideDeep(CTRModel):
    """``y = b + Σ_f w_f + MLP([v_1; ...; v_F'; pool(history)])``.

    The wide part is a linear model over the one-hot fields: one first-order weight per ID of
    every categorical field, the mean weight of the target's tags and the mean weight of the
    history (no hand-crafted cross features).
    """

    name = "wide_deep"
    config_class = CTRConfig
    uses_first_order = True

    def __init__(
        self,
        feature_map: FeatureMap,
        config: CTRConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__(feature_map, config, table_factory)
        d = self.config.embedding_dim
        self.bias = nn.Parameter(torch.zeros(()))
        self.deep = DeepTower((self.num_fields + 1) * d, self.config)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        stacked = inputs.fields_with_history(self.config.history_pooling)
        return self.bias + self.linear_logit(inputs) + self.deep(stacked.flatten(1))


__all__ = ["WideDeep"]
