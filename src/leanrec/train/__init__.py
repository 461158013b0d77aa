"""Trainers: pairwise BPR with early stopping on validation, checkpoints, resume."""

from leanrec.train.bpr import BPRTrainer, TrainerConfig, TrainingError, TrainResult, evaluate_model
from leanrec.train.sampling import NegativeSampler

__all__ = [
    "BPRTrainer",
    "NegativeSampler",
    "TrainResult",
    "TrainerConfig",
    "TrainingError",
    "evaluate_model",
]
