"""Embedding size search: CIESS (Qu et al., SIGIR 2023) and its baselines.

- :mod:`.config` — :class:`CIESSConfig`, :class:`PEPConfig` and the experiment,
  :class:`EmbeddingSizeExperiment`, every knob with the paper's default; the ``paper`` and
  ``leanrec`` presets (:data:`PRESETS`, :func:`apply_preset`) and each of leanrec's additions
  as a switch (:data:`LEANREC_ADDITIONS`).
- :mod:`.environment` — sizes -> masks -> bounded training -> quality ``q_n`` (Eq. 6-9).
- :mod:`.policy` — TD3 actors/critics per role, random-walk exploration, Algorithm 1, resume.
- :mod:`.budget` — sparsity and the exact projection onto a target sparsity.
- :mod:`.retrain` — warm start, selection, projection, screen, selective retraining
  (Eq. 15-16), test metrics.
- :mod:`.memory` — stored, file and resident-at-serving bytes of a compressed model.
- :mod:`.baselines` — :data:`METHODS`: CIESS, ESAPN-style, SU, SR, popularity (size methods)
  and MagPrune, PEP (pruners) as method objects.
- :mod:`.experiment` — the Table 1 experiment in a run directory (JSON, markdown, PNG).
"""

from leanrec.search.embedding_size.baselines import METHODS
from leanrec.search.embedding_size.budget import (
    BudgetError,
    budget_values,
    fit_to_budget,
    sparsity,
)
from leanrec.search.embedding_size.config import (
    LEANREC_ADDITIONS,
    PRESETS,
    CIESSConfig,
    EmbeddingSizeExperiment,
    PEPConfig,
    apply_preset,
    preset_label,
)
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.search.embedding_size.experiment import run_experiment
from leanrec.search.embedding_size.policy import CIESSPolicy, CIESSSearch, SizeCandidate

__all__ = [
    "LEANREC_ADDITIONS",
    "METHODS",
    "PRESETS",
    "BudgetError",
    "CIESSConfig",
    "CIESSPolicy",
    "CIESSSearch",
    "EmbeddingSizeExperiment",
    "PEPConfig",
    "SizeCandidate",
    "SizeSearchEnvironment",
    "apply_preset",
    "budget_values",
    "fit_to_budget",
    "preset_label",
    "run_experiment",
    "sparsity",
]
