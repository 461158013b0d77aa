"""Architecture search (AMEIR, Zhao et al., IJCAI 2021): three-step one-shot random search over
behaviour blocks, Hadamard interactions and the aggregation MLP."""

from leanrec.models.ctr.ameir.architecture import (
    ACTIVATIONS,
    LAYERS,
    MLP_ACTIVATIONS,
    NORMS,
    WIDTH_RATIOS,
    Architecture,
    BlockChoice,
)

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "MLP_ACTIVATIONS",
    "NORMS",
    "WIDTH_RATIOS",
    "Architecture",
    "BlockChoice",
]
