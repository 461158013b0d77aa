"""Embedding size search: CIESS (Qu et al., SIGIR 2023) and its baselines.

- :mod:`.config` — :class:`CIESSConfig`, every knob with the paper's default.
- :mod:`.environment` — sizes -> masks -> bounded training -> quality ``q_n`` (Eq. 6-9).
- :mod:`.policy` — TD3 actors/critics per role, random-walk exploration, Algorithm 1, resume.
- :mod:`.budget` — sparsity and the exact projection onto a target sparsity.
- :mod:`.retrain` — warm start, selective retraining (Eq. 15-16), test metrics.
- :mod:`.baselines` — SU, SR, popularity-proportional, MagPrune.
- :mod:`.experiment` — the Table 1 experiment with JSON, markdown and PNG outputs.
"""

from leanrec.search.embedding_size.budget import (
    BudgetError,
    budget_values,
    fit_to_budget,
    sparsity,
)
from leanrec.search.embedding_size.config import CIESSConfig
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.search.embedding_size.experiment import EmbeddingSizeExperiment, run_experiment
from leanrec.search.embedding_size.policy import CIESSPolicy, CIESSSearch, SizeCandidate

__all__ = [
    "BudgetError",
    "CIESSConfig",
    "CIESSPolicy",
    "CIESSSearch",
    "EmbeddingSizeExperiment",
    "SizeCandidate",
    "SizeSearchEnvironment",
    "budget_values",
    "fit_to_budget",
    "run_experiment",
    "sparsity",
]
