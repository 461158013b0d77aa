"""Sampling AMEIR's three-stage search space (Zhao et al., IJCAI 2021, Sec. 2.3).

The operation sets and the :class:`~leanrec.models.ctr.ameir.architecture.Architecture` they
describe belong to the model (:mod:`leanrec.models.ctr.ameir.architecture`); this module draws
children from them uniformly, as AMEIR's one-shot random search does.
"""

from __future__ import annotations

import numpy as np

from leanrec.models.ctr.ameir.architecture import (
    ACTIVATIONS,
    LAYERS,
    MLP_ACTIVATIONS,
    NORMS,
    WIDTH_RATIOS,
    BlockChoice,
)

__all__ = ["sample_blocks", "sample_mlp"]


def sample_blocks(
    rng: np.random.Generator, n_blocks: int, has_target: bool = True
) -> tuple[BlockChoice, ...]:
    """``n_blocks`` blocks with every operation drawn uniformly (target attention only when
    ``has_target``)."""
    layers = LAYERS if has_target else tuple(x for x in LAYERS if x != "target_attention")
    return tuple(
        BlockChoice(
            norm=NORMS[rng.integers(len(NORMS))],
            layer=layers[rng.integers(len(layers))],
            activation=ACTIVATIONS[rng.integers(len(ACTIVATIONS))],
        )
        for _ in range(n_blocks)
    )


def sample_mlp(
    rng: np.random.Generator, n_layers: int
) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """``n_layers`` width ratios (uniform, then sorted non-increasing) and activations."""
    widths = sorted(
        (WIDTH_RATIOS[i] for i in rng.integers(len(WIDTH_RATIOS), size=n_layers)), reverse=True
    )
    activations = tuple(
        MLP_ACTIVATIONS[i] for i in rng.integers(len(MLP_ACTIVATIONS), size=n_layers)
    )
    return tuple(widths), activations
