"""Trainers: pairwise BPR, pointwise CTR and sequential next-item, each an epoch step and a
validation step on one loop (:mod:`.loop`: early stopping on validation, checkpoints, resume)."""

from leanrec.train.bpr import BPRTrainer, TrainerConfig, evaluate_model
from leanrec.train.loop import EpochLoop, EpochOutcome, LoopConfig, TrainResult
from leanrec.train.sampling import NegativeSampler
from leanrec.train.sequential import SequentialTrainer, SequentialTrainerConfig
from leanrec.train.step import TrainingError

__all__ = [
    "BPRTrainer",
    "EpochLoop",
    "EpochOutcome",
    "LoopConfig",
    "NegativeSampler",
    "SequentialTrainer",
    "SequentialTrainerConfig",
    "TrainResult",
    "TrainerConfig",
    "TrainingError",
    "evaluate_model",
]
