"""Learned sketching of user histories (DiPS, Ghosh, Mitra & Lan, AAAI 2022) and its baselines."""

from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.model import SketchNCF
from leanrec.search.sketch.policy import LearnedDecider, SketchScorer
from leanrec.search.sketch.trainer import (
    METHODS,
    SketchMetrics,
    SketchTrainResult,
    evaluate_sketch,
    make_decider,
    train_sketch,
)

__all__ = [
    "METHODS",
    "LearnedDecider",
    "SketchConfig",
    "SketchMetrics",
    "SketchNCF",
    "SketchScorer",
    "SketchTrainResult",
    "evaluate_sketch",
    "make_decider",
    "train_sketch",
]
