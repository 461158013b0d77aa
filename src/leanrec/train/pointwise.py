"""Pointwise (click / no click) training of CTR models with early stopping on validation AUC.

Loss per batch::

    L = mean(BCE(σ(ŷ), y)) + λ · Σ |e|² / 2 / B

where ``λ`` is :attr:`CTRTrainerConfig.l2` and the sum runs over every embedding vector looked
up for the batch (fields, target, history items and tags; not the first-order weights).
Model selection uses the validation split only: the weights of the epoch with the best
validation AUC are restored at the end. The result reports training throughput (samples/s,
batching included, evaluation excluded) for comparison with other libraries.

Example:
    >>> model = build_ctr_model("deepfm", train.feature_map, seed=0)
    >>> result = CTRTrainer(CTRTrainerConfig(max_epochs=5)).fit(model, train, valid)
    >>> evaluate_ctr(model, test)
    {'auc': 0.79..., 'logloss': 0.53...}
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from leanrec.data.behavior import BehaviorSamples
from leanrec.embeddings.base import EmbeddingTable, sparse_gradients
from leanrec.evaluate.pointwise import auc, log_loss
from leanrec.models.ctr.base import CTRModel
from leanrec.options import check_at_least
from leanrec.runner.progress import progress
from leanrec.train.distributed import DataParallel, data_parallel
from leanrec.train.loop import EpochHook, EpochLoop, EpochOutcome, LoopConfig, validation_entries
from leanrec.train.row_optim import (
    EMBEDDING_OPTIMIZERS,
    check_resumed_embedding_optimizer,
    flush_rows,
    trainer_optimizer,
)
from leanrec.train.step import TrainingError, gradient_step

LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclass
class CTRTrainerConfig:
    """Configuration of :class:`CTRTrainer`."""

    learning_rate: float = 1e-3
    """Adam step size."""
    embedding_optimizer: str = "dense_adam"
    """How the ID and first-order tables are updated
    (:data:`~leanrec.train.row_optim.EmbeddingOptimizer`): ``"dense_adam"`` (Adam over every
    row at every step), ``"sparse_adam"`` (Adam on the rows a batch read; weight decay then
    reaches the first-order rows read only) or ``"rowwise_adagrad"``. Figures:
    ``docs/design/sparse-optimizers.md``."""
    embedding_learning_rate: float | None = None
    """Step size of the row-wise table updates (None: ``learning_rate``)."""
    batch_size: int = 1024
    """Samples per gradient step."""
    max_epochs: int = 10
    """Maximum number of passes over the training samples."""
    patience: int = 2
    """Stop after this many epochs without a validation-AUC improvement larger than
    ``min_delta``."""
    min_delta: float = 0.0
    """Smallest validation-AUC gain that counts as an improvement."""
    l2: float = 0.0
    """λ, weight of the batch L2 penalty on the looked-up embedding vectors."""
    weight_decay: float = 0.0
    """Adam weight decay on every parameter that is not an ID table (dense layers, first order)."""
    eval_batch_size: int = 8192
    """Samples per batch when evaluating."""
    max_seconds: float | None = None
    """Wall-clock budget of training; checked after every batch, the epoch then ends and is
    evaluated (None: no limit)."""
    seed: int = 2024
    """Seeds the shuffling and torch's generator (dropout) for the run."""
    num_threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""
    progress: bool | None = None
    """Show a progress bar (None: only when stderr is a terminal)."""
    validate_initial: bool = False
    """Validate the starting weights as epoch 0 and keep them when no epoch beats them (for
    fine-tuning weights inherited from elsewhere, e.g. a one-shot supernet)."""
    lr_schedule: str = "constant"
    """``"constant"``, or ``"cosine"``: batch ``s`` of ``S = max_epochs · ⌈n / batch_size⌉``
    uses ``η_s = η · (1 + cos(π t_s)) / 2`` with ``t_s = a + (b − a) · s / S`` and
    ``(a, b) = schedule_window`` (no restarts; ``t = 1`` reaches zero)."""
    schedule_window: tuple[float, float] = (0.0, 1.0)
    """The stretch ``(a, b)`` of one cosine schedule that this fit covers, so that several fits
    of the same weights can share one schedule (AMEIR's Step 2 cycles)."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "batch_size", "eval_batch_size")
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
            raise ValueError(
                f"embedding_optimizer must be one of {EMBEDDING_OPTIMIZERS}, "
                f"got {self.embedding_optimizer!r}"
            )
        if self.embedding_learning_rate is not None and self.embedding_learning_rate <= 0:
            raise ValueError(
                f"embedding_learning_rate must be > 0, got {self.embedding_learning_rate}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        start, end = self.schedule_window
        if not 0.0 <= start <= end <= 1.0:
            raise ValueError(f"schedule_window must satisfy 0 <= a <= b <= 1, got {start, end}")

    def lr_factor(self, step: int, total_steps: int) -> float:
        """``η_s / η`` for batch ``step`` (0-based) of ``total_steps``."""
        if self.lr_schedule == "constant":
            return 1.0
        start, end = self.schedule_window
        t = start + (end - start) * min(step, total_steps) / max(1, total_steps)
        return 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass
class CTRTrainResult:
    """What a :meth:`CTRTrainer.fit` run produced."""

    best_epoch: int
    """Epoch whose weights the model holds after training (best validation AUC)."""
    best_valid: dict[str, float]
    """Validation ``auc`` and ``logloss`` of ``best_epoch`` (empty without validation)."""
    history: list[dict[str, float]]
    """Per epoch: ``epoch``, ``loss``, ``train_seconds``, ``samples_per_second`` and, with
    validation, ``valid_auc``, ``valid_logloss``, ``eval_seconds``."""
    seconds: float
    """Wall-clock time of the whole fit (training + evaluation)."""
    train_seconds: float
    """Time spent in training batches (batching, forward, backward, step)."""
    samples_per_second: float
    """Training throughput: samples processed / ``train_seconds``."""
    epochs_run: int
    """Epochs started (the last one may be cut short by the time budget)."""
    stop_reason: str = "epochs"
    """``"epochs"``, ``"patience"`` (early stopping) or ``"time budget"``."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form details (parameter counts of the trained model)."""

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason != "epochs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def predict_ctr(model: CTRModel, samples: BehaviorSamples, batch_size: int = 8192) -> torch.Tensor:
    """Click probabilities ``(n,)`` of every sample, in eval mode (restores the previous mode)."""
    was_training = model.training
    model.eval()
    try:
        logits = [model(batch) for batch in samples.batches(batch_size)]
    finally:
        model.train(was_training)
    return torch.sigmoid(torch.cat(logits)) if logits else torch.zeros(0)


def evaluate_ctr(
    model: CTRModel, samples: BehaviorSamples, batch_size: int = 8192
) -> dict[str, float]:
    """``{"auc": ..., "logloss": ...}`` of ``model`` on ``samples`` (eval mode, no gradients).

    Raises:
        ValueError: if ``samples`` is empty or holds a single class (AUC undefined).
    """
    if len(samples) == 0:
        raise ValueError(f"cannot evaluate on an empty sample set ({samples.name})")
    probs = predict_ctr(model, samples, batch_size)
    return {"auc": auc(samples.labels, probs), "logloss": log_loss(samples.labels, probs)}


class PointwiseLoss(torch.nn.Module):
    """The module docstring's loss of one batch as a module's ``forward``, so that
    DistributedDataParallel can wrap it (a data-parallel run only).

    Args:
        model: the CTR model.
        l2: λ of the batch L2 penalty (0: none).
    """

    def __init__(self, model: CTRModel, l2: float) -> None:
        super().__init__()
        self.model = model
        self.l2 = l2

    def forward(self, batch: Any) -> torch.Tensor:
        if self.l2 > 0:
            logits, penalty = self.model.forward_with_l2(batch)
            return F.binary_cross_entropy_with_logits(logits, batch.labels) + self.l2 * penalty
        return F.binary_cross_entropy_with_logits(self.model(batch), batch.labels)


class CTRTrainer:
    """Trains a :class:`~leanrec.models.ctr.CTRModel` on click labels with Adam.

    Under ``torchrun`` (:mod:`leanrec.train.distributed`) every rank shuffles alike and trains
    on its part of each batch of ``batch_size`` samples; validation runs on rank 0.

    Args:
        config: hyper-parameters.
        on_epoch: hook called with ``(epoch, record)`` after every epoch.
    """

    def __init__(
        self,
        config: CTRTrainerConfig | None = None,
        on_epoch: EpochHook | None = None,
        checkpoint_path: str | Path | None = None,
    ) -> None:
        """``checkpoint_path``: where :meth:`fit` writes the resumable state after every
        evaluation (None: no checkpoints); ``fit(..., resume=True)`` continues from it."""
        self.config = config or CTRTrainerConfig()
        self.on_epoch = on_epoch
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None

    def _optimizer(self, model: CTRModel) -> torch.optim.Optimizer:
        tables = {id(p) for t in model.embedding_tables().values() for p in t.parameters()}
        groups: list[dict[str, Any]] = [
            {"params": [p for p in model.parameters() if id(p) in tables], "weight_decay": 0.0}
        ]
        dense = [p for p in model.parameters() if id(p) not in tables]
        if dense:
            groups.append({"params": dense, "weight_decay": self.config.weight_decay})
        return trainer_optimizer(
            self.config.embedding_optimizer,
            groups,
            [p for table in _tables(model) for p in table.row_parameters()],
            lr=self.config.learning_rate,
            embedding_learning_rate=self.config.embedding_learning_rate,
        )

    # ------------------------------------------------------------------ one epoch
    def train_epoch(
        self,
        model: CTRModel,
        optimizer: torch.optim.Optimizer,
        train: BehaviorSamples,
        rng: np.random.Generator,
        epoch: int,
        deadline: float | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        parallel: _ParallelSteps | None = None,
    ) -> tuple[float, int, bool]:
        """One shuffled pass; returns (mean loss, samples seen, whether the deadline passed).

        ``scheduler`` is stepped after every batch. With ``parallel`` (a data-parallel run),
        this rank trains on its part of every batch; the loss and count are every rank's."""
        cfg = self.config
        if parallel is not None:
            return self._train_parts(
                model, optimizer, train, rng, epoch, deadline, scheduler, parallel
            )
        model.train()
        total, count = 0.0, 0
        batches = train.batches(cfg.batch_size, shuffle=True, rng=rng)
        n_batches = math.ceil(len(train) / cfg.batch_size)
        out_of_time = False
        tables = _tables(model)
        sparse = cfg.embedding_optimizer != "dense_adam"
        for index, batch in enumerate(
            progress(batches, total=n_batches, desc=f"epoch {epoch}", enabled=cfg.progress)
        ):
            # the lookups decide the gradients' layout; the backward follows them
            with sparse_gradients(tables, sparse, getattr(optimizer, "catch_up", None)):
                if cfg.l2 > 0:
                    logits, penalty = model.forward_with_l2(batch)
                    loss = F.binary_cross_entropy_with_logits(logits, batch.labels)
                    loss = loss + cfg.l2 * penalty
                else:
                    loss = F.binary_cross_entropy_with_logits(model(batch), batch.labels)
            gradient_step(
                loss,
                optimizer,
                f"{model.name}: loss became {{loss}} at epoch {epoch}, batch {index} "
                f"(samples {index * cfg.batch_size}..{index * cfg.batch_size + len(batch)}); "
                f"try a smaller learning_rate (now {cfg.learning_rate}) and check the model's "
                "weights and inputs for NaN/inf",
            )
            if scheduler is not None:
                scheduler.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
            if deadline is not None and time.perf_counter() >= deadline:
                out_of_time = True
                break
        flush_rows(optimizer)  # rows not read since their last update catch up
        return total / max(1, count), count, out_of_time

    def _train_parts(
        self,
        model: CTRModel,
        optimizer: torch.optim.Optimizer,
        train: BehaviorSamples,
        rng: np.random.Generator,
        epoch: int,
        deadline: float | None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        steps: _ParallelSteps,
    ) -> tuple[float, int, bool]:
        """:meth:`train_epoch` of a data-parallel run: the order of
        :meth:`BehaviorSamples.batches` (the same shuffle on every rank), this rank's part of
        each batch, its loss weighted so that the averaged gradient is the batch's."""
        cfg, parallel = self.config, steps.parallel
        model.train()
        total, count = 0.0, 0
        order = np.arange(len(train))
        rng.shuffle(order)
        starts = range(0, len(order), cfg.batch_size)
        out_of_time = False
        tables = _tables(model)
        sparse = cfg.embedding_optimizer != "dense_adam"
        catch_up = getattr(optimizer, "catch_up", None)
        for index, start in enumerate(
            progress(starts, desc=f"epoch {epoch}", enabled=cfg.progress)
        ):
            batch_order = order[start : start + cfg.batch_size]
            if len(batch_order) < parallel.world_size:
                continue  # an empty part on some rank: skipped on every rank
            part = batch_order[parallel.part(0, len(batch_order))]
            batch = train.batch(part)
            with sparse_gradients(tables, sparse, catch_up):
                loss = steps.batch_loss(batch)
            weight = parallel.loss_weight(len(part), len(batch_order))
            gradient_step(
                loss if weight == 1.0 else loss * weight,
                optimizer,
                f"{model.name}: loss became {{loss}} at epoch {epoch}, batch {index} on rank "
                f"{parallel.rank}; try a smaller learning_rate (now {cfg.learning_rate})",
                synchronize=steps.synchronize,
            )
            if scheduler is not None:
                scheduler.step()
            total += float(loss.detach()) * len(part)
            count += len(part)
            if deadline is not None and parallel.agree(time.perf_counter() >= deadline):
                out_of_time = True
                break
        flush_rows(optimizer)
        total, count_sum = parallel.sum([total, float(count)])
        return total / max(1.0, count_sum), int(count_sum), out_of_time

    # ------------------------------------------------------------------ loop
    def fit(
        self,
        model: CTRModel,
        train: BehaviorSamples,
        valid: BehaviorSamples | None = None,
        resume: bool = False,
    ) -> CTRTrainResult:
        """Train ``model`` in place and leave it holding its best-validation weights.

        Without validation samples the last epoch's weights are kept. The model is left in
        eval mode. ``resume``: continue from the trainer's ``checkpoint_path`` (a killed run
        ends where an uninterrupted one ends).
        """
        cfg = self.config
        if len(train) == 0:
            raise ValueError("cannot train on an empty training set")
        has_valid = valid is not None and len(valid) > 0
        rules = LoopConfig.matching(
            cfg,
            metric="valid_auc",
            has_validation=has_valid,
            best_needs_min_delta=True,
            budget_check="end_of_epoch",
        )
        fit = _CTRFit(self, model, train, valid if has_valid else None)
        fit.checkpoint_path = self.checkpoint_path
        run = fit.run_epochs(rules, resume)
        model.eval()
        train_seconds = sum(r.get("train_seconds", 0.0) for r in run.history)
        return CTRTrainResult(
            best_epoch=run.best_epoch,
            best_valid=run.best_valid,
            history=run.history,
            seconds=run.seconds,
            train_seconds=train_seconds,
            samples_per_second=fit.samples_seen / max(train_seconds, 1e-12),
            epochs_run=run.epochs_run,
            stop_reason=run.stop_reason,
            extra={"parameters": model.parameter_counts()},
        )


def _tables(model: CTRModel) -> list[EmbeddingTable]:
    """Every table of ``model`` (ID and first-order tables alike)."""
    return [module for module in model.modules() if isinstance(module, EmbeddingTable)]


class _ParallelSteps:
    """The data-parallel pieces of one fit: the batch loss under DDP (the tables' row
    parameters left out under a row-wise optimiser) and the averaging of those rows'
    gradients after each backward."""

    def __init__(
        self,
        parallel: DataParallel,
        model: CTRModel,
        config: CTRTrainerConfig,
        optimizer: torch.optim.Optimizer,
    ) -> None:
        self.parallel = parallel
        parallel.synchronize_start(model)
        sparse = config.embedding_optimizer != "dense_adam"
        rows = [p for table in _tables(model) for p in table.row_parameters()] if sparse else []
        self.row_parameters = rows
        self.catch_up = getattr(optimizer, "catch_up", None)
        self.batch_loss = parallel.wrap(PointwiseLoss(model, config.l2), rows)

    def synchronize(self) -> None:
        self.parallel.average_row_gradients(self.row_parameters, self.catch_up)


class _CTRFit(EpochLoop[CTRModel]):
    """One :meth:`CTRTrainer.fit`: the epoch loop over the trainer's pass and an AUC validation.

    Its generator, optimizer and cosine schedule (stepped after every batch, ``S = max_epochs ·
    ⌈n / batch_size⌉`` steps) live for this fit only. The starting weights' validation (epoch
    0) is not passed to ``on_epoch`` and carries no ``eval_seconds``.
    """

    def __init__(
        self,
        trainer: CTRTrainer,
        model: CTRModel,
        train: BehaviorSamples,
        valid: BehaviorSamples | None,
    ) -> None:
        cfg = trainer.config
        self.trainer, self.model, self.train, self.valid = trainer, model, train, valid
        self.rng = np.random.default_rng(cfg.seed)
        self.optimizer = trainer._optimizer(model)
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if cfg.lr_schedule != "constant":
            total_steps = cfg.max_epochs * math.ceil(len(train) / cfg.batch_size)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda step: cfg.lr_factor(step, total_steps)
            )
        self.on_epoch = self._after_epoch if trainer.on_epoch is not None else None
        self.samples_seen = 0
        self.data_parallel = data_parallel()
        self.parallel_steps = (
            None
            if self.data_parallel is None
            else _ParallelSteps(self.data_parallel, model, cfg, self.optimizer)
        )
        self._reset_progress()

    def _after_epoch(self, epoch: int, record: dict[str, float]) -> None:
        if epoch > 0 and self.trainer.on_epoch is not None:
            self.trainer.on_epoch(epoch, record)

    def train_step(self, epoch: int) -> EpochOutcome:
        loss, seen, out_of_time = self.trainer.train_epoch(
            self.model,
            self.optimizer,
            self.train,
            self.rng,
            epoch,
            self.deadline,
            self.scheduler,
            self.parallel_steps,
        )
        self.samples_seen += seen
        return EpochOutcome(loss, seen, out_of_time)

    def validate_step(self, epoch: int) -> dict[str, float]:
        if self.valid is None:
            return {}
        began = time.perf_counter()
        metrics = evaluate_ctr(self.model, self.valid, self.trainer.config.eval_batch_size)
        return validation_entries(metrics, time.perf_counter() - began if epoch > 0 else None)

    def checkpoint_extra(self) -> dict[str, Any]:
        scheduler = None if self.scheduler is None else self.scheduler.state_dict()
        return {
            "config": asdict(self.trainer.config),
            "scheduler": scheduler,
            "samples_seen": self.samples_seen,
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_resumed_embedding_optimizer(state, self.trainer.config.embedding_optimizer)
        super().restore(state)
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.samples_seen = int(state.get("samples_seen", 0))


__all__ = [
    "CTRTrainResult",
    "CTRTrainer",
    "CTRTrainerConfig",
    "TrainingError",
    "evaluate_ctr",
    "predict_ctr",
]
