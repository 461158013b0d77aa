"""Adaptive neural architectures per recommendation session: a controller that re-shapes a
recommender's tower at every session of a stream, and its baselines.

Two presets (``CONTROLLER_PRESETS``): ``paper``, RCL's LSTM policy trained by REINFORCE (or an
advantage actor-critic), and ``leanrec``, which prices every candidate change with a learned
model of the reward (:class:`CapacityController`). Every policy package exports the same
names: the config classes (:class:`AdaptiveConfig`, :class:`AdaptiveExperiment`), ``METHODS``
(the controllers and their baselines), ``run_experiment`` and the policies.
"""

from leanrec.search.adaptive.baselines import METHODS, AdaptiveMethod, Decision
from leanrec.search.adaptive.capacity import CapacityController
from leanrec.search.adaptive.config import (
    CONTROLLER_PRESETS,
    AdaptiveConfig,
    AdaptiveExperiment,
    controller_preset,
)
from leanrec.search.adaptive.experiment import run_experiment
from leanrec.search.adaptive.policy import ArchitectureController, Controller, SessionObservation

__all__ = [
    "CONTROLLER_PRESETS",
    "METHODS",
    "AdaptiveConfig",
    "AdaptiveExperiment",
    "AdaptiveMethod",
    "ArchitectureController",
    "CapacityController",
    "Controller",
    "Decision",
    "SessionObservation",
    "controller_preset",
    "run_experiment",
]
