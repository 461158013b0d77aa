"""Architecture search (AMEIR, Zhao et al., IJCAI 2021): three-step one-shot random search over
behaviour blocks, Hadamard interactions and the aggregation MLP, and its two paper tables.

- :mod:`.config` — :class:`ArchitectureSearchConfig`, :class:`RetrievalSearchConfig` and the
  two experiments, :class:`ArchitectureExperiment` (CTR) and :class:`RetrievalExperiment`
  (next-item retrieval).
- :mod:`.policy` — the three steps (:func:`search_architecture`), their one-shot training,
  child scoring and resume.
- :mod:`.retrieval` — Step 1 alone on next-item sequences.
- :mod:`.baselines` — :data:`METHODS` and :data:`NEXT_ITEM_METHODS`, the registered methods
  of each table (hand-designed models, AMEIR, the NAS baselines).
- :mod:`.experiment` — :func:`run_experiment`, either table with JSON, markdown and PNG outputs.

The searched models themselves (:class:`~leanrec.models.ctr.ameir.AMEIRModel`, the
:class:`Architecture` description) live in :mod:`leanrec.models.ctr.ameir`.
"""

from leanrec.models.ctr.ameir.architecture import (
    ACTIVATIONS,
    LAYERS,
    MLP_ACTIVATIONS,
    NORMS,
    WIDTH_RATIOS,
    Architecture,
    BlockChoice,
)
from leanrec.search.architecture.baselines import METHODS, NEXT_ITEM_METHODS, AMEIRSearch
from leanrec.search.architecture.config import (
    ArchitectureExperiment,
    ArchitectureSearchConfig,
    RetrievalExperiment,
    RetrievalSearchConfig,
    apply_preset,
)
from leanrec.search.architecture.experiment import run_experiment
from leanrec.search.architecture.policy import SearchResult, search_architecture

__all__ = [
    "ACTIVATIONS",
    "LAYERS",
    "METHODS",
    "MLP_ACTIVATIONS",
    "NEXT_ITEM_METHODS",
    "NORMS",
    "WIDTH_RATIOS",
    "AMEIRSearch",
    "Architecture",
    "ArchitectureExperiment",
    "ArchitectureSearchConfig",
    "BlockChoice",
    "RetrievalExperiment",
    "RetrievalSearchConfig",
    "SearchResult",
    "apply_preset",
    "run_experiment",
    "search_architecture",
]
