"""AMEIR's searched CTR model (Zhao et al., IJCAI 2021) and its building blocks.

A saved AMEIR model loads and serves from here alone; the search that finds architectures
(:mod:`leanrec.search.architecture`) builds its one-shot models on these parts.

* :mod:`~leanrec.models.ctr.ameir.architecture`: the operation sets and :class:`Architecture`.
* :mod:`~leanrec.models.ctr.ameir.blocks`: behaviour layers, blocks and :class:`BehaviorNetwork`.
* :mod:`~leanrec.models.ctr.ameir.interactions`: Hadamard interactions and the SE shortcut.
* :mod:`~leanrec.models.ctr.ameir.mlp`: the aggregation MLP.
* :mod:`~leanrec.models.ctr.ameir.model`: :class:`AMEIRModel` and :class:`AMEIRConfig`.
"""

from leanrec.models.ctr.ameir.architecture import (
    ACTIVATIONS,
    LAYERS,
    MLP_ACTIVATIONS,
    NORMS,
    PAPER_READOUT,
    READOUT_PARTS,
    WIDTH_RATIOS,
    Architecture,
    BlockChoice,
    Interaction,
)
from leanrec.models.ctr.ameir.blocks import BehaviorNetwork
from leanrec.models.ctr.ameir.model import AMEIRConfig, AMEIRModel

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "MLP_ACTIVATIONS",
    "NORMS",
    "PAPER_READOUT",
    "READOUT_PARTS",
    "WIDTH_RATIOS",
    "AMEIRConfig",
    "AMEIRModel",
    "Architecture",
    "BehaviorNetwork",
    "BlockChoice",
    "Interaction",
]
