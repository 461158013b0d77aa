"""Training checkpoints: everything needed to resume exactly where a run stopped."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary file then rename: a kill never leaves a torn checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic` (tensors and plain values only)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


ModelT = TypeVar("ModelT", bound=torch.nn.Module)


class ResumableEpochs(Generic[ModelT]):
    """Early-stopping and resume bookkeeping shared by the epoch trainers.

    A trainer that mixes this in owns ``model``, ``optimizer`` and ``rng`` (a numpy
    ``Generator``); :meth:`_reset_progress` sets the fields below, :meth:`_progress_state`
    is what a checkpoint holds besides the trainer's config, and :meth:`_restore_progress` puts
    a checkpoint back. ``elapsed_seconds`` and ``finished_reason`` survive a resume, so a time
    budget is not reset by it and a run that had stopped early trains nothing more.
    """

    model: ModelT
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator

    def _reset_progress(self) -> None:
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0
        self.best_value = -math.inf
        self.patience_value = -math.inf
        """The last validation value that reset ``patience`` (``best_value`` when ``min_delta``
        is 0): a later one must exceed it by more than ``min_delta`` to reset it again."""
        self.bad_evaluations = 0
        self.start_epoch = 1
        self.elapsed_seconds = 0.0
        """Training time of the run so far, kept across resumes (``max_seconds`` counts it)."""
        self.finished_reason: str | None = None
        """``"patience"`` or ``"time budget"`` once the run has stopped early: a resume of a
        finished run then trains nothing."""

    def _progress_state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "patience_value": self.patience_value,
            "bad_evaluations": self.bad_evaluations,
            "elapsed_seconds": self.elapsed_seconds,
            "finished_reason": self.finished_reason,
        }

    def _track_validation(
        self, value: float, epoch: int, min_delta: float = 0.0, counts: bool = True
    ) -> bool:
        """Record one validation ``value``; True when it counts against ``patience``.

        Any gain over ``best_value`` keeps the weights as the new best. Only a gain of more than
        ``min_delta`` over ``patience_value`` resets ``bad_evaluations``; anything else adds one
        to it, unless ``counts`` is False (a warm-up evaluation).
        """
        if value > self.best_value:
            self.best_value, self.best_epoch = value, epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
        if value > self.patience_value + min_delta:
            self.patience_value, self.bad_evaluations = value, 0
            return False
        if counts:
            self.bad_evaluations += 1
        return counts

    def _restore_progress(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])
        self.best_state = state["best_state"]
        self.best_epoch = int(state["best_epoch"])
        self.best_value = float(state["best_value"])
        self.bad_evaluations = int(state["bad_evaluations"])
        # checkpoints written before min_delta existed: every gain reset patience
        self.patience_value = float(state.get("patience_value", self.best_value))
        self.start_epoch = int(state["epoch"]) + 1
        # checkpoints written before these keys existed: clock from zero, not finished
        self.elapsed_seconds = float(state.get("elapsed_seconds", 0.0))
        self.finished_reason = state.get("finished_reason")
