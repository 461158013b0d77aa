"""AMEIR's one-shot models (Zhao et al., IJCAI 2021, Sec. 2.3): one per search step, and the
derivation of the final :class:`~leanrec.models.ctr.ameir.model.AMEIRModel` from Step 3.

All are :class:`~leanrec.models.ctr.base.CTRModel` s, so the pointwise trainer, the evaluator
and checkpoints work on them unchanged. A one-shot model holds every candidate of its step;
``active`` is the child it currently computes. In training mode with ``sample_each_batch`` it
draws a new child uniformly for every batch (one-shot random search, paper Sec. 2.3).

* :class:`BehaviorStepModel` (Step 1): behaviour supernet, read out as ``h^a``, then the
  predefined MLP over ``[h^a, e^b]``.
* :class:`InteractionStepModel` (Step 2): the predefined MLP over ``[e^b, p]`` whose first layer
  adds the projection of one sampled interaction ``p`` to those of the fields (the paper's
  "projection of a concatenation is a sum of projections"); the behaviour network is left out.
* :class:`MLPStepModel` (Step 3): the chosen behaviour blocks and interactions, a sliced MLP
  over ``h^c_0 = [h^a, e^b, p^b]`` and the SE shortcut over ``[e^b, p^b]``; output
  ``w^T [h^c_{L_c}, h^se]`` (plus, with ``fm_shortcut``, the FM term of
  :func:`~leanrec.models.ctr.ameir.model.fm_shortcut_logit` over ``[e^b, p^b]`` and the pooled
  history; Steps 1-2 then add it over ``e^b`` and the pooled history).
* :func:`derive_ameir_model`: Step 3's child as the final, derived model with the one-shot
  weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.ameir.architecture import (
    WIDTH_RATIOS,
    Architecture,
    BlockChoice,
    Interaction,
)
from leanrec.models.ctr.ameir.interactions import SEShortcut
from leanrec.models.ctr.ameir.mlp import parameter_count as mlp_parameter_count
from leanrec.models.ctr.ameir.model import (
    AMEIRConfig,
    AMEIRModel,
    InteractionInputModel,
    fm_shortcut_logit,
)
from leanrec.models.ctr.base import CTRModel
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import MLP
from leanrec.search.architecture.blocks import BehaviorSupernet
from leanrec.search.architecture.interactions import OneShotInteractionLayer
from leanrec.search.architecture.mlp import SlicedMLP
from leanrec.search.architecture.space import sample_blocks, sample_mlp

__all__ = [
    "BehaviorStepModel",
    "InteractionStepModel",
    "MLPChoice",
    "MLPStepModel",
    "derive_ameir_model",
]


class _OneShot(CTRModel):
    """A one-shot model: ``active`` child, resampled per batch in training when asked.

    Steps 1 and 2 build their layers in :meth:`~CTRModel._build_layers` (right after the
    embedder) and set their first ``active`` child there."""

    config_class = AMEIRConfig
    config: AMEIRConfig
    interaction_index: torch.Tensor
    sample_each_batch: bool = False
    """Draw a new ``active`` child from :attr:`sampler` for every training batch."""
    sampler: Callable[[], Any] | None = None
    active: Any = None

    def forward(self, batch: Any) -> torch.Tensor:
        if self.training and self.sample_each_batch and self.sampler is not None:
            self.active = self.sampler()
        return super().forward(batch)


# ------------------------------------------------------------------------------------- Step 1
class BehaviorStepModel(_OneShot):
    """Step 1: ``active`` is a tuple of ``L_a`` :class:`BlockChoice`."""

    name = "ameir_step1"

    def _build_layers(self) -> None:
        cfg = self.config
        d = cfg.embedding_dim
        self.behavior = BehaviorSupernet(
            d, cfg.behavior_blocks, has_target=True, readout=tuple(cfg.readout)
        )
        width = self.behavior.readout_dim + self.num_fields * d
        self.mlp = MLP(width, cfg.mlp_dims, cfg.activation, cfg.dropout, output_dim=1)
        self.active = tuple(BlockChoice() for _ in range(cfg.behavior_blocks))

    def sample(self, rng: np.random.Generator) -> tuple[BlockChoice, ...]:
        return sample_blocks(rng, self.config.behavior_blocks, has_target=True)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        h = self.behavior(inputs.history, inputs.history_mask, inputs.target, self.active)
        h_a = self.behavior.readout(h, inputs.history_mask, inputs.target)
        logit = self.mlp(torch.cat([h_a, inputs.fields.flatten(1)], dim=1)).squeeze(-1)
        if self.config.fm_shortcut:
            logit = logit + fm_shortcut_logit(inputs.fields, inputs, self.config.history_pooling)
        return logit


# ------------------------------------------------------------------------------------- Step 2
class InteractionStepModel(_OneShot):
    """Step 2: ``active`` is one :data:`Interaction` (or None: fields only)."""

    name = "ameir_step2"

    def _build_layers(self) -> None:
        cfg = self.config
        if not cfg.mlp_dims:
            raise ValueError("Step 2 needs a predefined MLP with at least one hidden layer")
        d = cfg.embedding_dim
        self.first = OneShotInteractionLayer(self.embedder.field_names, d, cfg.mlp_dims[0], [])
        self.rest = MLP(cfg.mlp_dims[0], cfg.mlp_dims[1:], cfg.activation, cfg.dropout, 1)
        self.first_activation = nn.ReLU()
        self.candidates: list[Interaction] = []

    @property
    def field_names(self) -> list[str]:
        return self.embedder.field_names

    def set_candidates(self, candidates: list[Interaction]) -> None:
        """``p^b'``: the interactions sampled from now on (projection weights inherited)."""
        self.first.add_candidates(candidates)
        self.candidates = list(candidates)

    def sample(self, rng: np.random.Generator) -> Interaction | None:
        if not self.candidates:
            return None
        return self.candidates[int(rng.integers(len(self.candidates)))]

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        hidden = self.first_activation(self.first(inputs.fields, self.active))
        logit = self.rest(hidden).squeeze(-1)
        if self.config.fm_shortcut:  # over the fields only: the sampled interaction feeds the MLP
            logit = logit + fm_shortcut_logit(inputs.fields, inputs, self.config.history_pooling)
        return logit


# ------------------------------------------------------------------------------------- Step 3
@dataclass(frozen=True)
class MLPChoice:
    """Step 3's child: hidden widths in units and activations."""

    widths: tuple[int, ...]
    activations: tuple[str, ...]


class MLPStepModel(_OneShot, InteractionInputModel):
    """Step 3: fixed blocks and interactions; ``active`` is an :class:`MLPChoice`."""

    name = "ameir_step3"

    def __init__(
        self,
        feature_map: FeatureMap,
        config: AMEIRConfig | None = None,
        table_factory: TableFactory | None = None,
        blocks: tuple[BlockChoice, ...] = (),
        interactions: tuple[Interaction, ...] = (),
        se_shortcut: bool = True,
    ) -> None:
        super().__init__(feature_map, config, table_factory)
        cfg = self.config
        d = cfg.embedding_dim
        self.blocks = tuple(blocks)
        self.interactions = tuple(interactions)
        self.behavior = BehaviorSupernet(
            d, len(self.blocks), has_target=True, readout=tuple(cfg.readout)
        )
        n_se = self._register_interactions(self.interactions, self.behavior.readout_dim)
        self.mlp = SlicedMLP(self.input_dim, cfg.mlp_layers)
        self.se = SEShortcut(n_se, d) if se_shortcut else None
        self.output_weight = nn.Parameter(torch.zeros(self.input_dim + (d if se_shortcut else 0)))
        self.output_bias = nn.Parameter(torch.zeros(()))
        nn.init.normal_(self.output_weight, std=0.01)
        self.active = MLPChoice((self.input_dim,) * cfg.mlp_layers, ("relu",) * cfg.mlp_layers)
        self.max_parameters: int | None = None
        self._largest: dict[int | None, tuple[int, ...]] = {}  # per max_parameters

    def sample(self, rng: np.random.Generator, attempts: int = 1000) -> MLPChoice:
        """A uniform child (within ``max_parameters`` when set: rejection sampling)."""
        for _ in range(attempts):
            ratios, activations = sample_mlp(rng, self.config.mlp_layers)
            widths = tuple(max(1, round(r * self.input_dim)) for r in ratios)
            choice = MLPChoice(widths, activations)
            if self.max_parameters is None or self.child_parameters(choice) <= self.max_parameters:
                return choice
        raise ValueError(
            f"no MLP child within max_parameters={self.max_parameters} after {attempts} draws"
        )

    def largest_widths(self) -> tuple[int, ...]:
        """Hidden widths of the largest child within ``max_parameters`` (ReLU layers; all
        ``K^c_0`` without a budget): the child with the most parameters among the
        non-increasing :data:`~leanrec.models.ctr.ameir.architecture.WIDTH_RATIOS` grid.

        Raises:
            ValueError: if not even the narrowest child fits the budget.
        """
        layers = self.config.mlp_layers
        best: tuple[int, tuple[int, ...]] | None = None
        for ratios in itertools.combinations_with_replacement(WIDTH_RATIOS[::-1], layers):
            widths = tuple(max(1, round(r * self.input_dim)) for r in ratios)
            size = self.child_parameters(MLPChoice(widths, ("relu",) * layers))
            if self.max_parameters is not None and size > self.max_parameters:
                continue
            if best is None or size > best[0]:
                best = (size, widths)
        if best is None:
            raise ValueError(f"no MLP child fits max_parameters={self.max_parameters}")
        return best[1]

    def sample_largest(self, rng: np.random.Generator) -> MLPChoice:
        """The largest child within the budget with uniformly drawn activations (the "max"
        child of the sandwich rule; see ``ArchitectureSearchConfig.largest_child_share``)."""
        if self.max_parameters not in self._largest:
            self._largest[self.max_parameters] = self.largest_widths()
        _, activations = sample_mlp(rng, self.config.mlp_layers)
        return MLPChoice(self._largest[self.max_parameters], activations)

    def child_parameters(self, choice: MLPChoice) -> int:
        """Parameters of the derived model with this MLP (embedding tables included)."""
        d = self.config.embedding_dim
        behavior = self.behavior.derive(self.blocks).parameter_count()  # blocks + readout
        mlp = mlp_parameter_count(self.input_dim, choice.widths, choice.activations)
        se = sum(p.numel() for p in self.se.parameters()) if self.se is not None else 0
        out = choice.widths[-1] + (d if self.se is not None else 0) + 1
        return self.embedding_parameters() + behavior + mlp + se + out

    def features(self, inputs: EmbeddedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``h^c_0`` ``(B, K^c_0)`` and ``Q^se = [e^b, p^b]`` ``(B, N + M, d)``."""
        h = self.behavior(inputs.history, inputs.history_mask, inputs.target, self.blocks)
        return self.mlp_inputs(self.behavior.readout(h, inputs.history_mask, inputs.target), inputs)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        h0, q = self.features(inputs)
        choice: MLPChoice = self.active
        hidden = self.mlp(h0, choice.widths, choice.activations)
        parts = [hidden]
        weight = self.output_weight[: choice.widths[-1]]
        if self.se is not None:
            parts.append(self.se(q))
            weight = torch.cat([weight, self.output_weight[self.input_dim :]])
        logit = torch.cat(parts, dim=1) @ weight + self.output_bias
        if self.config.fm_shortcut:
            logit = logit + fm_shortcut_logit(q, inputs, self.config.history_pooling)
        return logit


# ------------------------------------------------------------------------------ derivation
def derive_ameir_model(step3: MLPStepModel, choice: MLPChoice) -> AMEIRModel:
    """The derived model of Step 3's child ``choice``, initialised from its weights
    (paper: "the derived model is initialized with the one-shot model weights")."""
    ratios = tuple(w / step3.input_dim for w in choice.widths)
    architecture = Architecture(
        blocks=step3.blocks,
        interactions=step3.interactions,
        mlp_widths=ratios,
        mlp_activations=choice.activations,
        se_shortcut=step3.se is not None,
        readout=step3.behavior.readout_layer.parts,
        fm_shortcut=step3.config.fm_shortcut,
    )
    model = AMEIRModel.from_architecture(
        step3.feature_map, architecture, step3.config.embedding_dim
    )
    model.embedder.load_state_dict(step3.embedder.state_dict())
    model.behavior = step3.behavior.derive(step3.blocks)
    model.mlp = step3.mlp.derive(choice.widths, choice.activations)
    if step3.se is not None and model.se is not None:
        model.se.load_state_dict(step3.se.state_dict())
    with torch.no_grad():
        weight = step3.output_weight[: choice.widths[-1]]
        if step3.se is not None:
            weight = torch.cat([weight, step3.output_weight[step3.input_dim :]])
        model.output.weight.copy_(weight.unsqueeze(0))
        model.output.bias.copy_(step3.output_bias)
    return model
