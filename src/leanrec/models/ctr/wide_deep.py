"""Wide & Deep (Cheng et al., DLRS 2016): a linear model over one-hot fields + a DNN."""

from __future__ import annotations

from leanrec.models.ctr.base import CTRConfig
from leanrec.models.ctr.dnn import StackedFieldsModel


class WideDeep(StackedFieldsModel):
    """``y = b + Σ_f w_f + MLP([v_1; ...; v_F'; pool(history)])``.

    The wide part is a linear model over the one-hot fields: one first-order weight per ID of
    every categorical field, the mean weight of the target's tags and the mean weight of the
    history (no hand-crafted cross features).
    """

    name = "wide_deep"
    config_class = CTRConfig
    uses_first_order = True


__all__ = ["WideDeep"]
