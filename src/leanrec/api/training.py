"""The Python entry point: one typed config, one call that trains and returns the model.

Example:
    >>> from leanrec.api import TrainConfig, train
    >>> run = train(TrainConfig(dataset="synthetic", model="mf"))
    >>> run.test_metrics["recall@20"]          # doctest: +SKIP
    >>> items, scores = run.recommend([0, 1], k=10)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leanrec import models
from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary, Split
from leanrec.data.own import DataFile, dataset_name
from leanrec.data.presets import Protocol, prepare_split
from leanrec.evaluate import FullRankingEvaluator, RankingResult
from leanrec.models.base import Recommender
from leanrec.models.loading import save_ranking_model
from leanrec.models.registry import build_model, make_model_config
from leanrec.models.requests import NO_ITEM
from leanrec.options import check_at_least
from leanrec.runner.resume import check_resumable
from leanrec.runner.rundir import atomic_write_json
from leanrec.train.bpr import (
    BPRTrainer,
    EpochHook,
    TrainerConfig,
    TrainResult,
    evaluate_model,
    learning_rate_at,
)
from leanrec.train.distributed import is_main_process


@dataclass
class TrainConfig:
    """Everything one training run needs; ``leanrec train`` builds the same object."""

    dataset: str | DataFile = "synthetic"
    """Registered dataset name (``leanrec datasets``), ``"synthetic"`` (no files needed), or a
    file of one's own (:class:`~leanrec.data.own.DataFile`)."""
    model: str = "lightgcn"
    """Model name: ``mf``, ``neumf``, ``ngcf``, ``lightgcn``."""
    protocol: str | None = None
    """Evaluation protocol (``leanrec.data.presets.PROTOCOLS``); ``None``: the dataset's default."""
    data_dir: str | None = None
    """Data directory (else ``LEANREC_DATA``, else the user cache dir)."""
    seed: int = 2024
    """Seeds the split, the initialisation and the sampling."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Overrides of the model's config (e.g. ``{"n_layers": 3}``)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Optimisation and early stopping."""
    run_dir: str | None = None
    """Write config, metrics, history and the model here (``None``: write nothing)."""
    resume: bool = False
    """Continue the killed run of ``run_dir`` from its ``train_state.pt``, with the settings
    it was started with (:data:`RESUMABLE_CHANGES` aside)."""

    def __post_init__(self) -> None:
        check_at_least(self, 0, "seed")  # numpy's generators take no negative seed


RESUMABLE_CHANGES = (
    "run_dir", "resume", "data_dir", "trainer.num_threads", "trainer.progress",
    "trainer.eval_batch_size", "trainer.max_seconds",
)  # fmt: skip
"""What a resumed training may change: where it reads and writes and how it runs (threads,
progress bars, evaluation batches, a time budget); any other change is refused
(:func:`start_training_dir`)."""
TRAIN_STATE = "train_state.pt"
"""The checkpoint a training writes into its run directory after every validation."""


def resume_state(run_dir: str | Path | None) -> Path:
    """The state a resumed training continues from (checked before any data is read).

    Raises:
        ValueError: no ``run_dir``.
        FileNotFoundError: no state in ``run_dir`` (the run finished, or never started).
    """
    if run_dir is None:
        raise ValueError("resume continues a killed run: give the run directory (--run-dir)")
    state = Path(run_dir) / TRAIN_STATE
    if not state.exists():
        raise FileNotFoundError(f"resume (--resume): no {state} to continue from")
    return state


def start_training_dir(settings: Any, defaults: Any, run_dir: str | Path, resume: bool) -> Path:
    """Where a training checkpoints: resumed, its state, after checking that ``settings`` are
    those the run was started with (``run_dir/config.json``); else ``settings`` are written
    there (rank 0) and a state an earlier run left is removed, so a resume can only continue
    the run those settings started.

    Raises:
        ValueError: settings changed beyond :data:`RESUMABLE_CHANGES` (each named with both
            values), or no ``run_dir``.
        FileNotFoundError: resuming without a state.
    """
    if resume:
        state = resume_state(run_dir)
        check_resumable(settings, run_dir, defaults, RESUMABLE_CHANGES, (TRAIN_STATE,))
        return state
    state = Path(run_dir) / TRAIN_STATE
    if is_main_process():
        state.parent.mkdir(parents=True, exist_ok=True)
        state.unlink(missing_ok=True)
        atomic_write_json(state.parent / "config.json", settings)
    return state


@dataclass
class TrainedRun:
    """A trained model with its data split and metrics."""

    model: Recommender
    split: Split
    protocol: Protocol
    config: TrainConfig
    train_result: TrainResult
    valid_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_result: RankingResult | None
    """None on the ranks other than 0 of a data-parallel run (rank 0 alone tests)."""
    refit_result: TrainResult | None = None
    """The refit on training + validation (``TrainerConfig.refit_epochs``), if any."""

    def recommend(
        self, users: list[int] | np.ndarray, k: int = 10, raw_ids: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user with training items excluded
        (:meth:`~leanrec.models.base.Recommender.recommend`).

        Args:
            users: user indices, or raw user IDs when ``raw_ids``.
            k: list length, in ``[1, I]``.
            raw_ids: take and return raw IDs instead of indices.

        Returns:
            ``(items (B, k), scores (B, k))``. A user with fewer than ``k`` items left has a
            shorter list: the positions past it hold item -1 (raw IDs: ``None``) and score
            ``-inf``.
        """
        vocab_u, vocab_i = self.split.train.user_vocab, self.split.train.item_vocab
        index = vocab_u.to_index(users) if raw_ids else users
        items, scores = self.model.recommend(index, k)
        out = items.numpy()
        if raw_ids:
            out = _raw_items(vocab_i, out)
        return out, scores.numpy()

    def save(self, path: str | Path) -> Path:
        """Save the model with its ID vocabularies (``torch.load(weights_only=True)`` works)."""
        train = self.split.train
        return save_ranking_model(self.model, path, train.user_vocab, train.item_vocab)


def _raw_items(vocab: IdVocabulary, items: np.ndarray) -> np.ndarray:
    """Raw IDs of ``items (B, k)``; positions holding ``NO_ITEM`` become ``None`` (an object
    array then, since no raw ID stands for "no item")."""
    missing = items == NO_ITEM
    if not missing.any():
        return vocab.to_raw(items.reshape(-1)).reshape(items.shape)
    out = np.full(items.shape, None, dtype=object)
    out[~missing] = vocab.to_raw(items[~missing])
    return out


def load_model(path: str | Path) -> tuple[Recommender, IdVocabulary | None, IdVocabulary | None]:
    """Load a ranking model saved by :meth:`TrainedRun.save` (or :meth:`Recommender.save`), or a
    packed ``.safetensors`` file written by ``leanrec compress`` (through
    :func:`leanrec.models.load_model`, which reads every family)."""
    loaded = models.load_model(path)
    if not isinstance(loaded.model, Recommender):
        raise DataError(
            f"a {loaded.family} model, not a ranking model; read it with leanrec.models.load_model",
            path=path,
        )
    return loaded.model, loaded.user_vocab, loaded.item_vocab


def _check_test_targets(split: Split, name: str) -> None:
    """:class:`DataError` before any training when no test interaction is left to rank: the
    split held none out, or each is also a training or validation pair of its user (which the
    test excludes)."""
    if len(split.test) == 0:
        raise DataError(
            f"{name}: the split leaves no test interaction to rank ({split.describe()}): every "
            "user needs more interactions than the split holds out; give more data"
        )
    test_keys = split.test.sorted_keys()  # the parts share one vocabulary, so one key space
    known = np.concatenate([split.train.sorted_keys(), split.valid.sorted_keys()])
    if np.isin(test_keys, known).all():
        raise DataError(
            f"{name}: all {len(test_keys)} test interactions are also training or validation "
            "interactions of their users, which the test ranks apart: nothing is left to rank"
        )


def train(
    config: TrainConfig | None = None, on_epoch: EpochHook | None = None, **overrides: Any
) -> TrainedRun:
    """Load, split, train with early stopping on validation, evaluate on test.

    Args:
        config: the run's configuration.
        on_epoch: called with ``(epoch, record)`` after every epoch (learning curves, logging).
        overrides: fields of :class:`TrainConfig` (e.g. ``train(dataset="ml-1m")``).
    """
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(
            f"train takes a TrainConfig or its fields as keywords (train(dataset=...)), got "
            f"{config!r}"
        )
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    if config.resume:
        resume_state(config.run_dir)  # before any data is read
    split, protocol = prepare_split(config.dataset, config.protocol, config.data_dir, config.seed)
    _check_test_targets(split, dataset_name(config.dataset))
    trainer_config = config.trainer
    trainer_config = dataclasses.replace(
        trainer_config,
        valid_metric=trainer_config.valid_metric or protocol.valid_metric,
        ks=list(trainer_config.ks or protocol.ks),
    )
    settings = dataclasses.replace(config, trainer=trainer_config)  # as config.json records
    if config.run_dir is not None:
        start_training_dir(settings, TrainConfig(), config.run_dir, config.resume)
    model_config = make_model_config(config.model, config.model_options)
    model = build_model(config.model, split.train, model_config, seed=config.seed)
    run_dir = Path(config.run_dir) if config.run_dir else None
    trainer = BPRTrainer(
        model,
        split.train,
        split.valid,
        trainer_config,
        checkpoint_path=run_dir / TRAIN_STATE if run_dir else None,
        on_epoch=on_epoch,
    )
    result = trainer.fit(resume=config.resume)
    refit_result = None
    if trainer_config.refit_epochs:
        refit_result = refit(model, split, trainer_config, result.history, result.best_epoch)
    if not is_main_process():  # the other ranks of a data-parallel run: rank 0 tests, writes
        return TrainedRun(
            model, split, protocol, config, result, result.best_valid, {}, None, refit_result
        )
    test_eval = FullRankingEvaluator(
        split.test,
        exclude=[split.train, split.valid],
        ks=trainer_config.ks or [10, 20],
        batch_size=trainer_config.eval_batch_size,
    )
    test_result = evaluate_model(model, test_eval)
    run = TrainedRun(
        model=model,
        split=split,
        protocol=protocol,
        config=settings,
        train_result=result,
        valid_metrics=result.best_valid,
        test_metrics=dict(test_result.mean),
        test_result=test_result,
        refit_result=refit_result,
    )
    if run_dir is not None:
        write_run_dir(run, run_dir, model_config)
    return run


def refit(
    model: Recommender,
    split: Split,
    config: TrainerConfig,
    history: list[dict[str, float]],
    best_epoch: int,
    epochs: int | None = None,
) -> TrainResult:
    """Train a selected ``model`` ``epochs`` (default ``config.refit_epochs``) more epochs on
    ``split.train + split.valid``, in place.

    The model is re-attached to the union (a graph model propagates over it from now on) and
    trained by a fresh Adam at the learning rate its selected epoch ``best_epoch`` was trained
    with (:func:`~leanrec.train.bpr.learning_rate_at`; the decays after it answered epochs that
    were not kept), with no validation and no further decay. Nothing here reads the test split.
    """
    epochs = config.refit_epochs if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"refit needs at least one epoch, got {epochs}")
    full = split.train.concat(split.valid, name="train+valid")
    model.attach(full)
    refit_config = dataclasses.replace(
        config,
        max_epochs=epochs,
        learning_rate=learning_rate_at(history, config, best_epoch),
        lr_decay=1.0,
        max_seconds=None,
        refit_epochs=0,
    )
    return BPRTrainer(model, full, None, refit_config).fit()


def write_run_dir(run: TrainedRun, run_dir: str | Path, model_config: Any) -> None:
    """Write ``config.json``, ``metrics.json``, ``history.json`` and ``model.pt``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = asdict(run.config)
    resolved["model_config"] = asdict(model_config)
    resolved["protocol_resolved"] = asdict(run.protocol)
    atomic_write_json(run_dir / "config.json", resolved)
    atomic_write_json(run_dir / "metrics.json", metrics_record(run))
    atomic_write_json(run_dir / "history.json", run.train_result.history)
    run.save(run_dir / "model.pt")
    state = run_dir / "train_state.pt"
    if state.exists():
        state.unlink()


def metrics_record(run: TrainedRun) -> dict[str, Any]:
    """Flat metrics of a run (what ``metrics.json`` holds)."""
    record: dict[str, Any] = {
        "dataset": dataset_name(run.config.dataset),
        "model": run.config.model,
        "protocol": run.protocol.name,
        "best_epoch": run.train_result.best_epoch,
        "epochs_run": run.train_result.epochs_run,
        "train_seconds": round(run.train_result.seconds, 3),
        "embedding_parameters": run.model.embedding_parameters(),
        "embedding_bytes": run.model.embedding_bytes(),
        "users": run.split.n_users,
        "items": run.split.n_items,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if run.refit_result is not None:
        record["refit_epochs"] = run.refit_result.epochs_run
        record["refit_seconds"] = round(run.refit_result.seconds, 3)
    record.update({f"valid_{k}": v for k, v in run.valid_metrics.items()})
    record.update({f"test_{k}": v for k, v in run.test_metrics.items()})
    return record
