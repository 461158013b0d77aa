"""Adaptive neural architectures per recommendation session: an RCL-style controller that
re-shapes a recommender's deep tower at every session of a stream, and its baselines.

Every policy package exports the same names: the config classes (:class:`AdaptiveConfig`,
:class:`AdaptiveExperiment`), ``METHODS`` (the controller and its baselines),
``run_experiment`` and the policy (:class:`Controller`, its network
:class:`ArchitectureController`).
"""

from leanrec.search.adaptive.baselines import METHODS, AdaptiveMethod, Decision
from leanrec.search.adaptive.config import AdaptiveConfig, AdaptiveExperiment
from leanrec.search.adaptive.experiment import run_experiment
from leanrec.search.adaptive.policy import ArchitectureController, Controller, SessionObservation

__all__ = [
    "METHODS",
    "AdaptiveConfig",
    "AdaptiveExperiment",
    "AdaptiveMethod",
    "ArchitectureController",
    "Controller",
    "Decision",
    "SessionObservation",
    "run_experiment",
]
