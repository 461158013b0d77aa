"""DIN (Zhou et al., KDD 2018): target attention over the behaviour sequence + MLP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.dnn import DeepTower
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import MLP


@dataclass
class DINConfig(CTRConfig):
    """Configuration of :class:`DIN` (adds the activation unit to :class:`CTRConfig`)."""

    attention_dims: tuple[int, ...] = (80, 40)
    """Hidden widths of the local activation unit (paper: 80-40; DeepCTR: 64-16)."""
    attention_activation: str = "dice"
    """Activation of the activation unit ("dice" or "prelu" in the paper)."""
    attention_softmax: bool = False
    """Normalise the weights over real positions; DIN keeps them raw so that their sum carries
    the intensity of the user's interest (paper Sec. 4.3)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.attention_dims = tuple(int(w) for w in self.attention_dims)


class ActivationUnit(nn.Module):
    """DIN's local activation unit: ``a(e_j, v_A) = MLP([e_j; v_A; e_j - v_A; e_j ⊙ v_A])``.

    Shapes: history vectors ``(M, d)`` and their rows' target vectors ``(M, d)`` -> ``(M,)``.
    """

    def __init__(self, embedding_dim: int, hidden_dims: tuple[int, ...], activation: str) -> None:
        super().__init__()
        self.mlp = MLP(4 * embedding_dim, hidden_dims, activation, output_dim=1)

    def forward(self, history: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        features = torch.cat([history, target, history - target, history * target], dim=-1)
        return self.mlp(features).squeeze(-1)  # type: ignore[no-any-return]


class DIN(CTRModel):
    """``y = MLP([v_1; ...; v_F'; Σ_j a(e_j, v_A) e_j])`` (paper Eq. 3).

    ``e_j`` are the real history vectors (item + pooled tags), ``v_A`` the target built the same
    way. The activation unit only runs on real positions, so padded positions receive weight 0
    and cannot affect the output (nor Dice's batch statistics).
    """

    name = "din"
    config_class = DINConfig
    config: DINConfig

    def __init__(
        self,
        feature_map: FeatureMap,
        config: DINConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__(feature_map, config, table_factory)
        cfg = self.config
        d = cfg.embedding_dim
        self.attention = ActivationUnit(d, cfg.attention_dims, cfg.attention_activation)
        self.deep = DeepTower((self.num_fields + 1) * d, cfg)

    def attention_weights(self, inputs: EmbeddedBatch) -> torch.Tensor:
        """``(B, N)`` weights of the history positions; exactly 0 on padding."""
        mask = inputs.history_mask
        scores = inputs.history.new_zeros(mask.shape)
        if bool(mask.any()):
            rows = mask.nonzero()[:, 0]
            real = self.attention(inputs.history[mask], inputs.target[rows])  # (M,)
            scores = scores.index_put((mask,), real)
        if self.config.attention_softmax:
            # a large finite negative (not -inf) keeps rows without history NaN-free
            scores = torch.softmax(scores.masked_fill(~mask, -1e9), dim=1)
            scores = torch.where(mask, scores, torch.zeros_like(scores))
        return scores

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        weights = self.attention_weights(inputs)
        interest = torch.einsum("bn,bnd->bd", weights, inputs.history)
        deep_input = torch.cat([inputs.fields.flatten(1), interest], dim=1)
        return self.deep(deep_input)  # type: ignore[no-any-return]


__all__ = ["DIN", "ActivationUnit", "DINConfig"]
