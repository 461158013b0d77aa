"""Train a sequential next-item model (SASRec, GRU4Rec) under leave-one-out, in one call.

The data: a registered sequence dataset (``"beauty"``), a file of one's own
(:class:`~leanrec.data.own.DataFile`: a sequence file, or a table with a time column) or
``"synthetic"``. Each user's last item is the test target, the second last the validation
target (:class:`~leanrec.data.sequential.NextItemSplit`). Evaluation ranks the target against
``negatives``: ``n_negatives`` (100) items the user never interacted with drawn uniformly
(``"uniform"``, the default, as the experiments draw them) or by popularity
(``"popularity"``, BERT4Rec), or against every item (``"all"``: full ranking, the user's
earlier items excluded). Validation
uses the same kind of negatives as the test, so the epoch chosen answers the metric reported.

Example:
    >>> run = train_next_item(NextItemTrainConfig(dataset="synthetic", model="gru4rec"))
    >>> run.test_metrics["ndcg@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from leanrec.data.errors import DataError
from leanrec.data.own import DataFile, dataset_name
from leanrec.data.presets import load_interactions
from leanrec.data.sequential import NextItemSplit
from leanrec.models.seq import SEQUENCE_ENCODERS, build_next_item_model, save_next_item_model
from leanrec.models.seq.base import NextItemModel
from leanrec.options import check_literals
from leanrec.runner.rundir import atomic_write_json
from leanrec.train.loop import EpochHook, TrainResult, validation_entries
from leanrec.train.sequential import EvalProtocol, SequentialTrainer, SequentialTrainerConfig

__all__ = ["EvalNegatives", "NextItemRun", "NextItemTrainConfig", "train_next_item"]

EvalNegatives = Literal["uniform", "popularity", "all"]

NEXT_ITEM_MODELS: tuple[str, ...] = tuple(sorted(SEQUENCE_ENCODERS))
"""Model names :func:`train_next_item` takes (``gru4rec``, ``sasrec``)."""


@dataclass
class NextItemTrainConfig:
    """One next-item training run; ``leanrec train --model sasrec`` builds the same object."""

    dataset: str | DataFile = "synthetic"
    """Registered sequence dataset, a :class:`DataFile` of one's own, or ``"synthetic"``."""
    model: str = "sasrec"
    """``"sasrec"`` or ``"gru4rec"``."""
    negatives: EvalNegatives = "uniform"
    """Evaluation candidates: 100 uniform or popularity-drawn unseen items, or ``"all"``."""
    max_length: int = 50
    """Window length ``N`` (SASRec's own ``max_length`` follows it)."""
    n_negatives: int = 100
    """Sampled candidates per evaluated user (BERT4Rec: 100); unused with ``"all"``."""
    data_dir: str | None = None
    """Data directory of registered datasets."""
    seed: int = 2024
    """Seeds the candidates, the initialisation and the training."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Overrides of the encoder's config (e.g. ``{"embedding_dim": 32}``)."""
    trainer: SequentialTrainerConfig = field(default_factory=SequentialTrainerConfig)
    """Optimisation and early stopping."""
    run_dir: str | None = None
    """Write config, metrics, history and the model here (None: write nothing)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.model not in NEXT_ITEM_MODELS:
            raise ValueError(f"model {self.model!r}: expected one of {list(NEXT_ITEM_MODELS)}")
        for name in ("max_length", "n_negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class NextItemRun:
    """A trained next-item model with its split and metrics."""

    model: NextItemModel
    split: NextItemSplit
    config: NextItemTrainConfig
    train_result: TrainResult
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float]

    @property
    def protocol(self) -> EvalProtocol:
        """``"full"`` for ``negatives="all"``, else ``"sampled"``."""
        return "full" if self.config.negatives == "all" else "sampled"


class _FullValidationTrainer(SequentialTrainer):
    """Validates on full ranking, as the test of ``negatives="all"`` is."""

    def validate_step(self, epoch: int) -> dict[str, float]:
        result = self.evaluate("valid", "full")
        return validation_entries(result.mean, result.seconds)


def train_next_item(
    config: NextItemTrainConfig | None = None, on_epoch: EpochHook | None = None
) -> NextItemRun:
    """Load, split leave-one-out, train with early stopping on validation, evaluate on test."""
    config = config or NextItemTrainConfig()
    data = load_interactions(config.dataset, config.data_dir, seed=config.seed)
    if isinstance(data, tuple):
        raise DataError(
            f"{dataset_name(config.dataset)!r} is a fixed train/test pair without time order; "
            "next-item models need per-user sequences"
        )
    if data.timestamps is None:
        raise DataError(
            f"{dataset_name(config.dataset)!r} has no time order: next-item models need a "
            "sequence file or a table with a time column (--time-col)"
        )
    split = NextItemSplit.from_interactions(
        data,
        config.max_length,
        n_negatives=0 if config.negatives == "all" else config.n_negatives,
        negative_sampling="popularity" if config.negatives == "popularity" else "uniform",
        seed=config.seed,
    )
    options = dict(config.model_options)
    if config.model == "sasrec":
        options.setdefault("max_length", config.max_length)
    model = build_next_item_model(config.model, split.n_items, options, seed=config.seed)
    run_dir = Path(config.run_dir) if config.run_dir else None
    trainer_class = _FullValidationTrainer if config.negatives == "all" else SequentialTrainer
    trainer = trainer_class(
        model,
        split,
        config.trainer,
        checkpoint_path=run_dir / "train_state.pt" if run_dir else None,
        on_epoch=on_epoch,
    )
    result = trainer.fit()
    protocol: EvalProtocol = "full" if config.negatives == "all" else "sampled"
    test = trainer.evaluate("test", protocol)
    run = NextItemRun(model, split, config, result, result.best_valid, dict(test.mean))
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", dataclasses.asdict(config))
        atomic_write_json(
            run_dir / "metrics.json",
            {
                "dataset": dataset_name(config.dataset),
                "model": config.model,
                "negatives": config.negatives,
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                **{f"valid_{k}": v for k, v in run.valid_metrics.items()},
                **{f"test_{k}": v for k, v in run.test_metrics.items()},
            },
        )
        atomic_write_json(run_dir / "history.json", result.history)
        model.history_length = config.max_length  # served histories are cut as in training
        save_next_item_model(model, run_dir / "model.pt", data.item_vocab.raw_ids)
        state = run_dir / "train_state.pt"
        if state.exists():
            state.unlink()
    return run
