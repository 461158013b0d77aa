"""DNN (YouTube-style, Covington et al. RecSys 2016): concatenated fields + pooled history
into an MLP; and :class:`StackedFieldsModel`, the shape it shares with Wide&Deep, DeepFM and
xDeepFM."""

from __future__ import annotations

import torch
from torch import nn

from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import MLP


class DeepTower(MLP):
    """The deep part shared by DNN, Wide&Deep, DeepFM and xDeepFM: ``(B, m·d) -> (B,)``."""

    def __init__(self, input_dim: int, config: CTRConfig) -> None:
        super().__init__(input_dim, config.mlp_dims, config.activation, config.dropout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)


class StackedFieldsModel(CTRModel):
    """A model over the ``m = F' + 1`` stacked field vectors ``X^0 (B, m, d)``: the categorical
    fields, the pooled target tags and the pooled history as one more field.

    ``y = shallow(X^0) + MLP(flat X^0)``: a :class:`DeepTower` over the flattened vectors plus
    the subclass's :meth:`shallow_logit` (by default ``b + Σ_f w_f`` when the model has
    first-order weights, nothing otherwise). Subclasses with more layers in the shallow part
    build them in :meth:`build_shallow`, which runs before the deep tower is built (so the
    random initialisation follows the order bias, shallow layers, deep tower).
    """

    def _build_layers(self) -> None:
        if self.uses_first_order:
            self.bias = nn.Parameter(torch.zeros(()))
        self.build_shallow(self.num_stacked_fields)
        self.deep = DeepTower(self.num_stacked_fields * self.config.embedding_dim, self.config)

    @property
    def num_stacked_fields(self) -> int:
        """``m = F' + 1``: the fields, the pooled target tags and the pooled history."""
        return self.num_fields + 1

    def build_shallow(self, num_stacked_fields: int) -> None:
        """Build the layers :meth:`shallow_logit` needs beside the bias (none by default)."""

    def shallow_logit(self, inputs: EmbeddedBatch, stacked: torch.Tensor) -> torch.Tensor | None:
        """The logit beside the deep tower ``(B,)``, from the batch and ``X^0 (B, m, d)``:
        ``b + Σ_f w_f`` with first-order weights, None without."""
        if not self.uses_first_order:
            return None
        return self.bias + self.linear_logit(inputs)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        stacked = inputs.fields_with_history(self.config.history_pooling)  # (B, m, d)
        shallow = self.shallow_logit(inputs, stacked)
        deep: torch.Tensor = self.deep(stacked.flatten(1))
        return deep if shallow is None else shallow + deep


class DNN(StackedFieldsModel):
    """``y = MLP([v_1; ...; v_F'; pool(history)])``, the behaviour-blind-to-target baseline.

    The history is mean- (or sum-) pooled over its real positions (``history_pooling``), as
    the YouTube candidate model averages watched-video vectors.
    """

    name = "dnn"
    config_class = CTRConfig


__all__ = ["DNN", "DeepTower", "StackedFieldsModel"]
