"""DeepFM (Guo et al., IJCAI 2017): linear + FM second order + DNN over shared embeddings."""

from __future__ import annotations

import torch

from leanrec.models.ctr.base import CTRConfig
from leanrec.models.ctr.dnn import StackedFieldsModel
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import fm_second_order


class DeepFM(StackedFieldsModel):
    """``y = b + Σ_f w_f + Σ_{i<j} <v_i, v_j> + MLP([v_1; ...; v_m])`` (paper Eq. 1-3).

    The ``m = F' + 1`` field vectors are the categorical fields, the pooled target tags and the
    pooled history as one more field; FM and DNN read the same vectors.
    """

    name = "deepfm"
    config_class = CTRConfig
    uses_first_order = True

    def shallow_logit(self, inputs: EmbeddedBatch, stacked: torch.Tensor) -> torch.Tensor:
        """``b + Σ_f w_f + Σ_{i<j} <v_i, v_j>`` ``(B,)`` over ``stacked (B, m, d)``."""
        return self.bias + self.linear_logit(inputs) + fm_second_order(stacked)


__all__ = ["DeepFM"]
