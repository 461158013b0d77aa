"""The one epoch loop of every trainer: validation cadence, early stopping, learning-rate decay,
time budget, best weights, checkpoints and resume.

Contract. A trainer subclasses :class:`EpochLoop` (LensKit's trainer with a per-epoch hook) and
supplies only what is its own:

* ``model``, ``optimizer`` and ``rng`` (a numpy ``Generator``) attributes, plus
  ``checkpoint_path`` and ``on_epoch`` (both may be None), set before :meth:`EpochLoop.run_epochs`;
* :meth:`EpochLoop.train_step` — one pass over the training data → :class:`EpochOutcome`;
* :meth:`EpochLoop.validate_step` — the validation entries of the epoch's record
  (``valid_<metric>`` …, ``eval_seconds``), ``{}`` when there is nothing to validate;
* optionally :meth:`EpochLoop.checkpoint_extra` (what a checkpoint holds besides the model,
  optimizer, generators and the loop's progress) and :meth:`EpochLoop.weights_loaded`.

:meth:`EpochLoop.run_epochs` does the rest. For ``e = 1 .. max_epochs``:

1. train → record ``{"epoch": e, "loss", "train_seconds", ...}``;
2. validate when ``e % eval_every == 0``, at ``max_epochs``, or when the time budget is spent;
3. track ``metric`` of the validation (:meth:`EpochLoop.track_validation`): a better value keeps
   the weights; a gain of at most ``min_delta`` is an evaluation without improvement, which after
   the ``min_epochs`` warm-up counts against ``patience`` and multiplies the step size by
   ``lr_decay``;
4. stop on ``patience`` or the ``max_seconds`` budget; write the checkpoint (after every
   validation) and call ``on_epoch(e, record)``;
5. when no progress bar is shown because stderr is no terminal (``progress=None``, the default,
   in a log file or a background job), log one line for the epoch to stderr
   (:func:`epoch_line`), so a run can be followed; ``progress=False`` silences it too.

``validate_initial`` first validates the starting weights as epoch 0. At the end the model holds
the best weights (the last ones when none were kept, and that epoch is the best).

Resume: the checkpoint holds the model, optimizer, both generators and the loop's progress
(history, best weights, patience counters, clock, stop reason); ``run_epochs(resume=True)``
continues after its epoch, and as every random draw comes from the restored generators, a killed
run ends exactly where an uninterrupted one ends. The clock carries over (a resume does not reset
the budget) and a run that had stopped early trains nothing more.

Data-parallel runs (``data_parallel`` set, :mod:`leanrec.train.distributed`): every rank runs
this loop in step; :meth:`EpochLoop.validate_step` runs on rank 0 and its entries are broadcast,
the time budget is rank 0's clock, and the checkpoint is written by rank 0 with every rank's
torch generator, so the decisions (best epoch, patience, decay, stop) are the same on every rank.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import torch

from leanrec.errors import NaNScoresError, TrainingError
from leanrec.runner.progress import progress_enabled
from leanrec.train.checkpoint import save_atomic, start_run
from leanrec.train.distributed import DataParallel

EpochHook = Callable[[int, dict[str, float]], None]
"""Called with ``(epoch, record)`` after every epoch (and after the epoch-0 validation)."""

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


@dataclass(frozen=True)
class LoopConfig:
    """When :class:`EpochLoop` validates and stops (each trainer fills it from its config)."""

    max_epochs: int
    """Most passes over the training data."""
    patience: int
    """Stop after this many counted evaluations without improvement."""
    metric: str
    """Record key of the value that selects the best epoch (higher is better), ``valid_ndcg@20``."""
    eval_every: int = 1
    """Validate every this many epochs (and always at the last one)."""
    min_delta: float = 0.0
    """A gain of at most this over the value that last reset ``patience`` is no improvement."""
    min_epochs: int = 0
    """Warm-up: an evaluation at or before this epoch counts for neither ``patience`` nor decay."""
    lr_decay: float = 1.0
    """Multiply every group's step size by this after a counted evaluation (1: never)."""
    max_seconds: float | None = None
    """Time budget of the run, kept across resumes (None: no limit)."""
    validate_initial: bool = False
    """Validate the starting weights as epoch 0 (they may stay the best)."""
    has_validation: bool = True
    """False: no validation data, so ``patience`` never stops the run."""
    best_needs_min_delta: bool = False
    """True: only a gain of more than ``min_delta`` keeps the weights (CTR trainer). False: any
    gain keeps them, though only a larger one resets ``patience`` (BPR trainer)."""
    budget_check: Literal["after_training", "end_of_epoch"] = "after_training"
    """``"after_training"``: the budget is checked once the epoch has trained (a spent budget
    makes the epoch validate), and ``patience`` wins when both stop the run.
    ``"end_of_epoch"``: checked again after the validation, and the budget wins (CTR trainer)."""
    num_threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""
    seed: int = 2024
    """Seeds torch's generator at the start of the run (a resume then restores its state)."""
    progress: bool | None = None
    """The trainer's progress bar setting: ``None`` logs one line per epoch to stderr when no
    bar is shown (stderr is no terminal); ``False`` logs nothing; ``True`` shows the bar."""

    @property
    def logs_epochs(self) -> bool:
        """Whether :meth:`EpochLoop.run_epochs` writes :func:`epoch_line` to stderr."""
        return self.progress is None and not progress_enabled(None)

    @classmethod
    def matching(cls, trainer_config: Any, **settings: Any) -> LoopConfig:
        """The rules a trainer config states in fields of the same names as these (the three
        trainer configs name ``max_epochs``, ``patience``, ``max_seconds`` … alike), then
        ``settings``, for the rest (``metric``) and the trainer's fixed choices."""
        names = {f.name for f in fields(cls)} - set(settings)
        own = {
            name: getattr(trainer_config, name) for name in names if hasattr(trainer_config, name)
        }
        return cls(**own, **settings)


@dataclass
class EpochOutcome:
    """What one training pass reports."""

    loss: float
    """Mean training loss of the pass."""
    samples: int | None = None
    """Training samples of the pass: the record then carries ``samples_per_second``."""
    budget_spent: bool = False
    """The pass itself ended early because the time budget ran out."""


@dataclass
class TrainResult:
    """What a training run produced (the model then holds the weights of ``best_epoch``)."""

    best_epoch: int
    best_valid: dict[str, float]
    """The validation metrics of ``best_epoch`` (its record's ``valid_*`` entries)."""
    history: list[dict[str, float]]
    """One record per epoch (epoch 0: the starting weights' validation)."""
    seconds: float
    epochs_run: int
    stopped_early: bool
    stop_reason: str = "epochs"
    """``"epochs"``, ``"patience"`` (early stopping) or ``"time budget"``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def epoch_line(record: Mapping[str, float], rules: LoopConfig, best_epoch: int) -> str:
    """One log line of an epoch's record: its loss, the selection metric when it validated,
    the best epoch so far and the time, e.g.
    ``epoch 3/100: loss 0.4321, valid_ndcg@20 0.0567 (best epoch 3), 1.2 s``."""
    parts = [f"epoch {int(record['epoch'])}/{rules.max_epochs}:"]
    if "loss" in record:
        parts.append(f"loss {record['loss']:.4f},")
    if rules.metric in record:
        parts.append(f"{rules.metric} {record[rules.metric]:.4f} (best epoch {best_epoch}),")
    seconds = record.get("train_seconds", 0.0) + record.get("eval_seconds", 0.0)
    return " ".join(parts) + f" {seconds:.1f} s"


def validation_entries(metrics: Mapping[str, float], seconds: float | None) -> dict[str, float]:
    """The record entries of one validation: ``valid_<metric>`` and, if given, ``eval_seconds``."""
    entries = {f"valid_{name}": value for name, value in metrics.items()}
    if seconds is not None:
        entries["eval_seconds"] = seconds
    return entries


_NAN_SCORES = "nan_scores"
"""The validation entry that says the model scored NaN (its weights diverged)."""


class EpochLoop(Generic[ModelT]):
    """The loop of the module docstring; its fields are the resumable progress of a run."""

    model: ModelT
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    loop_config: LoopConfig
    checkpoint_path: Path | None = None
    on_epoch: EpochHook | None = None
    data_parallel: DataParallel | None = None
    """The ranks of a data-parallel run (None: one process)."""

    def _reset_progress(self) -> None:
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0
        self.best_value = -math.inf
        self.patience_value = -math.inf
        """The last value that reset ``patience`` (``best_value`` when ``min_delta`` is 0)."""
        self.bad_evaluations = 0
        self.start_epoch = 1
        self.elapsed_seconds = 0.0
        """Time of the run so far, kept across resumes (``max_seconds`` counts it)."""
        self.finished_reason: str | None = None
        """``"patience"`` or ``"time budget"`` once the run has stopped early."""
        self.deadline: float | None = None
        """``time.perf_counter()`` at which the budget is spent (None: no budget)."""

    # ------------------------------------------------------------------ the trainer's part
    def train_step(self, epoch: int) -> EpochOutcome:
        """Train one pass over the training data."""
        raise NotImplementedError

    def validate_step(self, epoch: int) -> dict[str, float]:
        """Validate the current weights: the record entries, ``{}`` for none."""
        raise NotImplementedError

    def checkpoint_extra(self) -> dict[str, Any]:
        """What a checkpoint holds besides the loop's state (e.g. the trainer's config)."""
        return {}

    def weights_loaded(self) -> None:
        """Called after the loop loads weights into the model (a resume, the best epoch)."""

    # ------------------------------------------------------------------ the loop
    def run_epochs(self, rules: LoopConfig, resume: bool = False) -> TrainResult:
        """Train until ``max_epochs``, patience or the time budget (see the module docstring)."""
        self.loop_config = rules
        state = start_run(rules.num_threads, rules.seed, self.checkpoint_path, resume)
        parallel = self.data_parallel
        if parallel is not None and parallel.rank:
            torch.manual_seed(rules.seed + parallel.rank)  # dropout masks of its own part
        if state is not None:
            self.restore(state)
        began = time.perf_counter() - self.elapsed_seconds
        self.deadline = None if rules.max_seconds is None else began + rules.max_seconds
        stop_reason = self.finished_reason or "epochs"
        epoch = self.start_epoch - 1
        first = rules.max_epochs + 1 if self.finished_reason else self.start_epoch
        if rules.validate_initial and not self.history:
            record: dict[str, float] = {"epoch": 0}
            if self._validate_into(record, 0):
                self.history.append(record)
                self._save(0)
                if self.on_epoch is not None:
                    self.on_epoch(0, record)
                self._log_epoch(record)
        for epoch in range(first, rules.max_epochs + 1):
            t0 = time.perf_counter()
            outcome = self.train_step(epoch)
            seconds = time.perf_counter() - t0
            record = {"epoch": epoch, "loss": outcome.loss, "train_seconds": seconds}
            if outcome.samples is not None:
                record["samples_per_second"] = outcome.samples / max(seconds, 1e-12)
            out_of_time = outcome.budget_spent or self._budget_spent()
            validate_now = epoch % rules.eval_every == 0 or epoch == rules.max_epochs or out_of_time
            if validate_now:
                self._validate_into(record, epoch)
            self.history.append(record)
            stop = self._stop_reason(out_of_time)
            self.finished_reason = stop
            self.elapsed_seconds = time.perf_counter() - began
            if validate_now:
                self._save(epoch)
            if self.on_epoch is not None:
                self.on_epoch(epoch, record)
            self._log_epoch(record)
            if stop is not None:
                stop_reason = stop
                break
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            self.weights_loaded()
        else:
            self.best_epoch = epoch
        best = next((r for r in self.history if r["epoch"] == self.best_epoch), {})
        return TrainResult(
            best_epoch=self.best_epoch,
            best_valid={k[6:]: v for k, v in best.items() if k.startswith("valid_")},
            history=self.history,
            seconds=time.perf_counter() - began,
            epochs_run=epoch,
            stopped_early=stop_reason != "epochs",
            stop_reason=stop_reason,
        )

    def _log_epoch(self, record: Mapping[str, float]) -> None:
        rules = self.loop_config
        if self.data_parallel is not None and not self.data_parallel.is_main:
            return  # rank 0 logs the run
        if rules.logs_epochs:
            line = epoch_line(record, rules, self.best_epoch)
            print(line, file=sys.stderr, flush=True)

    def _budget_spent(self) -> bool:
        """Whether the time budget is spent (rank 0's clock on every rank of a data-parallel
        run: the check is then collective, every rank must make it)."""
        spent = self.deadline is not None and time.perf_counter() >= self.deadline
        if self.data_parallel is not None and self.deadline is not None:
            return self.data_parallel.agree(spent)
        return spent

    def _stop_reason(self, out_of_time: bool) -> str | None:
        rules = self.loop_config
        no_patience = rules.has_validation and self.bad_evaluations >= rules.patience
        if rules.budget_check == "end_of_epoch":
            out_of_time = out_of_time or self._budget_spent()
            return "time budget" if out_of_time else "patience" if no_patience else None
        return "patience" if no_patience else "time budget" if out_of_time else None

    def _validate_or_mark_nan(self, epoch: int) -> dict[str, float]:
        """:meth:`validate_step`'s entries, or ``{_NAN_SCORES: epoch}`` when the model scored
        NaN (a marker a data-parallel run broadcasts like any entries)."""
        try:
            return self.validate_step(epoch)
        except NaNScoresError:
            return {_NAN_SCORES: float(epoch)}

    def _validate_into(self, record: dict[str, float], epoch: int) -> bool:
        """Validate into ``record``, track the metric and decay the step; False: no validation."""
        rules = self.loop_config
        parallel = self.data_parallel
        if parallel is None:
            entries = self._validate_or_mark_nan(epoch)
        else:  # every rank learns of NaN scores, so every rank stops
            main = parallel.is_main
            entries = parallel.broadcast(self._validate_or_mark_nan(epoch) if main else {})
        if _NAN_SCORES in entries:
            config = getattr(self, "config", None)
            rate = getattr(config, "learning_rate", None)
            now = "" if rate is None else f" (now {rate})"
            raise TrainingError(
                f"the model's validation scores became NaN at epoch {epoch} (its weights "
                f"diverged); try a smaller learning_rate{now}"
            )
        record.update(entries)
        if rules.metric not in entries:
            return bool(entries)
        counted = self.track_validation(entries[rules.metric], epoch)
        if counted and rules.lr_decay < 1.0:
            for group in self.optimizer.param_groups:
                group["lr"] *= rules.lr_decay
        return True

    def track_validation(self, value: float, epoch: int) -> bool:
        """Record one validation ``value``; True when it counts against ``patience``.

        A gain over ``best_value`` keeps the weights as the new best (with
        ``best_needs_min_delta``: only a gain that also resets ``patience``). Only a gain of more
        than ``min_delta`` over ``patience_value`` resets ``bad_evaluations``; anything else adds
        one to it, unless ``epoch`` is inside the ``min_epochs`` warm-up.
        """
        rules = self.loop_config
        resets = value > self.patience_value + rules.min_delta
        if resets if rules.best_needs_min_delta else value > self.best_value:
            self.best_value, self.best_epoch = value, epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
        if resets:
            self.patience_value, self.bad_evaluations = value, 0
            return False
        counts = epoch > rules.min_epochs
        if counts:
            self.bad_evaluations += 1
        return counts

    # ------------------------------------------------------------------ checkpoint / resume
    def _save(self, epoch: int) -> None:
        if self.checkpoint_path is None:
            return
        parallel = self.data_parallel
        if parallel is None:
            state = {**self.progress_state(epoch), **self.checkpoint_extra()}
            save_atomic(state, self.checkpoint_path)
            return
        generators = parallel.gather(torch.get_rng_state())
        if parallel.is_main:
            state = {**self.progress_state(epoch), **self.checkpoint_extra()}
            state["rank_torch_rng"] = generators
            save_atomic(state, self.checkpoint_path)
        parallel.barrier()  # a kill after this returns leaves the checkpoint of this epoch

    def progress_state(self, epoch: int) -> dict[str, Any]:
        """The checkpoint of the run after ``epoch``."""
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

    def restore(self, state: dict[str, Any]) -> None:
        """Put a checkpoint of :meth:`progress_state` back."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        generators = state.get("rank_torch_rng") or []
        if self.data_parallel is not None and self.data_parallel.rank < len(generators):
            torch.set_rng_state(generators[self.data_parallel.rank])
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
        self.weights_loaded()
