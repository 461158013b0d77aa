"""AMEIR's derived model (Zhao et al., IJCAI 2021, Sec. 2.1, Eq. 1-2) as a CTR model.

:class:`AMEIRModel` is one fixed :class:`~leanrec.models.ctr.ameir.architecture.Architecture`:
the behaviour network over the history, read out as ``h^a``; the Hadamard interactions ``p^b``
of the fields ``e^b``; the aggregation MLP over ``h^c_0 = [h^a, e^b, p^b]`` and the SE shortcut
over ``[e^b, p^b]``; output ``w^T [h^c_{L_c}, h^se]`` (plus, with ``fm_shortcut``, the FM term of
:func:`fm_shortcut_logit`). It is a :class:`~leanrec.models.ctr.base.CTRModel`, so the pointwise
trainer, the evaluator and checkpoints work on it unchanged; its config carries the
architecture, so a saved model loads without the search (:mod:`leanrec.search.architecture`
builds its one-shot models on :class:`AMEIRConfig` and derives this model from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.ameir.architecture import (
    PAPER_READOUT,
    Architecture,
    Interaction,
    check_readout,
)
from leanrec.models.ctr.ameir.blocks import BehaviorNetwork
from leanrec.models.ctr.ameir.interactions import SEShortcut, hadamard_interactions
from leanrec.models.ctr.ameir.mlp import MLP
from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.inputs import EmbeddedBatch, Pooling
from leanrec.models.ctr.layers import fm_second_order

__all__ = [
    "AMEIRConfig",
    "AMEIRModel",
    "InteractionInputModel",
    "field_indices",
    "fm_shortcut_logit",
]


@dataclass
class AMEIRConfig(CTRConfig):
    """Shared settings of the AMEIR models (``mlp_dims`` is the predefined MLP of Steps 1-2)."""

    behavior_blocks: int = 3
    """``L_a``."""
    mlp_layers: int = 2
    """``L_c`` (Step 3 and the derived model)."""
    readout: tuple[str, ...] = PAPER_READOUT
    """Parts of the behaviour readout ``h^a`` of the one-shot models (the derived model takes
    its architecture's)."""
    fm_shortcut: bool = False
    """Add the FM pairwise term over the fields (and interactions) and the pooled history to
    the one-shot models' logits (the derived model takes its architecture's)."""
    architecture: dict[str, Any] = field(default_factory=dict)
    """The derived model's :class:`Architecture` as a dict (:class:`AMEIRModel` only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.readout = check_readout(self.readout)


def field_indices(names: list[str], interactions: tuple[Interaction, ...]) -> torch.Tensor:
    """``(M, r_max)`` field indices of each interaction, -1 padded (rows for
    :func:`~leanrec.models.ctr.ameir.interactions.hadamard_interactions`)."""
    if not interactions:
        return torch.zeros(0, 2, dtype=torch.long)
    width = max(len(i) for i in interactions)
    rows = []
    for interaction in interactions:
        missing = [f for f in interaction if f not in names]
        if missing:
            raise ValueError(
                f"interaction {interaction} names unknown fields {missing}; fields: {names}"
            )
        index = [names.index(f) for f in interaction]
        rows.append(index + [-1] * (width - len(index)))
    return torch.tensor(rows, dtype=torch.long)


def fm_shortcut_logit(q: torch.Tensor, inputs: EmbeddedBatch, pooling: Pooling) -> torch.Tensor:
    """FM shortcut ``Σ_{i<j} <q_i, q_j>`` over ``[q, pooled history]`` (DeepFM's second-order
    term, with searched interactions as extra fields when ``q`` holds them).

    Args:
        q: ``(B, n, d)`` field (and interaction) vectors.
        inputs: the batch, for its history.
        pooling: history pooling, ``"mean"`` or ``"sum"``.

    Returns:
        ``(B,)``.
    """
    history = inputs.pooled_history(pooling)
    return fm_second_order(torch.cat([q, history[:, None, :]], dim=1))


class InteractionInputModel(CTRModel):
    """A CTR model whose MLP reads ``h^c_0 = [h^a, e^b, p^b]`` (paper Eq. 1): the behaviour
    readout ``h^a``, the fields ``e^b`` and the Hadamard interactions ``p^b`` of chosen field
    sets. :class:`AMEIRModel` is one, the search's Step-3 one-shot model another.
    """

    config: AMEIRConfig
    interaction_index: torch.Tensor
    input_dim: int
    """``K^c_0``, the width of ``h^c_0``."""

    def _register_interactions(
        self, interactions: tuple[Interaction, ...], readout_dim: int
    ) -> int:
        """Keep the interactions' field indices (a non-persistent buffer) and set
        :attr:`input_dim` for a readout ``h^a`` of ``readout_dim``; returns ``N + M``, the
        number of vectors in ``[e^b, p^b]`` (the SE shortcut's fields)."""
        self.register_buffer(
            "interaction_index",
            field_indices(self.embedder.field_names, interactions),
            persistent=False,
        )
        n_se = self.num_fields + len(interactions)
        self.input_dim = readout_dim + n_se * self.config.embedding_dim
        return n_se

    def mlp_inputs(
        self, h_a: torch.Tensor, inputs: EmbeddedBatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``h^c_0`` ``(B, K^c_0)`` and ``Q^se = [e^b, p^b]`` ``(B, N + M, d)`` of the readout
        ``h_a (B, readout_dim)`` and the batch's fields."""
        q = inputs.fields
        if len(self.interaction_index):
            q = torch.cat([q, hadamard_interactions(inputs.fields, self.interaction_index)], 1)
        return torch.cat([h_a, q.flatten(1)], dim=1), q


class AMEIRModel(InteractionInputModel):
    """The derived AMEIR model of one :class:`Architecture` (paper Sec. 2.1, Eq. 1-2)."""

    name = "ameir"
    config_class = AMEIRConfig

    def __init__(
        self,
        feature_map: FeatureMap,
        config: AMEIRConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__(feature_map, config, table_factory)
        cfg = self.config
        d = cfg.embedding_dim
        self.architecture = Architecture.from_dict(dict(cfg.architecture))
        arch = self.architecture
        self.behavior = BehaviorNetwork(d, arch.blocks, has_target=True, readout=arch.readout)
        n_se = self._register_interactions(arch.interactions, self.behavior.readout_dim)
        widths = arch.mlp_dims(self.input_dim)
        self.mlp = MLP(self.input_dim, widths, arch.mlp_activations)
        self.se = SEShortcut(n_se, d) if arch.se_shortcut else None
        width = (widths[-1] if widths else self.input_dim) + (d if self.se is not None else 0)
        self.output = nn.Linear(width, 1)
        nn.init.xavier_uniform_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        h = self.behavior(inputs.history, inputs.history_mask, inputs.target)
        h_a = self.behavior.readout(h, inputs.history_mask, inputs.target)
        h0, q = self.mlp_inputs(h_a, inputs)
        parts = [self.mlp(h0)]
        if self.se is not None:
            parts.append(self.se(q))
        logit = self.output(torch.cat(parts, dim=1)).squeeze(-1)
        if self.architecture.fm_shortcut:
            logit = logit + fm_shortcut_logit(q, inputs, self.config.history_pooling)
        return logit

    @classmethod
    def from_architecture(
        cls,
        feature_map: FeatureMap,
        architecture: Architecture,
        embedding_dim: int = 16,
        table_factory: TableFactory | None = None,
    ) -> AMEIRModel:
        config = AMEIRConfig(
            embedding_dim=embedding_dim,
            behavior_blocks=len(architecture.blocks),
            mlp_layers=len(architecture.mlp_widths),
            readout=architecture.readout,
            architecture=architecture.to_dict(),
        )
        return cls(feature_map, config, table_factory)
