"""Trainers: pairwise BPR and sequential next-item, early stopping on validation, checkpoints,
resume."""

from leanrec.train.bpr import BPRTrainer, TrainerConfig, TrainingError, TrainResult, evaluate_model
from leanrec.train.sampling import NegativeSampler
from leanrec.train.sequential import SequentialTrainer, SequentialTrainerConfig

__all__ = [
    "BPRTrainer",
    "NegativeSampler",
    "SequentialTrainer",
    "SequentialTrainerConfig",
    "TrainResult",
    "TrainerConfig",
    "TrainingError",
    "evaluate_model",
]
