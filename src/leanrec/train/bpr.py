"""Pairwise (BPR) training with early stopping on validation, checkpoints and resume.

Loss per batch (Rendle et al. 2009; LightGCN Eq. 15)::

    L = -mean(log σ(ŷ_ui - ŷ_uj)) + λ · (|e_u|² + |e_i|² + |e_j|²) / 2 / B

where ``λ`` is :attr:`TrainerConfig.l2`; with ``n_negatives > 1`` the mean runs over every
(positive, negative) pair and ``|e_j|²`` sums over all negatives of the batch.
Model selection uses the validation split only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from leanrec.data.interactions import Interactions
from leanrec.embeddings.base import EmbeddingTable, sparse_gradients
from leanrec.evaluate import FullRankingEvaluator, RankingResult
from leanrec.models.base import Recommender
from leanrec.options import check_at_least, check_positive
from leanrec.runner.progress import progress
from leanrec.train.distributed import data_parallel
from leanrec.train.loop import (
    EpochHook,
    EpochLoop,
    EpochOutcome,
    LoopConfig,
    TrainResult,
    validation_entries,
)
from leanrec.train.row_optim import (
    EMBEDDING_OPTIMIZERS,
    check_resumed_embedding_optimizer,
    flush_rows,
    trainer_optimizer,
)
from leanrec.train.sampling import NegativeSampler
from leanrec.train.step import TrainingError as TrainingError  # importable from here too
from leanrec.train.step import gradient_step


def bpr_loss(
    model: Recommender,
    users: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    l2: float,
) -> torch.Tensor:
    """The module's BPR loss (see the module docstring) of one batch.

    Args:
        users: ``(B,)``; positives: ``(B,)``; negatives: ``(B,)`` or ``(B, n_negatives)``.
        l2: λ of the batch L2 penalty.
    """
    out = model.pairwise(users, positives, negatives)
    positive = out.positive_scores
    if out.negative_scores.dim() == 2:
        positive = positive[:, None]
    ranking = -F.logsigmoid(positive - out.negative_scores).mean()
    return ranking + l2 * out.l2


class PairwiseLoss(torch.nn.Module):
    """:func:`bpr_loss` as a module's ``forward``, so that DistributedDataParallel (which
    reduces the gradients of what runs through ``forward``) can wrap it.

    Args:
        model: the recommender whose BPR loss this is.
        l2: λ of the batch L2 penalty.
    """

    def __init__(self, model: Recommender, l2: float) -> None:
        super().__init__()
        self.model = model
        self.l2 = l2

    def forward(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        return bpr_loss(self.model, users, positives, negatives, self.l2)


@dataclass
class TrainerConfig:
    """Configuration of :class:`BPRTrainer`."""

    max_epochs: int = 100
    """Maximum number of passes over the training interactions."""
    batch_size: int = 2048
    """(user, positive, negative) triples per gradient step."""
    learning_rate: float = 1e-3
    """Adam step size."""
    embedding_optimizer: str = "sparse_adam"
    """How the ID tables are updated (:data:`~leanrec.train.row_optim.EmbeddingOptimizer`):
    ``"sparse_adam"`` (Adam on the rows a batch read, so a step costs the batch, not the
    table; a graph model propagating every row gets Adam on every row), ``"dense_adam"``
    (Adam over every row at every step, how the policies' published figures were trained),
    or ``"rowwise_adagrad"``. Figures: ``docs/design/sparse-optimizers.md``."""
    embedding_learning_rate: float | None = None
    """Step size of the row-wise table updates (None: ``learning_rate``); row-wise Adagrad
    wants a larger one than Adam."""
    n_negatives: int = 1
    """Sampled negatives per (user, positive); the BPR loss averages over all pairs."""
    l2: float = 1e-4
    """λ, weight of the batch L2 penalty on input embeddings."""
    weight_decay: float = 0.0
    """Adam weight decay on the non-embedding parameters (NGCF/NeuMF weights)."""
    eval_every: int = 1
    """Evaluate on validation every this many epochs."""
    patience: int = 10
    """Stop after this many evaluations without improvement of ``valid_metric``."""
    lr_decay: float = 1.0
    """Multiply the learning rate by this after an evaluation without improvement (1: never)."""
    min_epochs: int = 0
    """Warm-up: an evaluation at or before this epoch that does not improve counts for neither
    ``patience`` nor ``lr_decay`` (the best epoch is still tracked). Keeps a model that sits on a
    plateau in its first epochs (small embeddings trained from scratch) from being stopped and
    its step decayed to nothing before it starts learning. 0: every evaluation counts."""
    min_delta: float = 0.0
    """Smallest gain of ``valid_metric`` that resets ``patience`` (and spares ``lr_decay``): a gain
    of at most this over the last value that reset it counts as no improvement, although the
    model is still kept as the best if it is. Stops a run on a plateau whose +0.0001 steps
    would otherwise reset patience while the decayed step shrinks to nothing. 0: any gain."""
    valid_metric: str | None = None
    """Metric selecting the best epoch, on validation only (None: protocol's, else ndcg@20)."""
    ks: list[int] | None = None
    """Cut-offs evaluated (None: the protocol's, else 10 and 20)."""
    eval_batch_size: int | None = None
    """Users per evaluation batch (None: the evaluator's default, an 8 MiB block of scores)."""
    max_seconds: float | None = None
    """Wall-clock budget for training: no new epoch starts after it is spent (None: no limit)."""
    refit_epochs: int = 0
    """After model selection, train the selected model this many more epochs on training +
    validation interactions (its graph too), at the learning rate the selected epoch was
    trained with, before the test evaluation (:func:`leanrec.api.refit`). The validation
    carve-out then only chooses the epoch; the final model has seen every training
    interaction, as a model trained on a given train file without a carve-out has. 0: no
    refit (the model is tested as selected)."""
    seed: int = 2024
    """Seeds sampling and initialisation for the run."""
    num_threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""
    progress: bool | None = None
    """Show a progress bar (None: only when stderr is a terminal)."""
    validate_initial: bool = False
    """Validate the starting weights as epoch 0 and keep them when no later evaluation beats
    them; they also set the mark ``patience`` and ``lr_decay`` count from. For fine-tuning
    weights that are already trained (a warm start under a new mask); from a random start it
    only costs one evaluation."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "max_epochs", "batch_size", "n_negatives", "eval_every", "ks")
        check_at_least(self, 1, "eval_batch_size")
        check_at_least(self, 0, "patience", "min_epochs", "refit_epochs", "num_threads", "seed")
        check_at_least(self, 0, "l2", "weight_decay", "min_delta")
        check_at_least(self, 0, "learning_rate", "max_seconds")  # 0: frozen / spent (tests)
        check_positive(self, "lr_decay", "embedding_learning_rate")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
            raise ValueError(
                f"embedding_optimizer must be one of {EMBEDDING_OPTIMIZERS}, "
                f"got {self.embedding_optimizer!r}"
            )
        if self.lr_decay > 1:
            raise ValueError(f"lr_decay must be at most 1 (1: no decay), got {self.lr_decay}")

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any], drop_unknown: bool = False) -> TrainerConfig:
        """The config a run saved (``asdict`` in its ``config.json``). Keys of fields renamed
        since (:data:`RENAMED_FIELDS`) are read under the new name with a DeprecationWarning;
        other unknown keys are an error unless ``drop_unknown``. A config saved before
        ``embedding_optimizer`` existed was trained with ``"dense_adam"`` and reads so."""
        values = dict(saved)
        values.setdefault("embedding_optimizer", "dense_adam")
        for old, new in RENAMED_FIELDS.items():
            if old in values:
                warnings.warn(
                    f"trainer config key {old!r} is now {new!r}", DeprecationWarning, stacklevel=2
                )
                values.setdefault(new, values.pop(old))
        if drop_unknown:
            known = {f.name for f in fields(cls)}
            values = {key: value for key, value in values.items() if key in known}
        return cls(**values)


RENAMED_FIELDS = {"epochs": "max_epochs"}
"""Old :class:`TrainerConfig` keys of saved runs -> today's field names."""


def learning_rate_at(history: list[dict[str, float]], config: TrainerConfig, epoch: int) -> float:
    """The learning rate epoch ``epoch`` of a run trained with: ``learning_rate`` times
    ``lr_decay`` for every evaluation before that epoch that did not improve ``valid_metric`` by
    more than ``min_delta``, outside the ``min_epochs`` warm-up (the rule of
    :class:`~leanrec.train.loop.EpochLoop`, read back from its ``history``)."""
    key = f"valid_{config.valid_metric or 'ndcg@20'}"
    rate, reference = config.learning_rate, -math.inf
    for record in history:
        if record["epoch"] >= epoch or key not in record:
            continue
        if record[key] > reference + config.min_delta:
            reference = record[key]
        elif config.lr_decay < 1.0 and record["epoch"] > config.min_epochs:
            rate *= config.lr_decay
    return rate


class BPRTrainer(EpochLoop[Recommender]):
    """Trains a :class:`~leanrec.models.base.Recommender` with BPR.

    Args:
        model: the model to train (its training data already attached).
        train: training interactions (positives).
        valid: validation interactions, used for early stopping; may be empty (then the last
            epoch is kept).
        config: hyper-parameters.
        checkpoint_path: where to write the resumable state after every evaluation.
        on_epoch: hook called with ``(epoch, record)`` after every epoch.

    Under ``torchrun`` (:mod:`leanrec.train.distributed`) every rank draws the epoch's triples
    alike and trains on its part of each batch of ``batch_size`` triples; validation runs on
    rank 0.

    Example:
        >>> trainer = BPRTrainer(model, split.train, split.valid, TrainerConfig(max_epochs=5))
        >>> result = trainer.fit()
    """

    def __init__(
        self,
        model: Recommender,
        train: Interactions,
        valid: Interactions | None,
        config: TrainerConfig | None = None,
        checkpoint_path: str | Path | None = None,
        on_epoch: EpochHook | None = None,
    ) -> None:
        self.model = model
        self.train_data = train
        config = config or TrainerConfig()
        self.config = replace(
            config,
            valid_metric=config.valid_metric or "ndcg@20",
            ks=list(config.ks or [10, 20]),
        )
        if len(train) == 0:
            raise ValueError("cannot train on an empty training set")
        self.rng = np.random.default_rng(self.config.seed)
        self.sampler = NegativeSampler(train, self.rng)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.on_epoch = on_epoch
        self.validator = (
            FullRankingEvaluator(
                valid,
                exclude=[train],
                ks=self.config.ks or [10, 20],
                batch_size=self.config.eval_batch_size,
            )
            if valid is not None and len(valid) > 0
            else None
        )
        table_params = {id(p) for t in model.embedding_tables().values() for p in t.parameters()}
        other = [p for p in model.parameters() if id(p) not in table_params]
        groups: list[dict[str, Any]] = [
            {
                "params": [p for p in model.parameters() if id(p) in table_params],
                "weight_decay": 0.0,
            }
        ]
        if other:
            groups.append({"params": other, "weight_decay": self.config.weight_decay})
        self.tables = [m for m in model.modules() if isinstance(m, EmbeddingTable)]
        self.optimizer = trainer_optimizer(
            self.config.embedding_optimizer,
            groups,
            [p for table in self.tables for p in table.row_parameters()],
            lr=self.config.learning_rate,
            embedding_learning_rate=self.config.embedding_learning_rate,
        )
        self.data_parallel = data_parallel()
        self.row_parameters = [p for table in self.tables for p in table.row_parameters()]
        self.batch_loss: torch.nn.Module | None = None
        """The loss of a rank's part under DDP (a data-parallel run only)."""
        if self.data_parallel is not None:
            self.data_parallel.synchronize_start(model)
            sparse = self.config.embedding_optimizer != "dense_adam"
            self.batch_loss = self.data_parallel.wrap(
                PairwiseLoss(model, self.config.l2), self.row_parameters if sparse else []
            )
        self._reset_progress()

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int, max_batches: int | None = None) -> float:
        """One pass over the training interactions in random order; returns the mean loss.
        ``max_batches`` stops the pass after that many batches (throughput measurements)."""
        cfg = self.config
        self.model.train()
        order = self.rng.permutation(len(self.train_data))
        users_all = self.train_data.users[order]
        items_all = self.train_data.items[order]
        negatives_all = self.sampler.sample(users_all, cfg.n_negatives)
        starts = range(0, len(order), cfg.batch_size)
        if max_batches is not None:
            starts = starts[:max_batches]
        sparse = cfg.embedding_optimizer != "dense_adam"
        with sparse_gradients(self.tables, sparse, getattr(self.optimizer, "catch_up", None)):
            if self.data_parallel is None:
                total, count = self._train_batches(
                    epoch, starts, users_all, items_all, negatives_all
                )
            else:
                total, count = self._train_parts(epoch, starts, users_all, items_all, negatives_all)
        flush_rows(self.optimizer)  # rows not read since their last update catch up
        return total / max(1, count)

    def _train_batches(
        self,
        epoch: int,
        starts: range,
        users_all: np.ndarray,
        items_all: np.ndarray,
        negatives_all: np.ndarray,
    ) -> tuple[float, int]:
        """The epoch's gradient steps; returns (summed loss, triples)."""
        cfg = self.config
        total, count = 0.0, 0
        for start in progress(starts, desc=f"epoch {epoch}", enabled=cfg.progress):
            end = start + cfg.batch_size
            users = torch.from_numpy(users_all[start:end])
            positives = torch.from_numpy(items_all[start:end])
            negatives = torch.from_numpy(negatives_all[start:end])
            loss = bpr_loss(self.model, users, positives, negatives, cfg.l2)
            gradient_step(
                loss,
                self.optimizer,
                f"loss became {{loss}} at epoch {epoch}, batch starting at {start}; "
                f"try a smaller learning_rate (now {cfg.learning_rate})",
            )
            total += float(loss.detach()) * len(users)
            count += len(users)
        return total, count

    def _train_parts(
        self,
        epoch: int,
        starts: range,
        users_all: np.ndarray,
        items_all: np.ndarray,
        negatives_all: np.ndarray,
    ) -> tuple[float, int]:
        """A data-parallel epoch: this rank's part of every batch, the loss weighted so that
        the averaged gradient is the whole batch's (:mod:`leanrec.train.distributed`);
        returns (summed loss, triples) over every rank."""
        cfg = self.config
        parallel, batch_loss = self.data_parallel, self.batch_loss
        assert parallel is not None and batch_loss is not None
        n = len(users_all)
        sparse = cfg.embedding_optimizer != "dense_adam"
        row_parameters = self.row_parameters if sparse else []
        catch_up = getattr(self.optimizer, "catch_up", None)

        def synchronize() -> None:
            parallel.average_row_gradients(row_parameters, catch_up)

        total, count = 0.0, 0
        for start in progress(starts, desc=f"epoch {epoch}", enabled=cfg.progress):
            end = min(start + cfg.batch_size, n)
            part = parallel.part(start, end)
            if end - start < parallel.world_size:
                continue  # an empty part on some rank: skipped on every rank
            users = torch.from_numpy(users_all[part])
            positives = torch.from_numpy(items_all[part])
            negatives = torch.from_numpy(negatives_all[part])
            loss = batch_loss(users, positives, negatives)
            weight = parallel.loss_weight(len(users), end - start)
            gradient_step(
                loss if weight == 1.0 else loss * weight,
                self.optimizer,
                f"loss became {{loss}} at epoch {epoch}, batch starting at {start} "
                f"(rank {parallel.rank}); try a smaller learning_rate (now {cfg.learning_rate})",
                synchronize=synchronize,
            )
            total += float(loss.detach()) * len(users)
            count += len(users)
        total, count_sum = parallel.sum([total, float(count)])
        return total, int(count_sum)

    def validate(self) -> RankingResult | None:
        if self.validator is None:
            return None
        return evaluate_model(self.model, self.validator)

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until ``max_epochs`` or early stopping; restores the best-validation weights."""
        rules = LoopConfig.matching(
            self.config,
            metric=f"valid_{self.config.valid_metric}",
            has_validation=self.validator is not None,
        )
        return self.run_epochs(rules, resume)

    def train_step(self, epoch: int) -> EpochOutcome:
        return EpochOutcome(self.train_epoch(epoch))

    def validate_step(self, epoch: int) -> dict[str, float]:
        result = self.validate()
        if result is None:
            return {}
        if self.config.valid_metric not in result.mean:
            raise ValueError(
                f"valid_metric {self.config.valid_metric!r} is not computed; "
                f"available: {sorted(result.mean)}"
            )
        return validation_entries(result.mean, result.seconds)

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"config": asdict(self.config)}

    def restore(self, state: dict[str, Any]) -> None:
        check_resumed_embedding_optimizer(state, self.config.embedding_optimizer)
        super().restore(state)

    def weights_loaded(self) -> None:
        self.model.invalidate_cache()


def evaluate_model(model: Recommender, evaluator: FullRankingEvaluator) -> RankingResult:
    """Full-ranking evaluation of ``model`` in eval mode (restores its previous mode)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        # score_all returns a fresh tensor: masking it in place saves a copy per batch
        result = evaluator.evaluate(model.score_all, inplace=True)
    model.train(was_training)
    return result
