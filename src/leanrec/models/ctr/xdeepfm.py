"""xDeepFM (Lian et al., KDD 2018): linear + Compressed Interaction Network + DNN."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanrec.models.ctr.base import CTRConfig
from leanrec.models.ctr.dnn import StackedFieldsModel
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import CIN


@dataclass
class XDeepFMConfig(CTRConfig):
    """Configuration of :class:`XDeepFM` (adds the CIN to :class:`CTRConfig`)."""

    cin_layers: tuple[int, ...] = (100, 100)
    """Feature maps ``H_k`` per CIN layer (the paper's Criteo setting uses 200; DeepCTR 256-128)."""
    cin_activation: str = "identity"
    """``σ`` of the CIN layers; the paper uses the identity, DeepCTR defaults to relu."""
    cin_split_half: bool = True
    """Send half of every non-last layer's maps to the output, half to the next layer."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cin_layers = tuple(int(w) for w in self.cin_layers)


class XDeepFM(StackedFieldsModel):
    """``y = b + Σ_f w_f + w_c^T CIN(X^0) + MLP(flat X^0)`` (paper Eq. 10).

    ``X^0 (B, m, d)`` holds the categorical fields, the pooled target tags and the pooled
    history, as in :class:`~leanrec.models.ctr.deepfm.DeepFM`.
    """

    name = "xdeepfm"
    config_class = XDeepFMConfig
    config: XDeepFMConfig
    uses_first_order = True

    def build_shallow(self, num_stacked_fields: int) -> None:
        cfg = self.config
        self.cin = CIN(num_stacked_fields, cfg.cin_layers, cfg.cin_activation, cfg.cin_split_half)
        self.cin_output = nn.Linear(self.cin.output_dim, 1, bias=False)
        nn.init.xavier_uniform_(self.cin_output.weight)

    def shallow_logit(self, inputs: EmbeddedBatch, stacked: torch.Tensor) -> torch.Tensor:
        """``b + Σ_f w_f + w_c^T CIN(X^0)`` ``(B,)`` over ``stacked = X^0 (B, m, d)``."""
        cin = self.cin_output(self.cin(stacked)).squeeze(-1)
        return self.bias + self.linear_logit(inputs) + cin


__all__ = ["XDeepFM", "XDeepFMConfig"]
