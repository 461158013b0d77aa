"""Shared embedding assignment in streaming recommendation (AutoAssign+, arXiv 2308.06965)
and its baselines.

Every policy package exports the same names: the config classes (:class:`AutoAssignConfig`,
:class:`SharedEmbeddingExperiment`), ``METHODS`` (the policy and its baselines),
``run_experiment`` and the policy (:class:`IdentityAgent`, the actor and critic).
"""

from leanrec.search.shared_embedding.artifact import load_stream_model, save_stream_model
from leanrec.search.shared_embedding.baselines import METHODS, SharedEmbeddingMethod
from leanrec.search.shared_embedding.config import AutoAssignConfig, SharedEmbeddingExperiment
from leanrec.search.shared_embedding.experiment import run_experiment
from leanrec.search.shared_embedding.policy import IdentityAgent, LossHistory, reward
from leanrec.search.shared_embedding.trainer import AssigningTrainer

__all__ = [
    "METHODS",
    "AssigningTrainer",
    "AutoAssignConfig",
    "IdentityAgent",
    "LossHistory",
    "SharedEmbeddingExperiment",
    "SharedEmbeddingMethod",
    "load_stream_model",
    "reward",
    "run_experiment",
    "save_stream_model",
]
