"""DeepFM (Guo et al., IJCAI 2017): linear + FM second order + DNN over shared embeddings."""

from __future__ import annotations

import torch
from torch import nn

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.dnn import DeepTower
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import fm_second_order


class DeepFM(CTRModel):
    """``y = b + Σ_f w_f + Σ_{i<j} <v_i, v_j> + MLP([v_1; ...; v_m])`` (paper Eq. 1-3).

    The ``m = F' + 1`` field vectors are the categorical fields, the pooled target tags and the
    pooled history as one more field; FM and DNN read the same vectors.
    """

    name = "deepfm"
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
        stacked = inputs.fields_with_history(self.config.history_pooling)  # (B, m, d)
        return (
            self.bias
            + self.linear_logit(inputs)
            + fm_second_order(stacked)
            + self.deep(stacked.flatten(1))
        )


__all__ = ["DeepFM"]
