"""Learned sketching of user histories (DiPS, Ghosh, Mitra & Lan, AAAI 2022) and its baselines.

Every policy package exports the same names: the config classes (:class:`SketchConfig`,
:class:`SketchExperiment`) and ``apply_preset`` (the ``paper`` and ``leanrec`` presets),
``METHODS`` (the policy and its baselines), ``run_experiment`` and
the policy (:class:`SketchScorer` ``f(·; Φ)``, applied by :class:`LearnedDecider` and learned by
:class:`QueuePolicyGradient`).
"""

from leanrec.search.sketch.baselines import METHODS, SketchMethod, make_decider
from leanrec.search.sketch.config import SketchConfig, SketchExperiment, apply_preset
from leanrec.search.sketch.experiment import run_experiment
from leanrec.search.sketch.model import SketchNCF
from leanrec.search.sketch.policy import LearnedDecider, QueuePolicyGradient, SketchScorer
from leanrec.search.sketch.trainer import (
    SketchMetrics,
    SketchTrainResult,
    evaluate_sketch,
    train_sketch,
)

__all__ = [
    "METHODS",
    "LearnedDecider",
    "QueuePolicyGradient",
    "SketchConfig",
    "SketchExperiment",
    "SketchMethod",
    "SketchMetrics",
    "SketchNCF",
    "SketchScorer",
    "SketchTrainResult",
    "apply_preset",
    "evaluate_sketch",
    "make_decider",
    "run_experiment",
    "train_sketch",
]
