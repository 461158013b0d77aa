"""The controller's side of the expandable model: build, reshape and measure a stream model
whose deep tower changes between sessions.

Everything the controller needs from :mod:`leanrec.models.expandable` goes through this
module, so the rest of the package never reaches into the model part: building a DeepFM/DNN
stream model with an expandable tower of given widths, applying a change (and making the dense
optimiser follow it), the parameter count of the shaped part and the whole model's bytes, and
the mask of the units that existed before a change (what forgetting protection keeps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from leanrec.models.expandable import (
    ArchitectureChange,
    ExpandableMLP,
    ShapeLimits,
    expandable_tower,
    make_expandable,
)
from leanrec.models.stream import StreamModel, build_stream_model
from leanrec.search.adaptive.config import AdaptiveConfig, AdaptiveExperiment
from leanrec.train.reshape import reshape_stream_trainer
from leanrec.train.stream import StreamTrainer

FIELDS: tuple[str, ...] = ("user", "item")
"""Stream ID fields every model reads."""
LARGE_WIDTHS: tuple[int, ...] = (512, 256, 128)
"""Fixed-large's tower: the normaliser of the parameter count in the reward."""


def build_model(
    experiment: AdaptiveExperiment, widths: Sequence[int], seed: int
) -> tuple[StreamModel, ExpandableMLP]:
    """A fresh stream model (all-unique tables) whose tower (the deep tower of DeepFM / DNN,
    NeuMF's MLP) is expandable, at ``widths``."""
    model = build_stream_model(
        experiment.model,
        FIELDS,
        embedding_dim=experiment.embedding_dim,
        seed=seed,
        init_std=experiment.init_std,
        **tower_options(experiment.model, widths),
    )
    tower = make_expandable(model, limits=limits_of(experiment.controller))
    return model, tower


def tower_options(model: str, widths: Sequence[int]) -> dict[str, Any]:
    """The model option that sets the tower's widths: ``mlp_layers`` for NeuMF, ``mlp_dims``
    for the CTR models."""
    if model == "neumf":
        return {"mlp_layers": [int(w) for w in widths]}
    return {"mlp_dims": tuple(int(w) for w in widths)}


def limits_of(config: AdaptiveConfig) -> ShapeLimits:
    """The controller's width and depth limits as the model part's :class:`ShapeLimits`."""
    return ShapeLimits(config.min_width, config.max_width, config.min_depth, config.max_depth)


def tower_of(model: StreamModel) -> ExpandableMLP:
    """The expandable tower inside ``model``."""
    tower = expandable_tower(model)
    if tower is None:
        raise TypeError("the stream model has no expandable tower")
    return tower


def widths_of(model: StreamModel) -> tuple[int, ...]:
    """Current hidden widths of the tower."""
    return tuple(int(w) for w in tower_of(model).widths)


def shaped_parameters(model: StreamModel) -> int:
    """Parameters of the part the controller shapes (the tower), exact."""
    return int(tower_of(model).num_parameters())


def model_bytes(model: StreamModel) -> int:
    """Bytes of the whole model: embedding tables with their per-ID state, and the dense part."""
    return int(model.embedding_bytes() + model.dense_bytes())


def reference_parameters(experiment: AdaptiveExperiment) -> int:
    """Parameters of fixed-large's tower on this experiment's input: ``p = 1`` in the reward."""
    _, tower = build_model(experiment, LARGE_WIDTHS, seed=0)
    return int(tower.num_parameters())


def tower_parameters(input_dim: int, widths: Sequence[int]) -> int:
    """Parameters of a ReLU tower of ``widths`` on an ``input_dim``-wide input, counted as
    :meth:`~leanrec.models.expandable.ExpandableMLP.num_parameters` counts them: every hidden
    layer's weights and biases, and the head's ``widths[-1]`` columns that read the tower."""
    total, fan_in = 0, input_dim
    for width in widths:
        total += fan_in * width + width
        fan_in = width
    return total + fan_in


def input_width(experiment: AdaptiveExperiment) -> int:
    """Width of the tower's input in this experiment's model (its concatenated embeddings)."""
    _, tower = build_model(experiment, (experiment.controller.min_width,), seed=0)
    return int(tower.input_dim)


def widths_after(widths: Sequence[int], change: ArchitectureChange) -> tuple[int, ...]:
    """The hidden widths after ``change`` (a layer added at the end copies the last width)."""
    out = [w + d for w, d in zip(widths, change.width_deltas, strict=True)]
    if change.depth_delta > 0:
        out.append(out[-1])
    elif change.depth_delta < 0:
        out.pop()
    return tuple(out)


def old_unit_masks(widths: Sequence[int], change: ArchitectureChange) -> list[torch.Tensor]:
    """Per hidden layer after ``change``, a bool mask ``(width,)`` of the units that existed
    before it (a grown layer keeps its old units first and appends the new ones; a layer added
    at the end is all new)."""
    masks = []
    after = widths_after(widths, change)
    for layer, width in enumerate(after):
        mask = torch.zeros(width, dtype=torch.bool)
        if layer < len(widths) and not (change.depth_delta > 0 and layer == len(after) - 1):
            mask[: min(width, widths[layer])] = True
        masks.append(mask)
    return masks


def hidden_linears(model: StreamModel) -> list[nn.Linear]:
    """The tower's hidden ``Linear`` layers in order (the head excluded)."""
    return list(tower_of(model).linears)


def reshape(
    trainer: StreamTrainer, change: ArchitectureChange, generator: torch.Generator
) -> ArchitectureChange:
    """Apply ``change`` to the trainer's tower, clamped to its limits, and move the dense
    optimiser's state with the units (:func:`~leanrec.train.reshape.reshape_stream_trainer`:
    kept units keep their Adam moments, new ones start at zero). Returns the change made."""
    return reshape_stream_trainer(trainer, change, generator).applied


def reset_tower(model: StreamModel, trainer: StreamTrainer, generator: torch.Generator) -> None:
    """Re-initialise every layer of the tower from scratch (Xavier-uniform weights, zero
    biases, as the tower is built) and drop their Adam moments; the embedding tables and the
    rest of the model keep what they learnt."""
    tower = tower_of(model)
    layers = [*tower.linears, *([] if tower.head is None else [tower.head])]
    with torch.no_grad():
        for linear in layers:
            nn.init.xavier_uniform_(linear.weight, generator=generator)
            nn.init.zeros_(linear.bias)
            for parameter in (linear.weight, linear.bias):
                trainer.dense_optimizer.state.pop(parameter, None)


__all__ = [
    "FIELDS",
    "LARGE_WIDTHS",
    "ArchitectureChange",
    "ExpandableMLP",
    "build_model",
    "hidden_linears",
    "input_width",
    "limits_of",
    "model_bytes",
    "old_unit_masks",
    "reference_parameters",
    "reset_tower",
    "reshape",
    "shaped_parameters",
    "tower_of",
    "tower_options",
    "tower_parameters",
    "widths_after",
    "widths_of",
]
