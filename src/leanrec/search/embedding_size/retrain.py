"""Warm start, selective retraining (CIESS Eq. 15-16) and test evaluation under fixed sizes.

Every size method of the experiment (CIESS and each row-size baseline) ends here: a size per
user and item, fitted exactly to a budget, a recommender retrained under those sizes to
convergence with early stopping on validation, then one evaluation on test (which the
experiment makes inside its final evaluation, after the choice among masks).

The masks of one budget are independent jobs: :class:`Retrainer` retrains one and
:class:`MaskScreen` scores one untrained, each through a :class:`~leanrec.runner.Executor`
(serial, or one Ray task per mask), reading the split and the warm start from a
:class:`~leanrec.runner.Shared` handle stored once per experiment.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from leanrec.data.interactions import Split
from leanrec.embeddings import MaskedEmbedding, MaskedTableFactory
from leanrec.evaluate import FullRankingEvaluator
from leanrec.models import Recommender, build_model
from leanrec.models.compress import entity_sizes, entity_sparsity, set_entity_sizes
from leanrec.models.loading import save_ranking_model
from leanrec.models.registry import make_model_config
from leanrec.runner.executors import Executor, SerialExecutor, Shared
from leanrec.runner.rundir import Log
from leanrec.search.embedding_size.budget import fit_to_budget
from leanrec.search.embedding_size.policy import SizeCandidate
from leanrec.train.bpr import BPRTrainer, EpochHook, TrainerConfig, TrainResult, evaluate_model
from leanrec.train.checkpoint import load_checkpoint, save_atomic

SizePair = tuple[np.ndarray, np.ndarray]
"""``(user_sizes (|U|,), item_sizes (|I|,))``: a size per user and per item."""

TEST_KS = (5, 10, 20)
T = TypeVar("T")


def build_masked_model(
    split: Split,
    model_name: str,
    model_options: dict[str, Any] | None,
    max_dim: int,
    seed: int,
    prefix_dropout: bool = False,
) -> Recommender:
    """A base recommender of width ``d_max`` whose every table is a :class:`MaskedEmbedding`.

    A graph model propagates over the whole graph at every training step unless
    ``model_options`` say otherwise: every figure of the search and its baselines was measured
    so, and ``propagation="auto"`` would switch to snapshots on graphs above 1M edges."""
    options = dict(model_options or {})
    options["embedding_dim"] = max_dim
    if "propagation" not in options and hasattr(make_model_config(model_name), "propagation"):
        options["propagation"] = "full"
    factory = MaskedTableFactory(prefix_dropout=prefix_dropout)
    return build_model(model_name, split.train, options, table_factory=factory, seed=seed)


def set_prefix_dropout(model: Recommender, enabled: bool) -> None:
    for table in model.embedding_tables().values():
        if isinstance(table, MaskedEmbedding):
            table.prefix_dropout = enabled


def pretrain_warm_start(
    split: Split,
    model_name: str,
    model_options: dict[str, Any] | None,
    max_dim: int,
    trainer: TrainerConfig,
    seed: int,
    checkpoint_path: Path | None = None,
    on_epoch: EpochHook | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    prefix_dropout: bool = True,
) -> tuple[Recommender, TrainResult]:
    """The full-size model, trained with prefix dropout so every truncation is meaningful.

    It is both the warm start of every search step and the full-table reference of Eq. 7.

    Args:
        init_state: weights to start from (e.g. an earlier run's warm start, to train it
            further); None: a fresh initialisation.
        prefix_dropout: False trains an ordinary full-size model instead (no random
            truncation during training), the model the paper's pruning baselines start from.
    """
    model = build_masked_model(split, model_name, model_options, max_dim, seed, prefix_dropout)
    if init_state is not None:
        model.load_state_dict(init_state)
    result = BPRTrainer(
        model, split.train, split.valid, trainer, checkpoint_path=checkpoint_path, on_epoch=on_epoch
    ).fit(resume=checkpoint_path is not None)
    set_prefix_dropout(model, False)
    model.eval()
    return model, result


@dataclass
class RetrainedModel:
    """A model trained to convergence under fixed sizes, with its metrics."""

    model: Recommender
    sparsity: float
    valid: dict[str, float]
    test: dict[str, float] | None
    """Test metrics, or None when the caller evaluates test itself (after choosing a model)."""
    train_result: TrainResult


def test_metrics(
    model: Recommender, split: Split, ks: tuple[int, ...] = TEST_KS
) -> dict[str, float]:
    """Full ranking on test with train and validation items masked."""
    evaluator = FullRankingEvaluator(
        split.test, exclude=[split.train, split.valid], ks=list(ks), metrics=["recall", "ndcg"]
    )
    return dict(evaluate_model(model, evaluator).mean)


def retrain_with_sizes(
    split: Split,
    model_name: str,
    model_options: dict[str, Any] | None,
    max_dim: int,
    user_sizes: np.ndarray,
    item_sizes: np.ndarray,
    trainer: TrainerConfig,
    seed: int,
    warm_state: dict[str, torch.Tensor] | None = None,
    checkpoint_path: Path | None = None,
    on_epoch: EpochHook | None = None,
    evaluate_test: bool = True,
) -> RetrainedModel:
    """Train under fixed sizes to convergence (early stopping on validation), test once.

    Args:
        warm_state: initial weights (the warm start; truncated by the masks). None: from scratch.
        evaluate_test: False leaves ``test`` None (the caller tests the model it chooses).
    """
    model = build_masked_model(split, model_name, model_options, max_dim, seed)
    if warm_state is not None:
        model.load_state_dict(warm_state)
    set_entity_sizes(model, user_sizes, item_sizes)
    return retrain_model(model, split, trainer, checkpoint_path, on_epoch, evaluate_test)


def retrain_model(
    model: Recommender,
    split: Split,
    trainer: TrainerConfig,
    checkpoint_path: Path | None = None,
    on_epoch: EpochHook | None = None,
    evaluate_test: bool = True,
) -> RetrainedModel:
    """Train a prepared model (tables already sized or masked) to convergence, test once
    (``evaluate_test=False``: not at all, ``test`` is None)."""
    result = BPRTrainer(
        model, split.train, split.valid, trainer, checkpoint_path=checkpoint_path, on_epoch=on_epoch
    ).fit(resume=checkpoint_path is not None)
    model.eval()
    return RetrainedModel(
        model=model,
        sparsity=entity_sparsity(model),
        valid=result.best_valid,
        test=test_metrics(model, split) if evaluate_test else None,
        train_result=result,
    )


@dataclass
class RetrainInputs:
    """What every retraining job of an experiment reads (shared once per experiment)."""

    split: Split
    warm_state: dict[str, torch.Tensor] | None
    """The warm start's weights each mask starts from, or None (from scratch)."""


@dataclass
class RetrainJob:
    """One mask of the selective retraining."""

    user_sizes: np.ndarray
    """``(|U|,)`` row sizes of the users."""
    item_sizes: np.ndarray
    """``(|I|,)`` row sizes of the items."""
    checkpoint_path: Path | None = None
    """Per-epoch checkpoint (a killed retraining resumes from it; on a cluster, where the
    run directory is on a file system every node sees)."""
    label: str = ""
    """What the log calls it (``ciess at c = 80%: mask 1/2``)."""


@dataclass
class Retrainer:
    """Job of the selective retraining: :func:`retrain_with_sizes` of one :class:`RetrainJob`,
    validation only (the experiment tests the mask it keeps). Picklable: a Ray task carries
    the handle of the shared :class:`RetrainInputs`, not the data.

    ``log`` and ``on_epoch`` are for jobs run in this process (they write to the run's log);
    ``num_threads`` sets torch's threads of a job run elsewhere to the caller's, so that the
    retrained weights are the same bit for bit.
    """

    inputs: Shared[RetrainInputs]
    model_name: str
    model_options: dict[str, Any] | None
    max_dim: int
    trainer: TrainerConfig
    seed: int
    num_threads: int | None = None
    log: Log | None = None
    on_epoch: EpochHook | None = None

    def __call__(self, job: RetrainJob) -> RetrainedModel:
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        if self.log is not None and job.label:
            self.log(f"{job.label}: retraining")
        inputs = self.inputs.get()
        return retrain_with_sizes(
            inputs.split,
            self.model_name,
            self.model_options,
            self.max_dim,
            np.array(job.user_sizes),  # own copies: a Ray task's arrays are read-only views
            np.array(job.item_sizes),
            self.trainer,
            self.seed,
            warm_state=inputs.warm_state,
            checkpoint_path=job.checkpoint_path,
            on_epoch=self.on_epoch,
            evaluate_test=False,
        )


def select_candidates(
    candidates: list[SizeCandidate], target_sparsity: float, top: int, fill: bool = True
) -> list[SizeCandidate]:
    """Eq. 15-16's candidate set ``M_c``: the ``top`` masks with the highest ``q̄`` among those
    meeting ``c``.

    Args:
        fill: True (not in the paper): when fewer than ``top`` meet ``c``, the sparsest
            remaining ones fill the set (they are then projected onto the budget by
            :func:`fit_candidate`). False (Eq. 15 as written): only masks meeting ``c``, so the
            set may be smaller than ``top``, or empty when no searched mask meets ``c``.
    """
    meeting = [c for c in candidates if c.sparsity >= target_sparsity]
    chosen = sorted(meeting, key=lambda c: -c.mean_quality)[:top]
    if fill and len(chosen) < top:
        rest = [c for c in candidates if c.sparsity < target_sparsity]
        chosen += sorted(rest, key=lambda c: -c.sparsity)[: top - len(chosen)]
    return chosen


def fit_candidate(
    candidate: SizeCandidate, max_dim: int, target_sparsity: float, per_role: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A candidate's sizes rescaled to use exactly the budget of ``c`` (never more).

    ``per_role=False`` (the rule of the paper's search space): one scale for users and items
    together, so the policy's split of the budget between the roles is kept.
    ``per_role=True``: users and items are each rescaled to sparsity ``c`` on their own, keeping
    the policy's allocation *within* each role only. Both meet ``c`` overall.
    """
    n_users = len(candidate.user_sizes)
    if per_role:
        users = fit_to_budget(candidate.user_sizes.astype(np.float64), max_dim, target_sparsity)
        items = fit_to_budget(candidate.item_sizes.astype(np.float64), max_dim, target_sparsity)
        return users, items
    sizes = fit_to_budget(candidate.all_sizes().astype(np.float64), max_dim, target_sparsity)
    return sizes[:n_users], sizes[n_users:]


def screen_on_validation(
    model: Recommender,
    split: Split,
    sized: list[tuple[np.ndarray, np.ndarray]],
    keep: int,
    metric: str = "recall@20",
    executor: Executor | None = None,
    inputs: Shared[ScreenInputs] | None = None,
) -> tuple[list[int], list[float]]:
    """Rank size assignments by ``metric`` on validation, each applied to ``model`` untrained.

    The screen of :attr:`~leanrec.search.embedding_size.config.CIESSConfig.screen_masks`: a
    full-ranking validation pass per assignment (train items masked), no training; one
    :class:`MaskScreen` job per assignment through ``executor`` (None: in this process).

    Args:
        model: the warm start (masked tables); it is not changed (a copy is sized).
        sized: ``(user_sizes (|U|,), item_sizes (|I|,))`` pairs.
        keep: how many indices to return.
        metric: ``name@k`` with ``name`` in ``recall``, ``ndcg``.
        executor: where the assignments are scored (the scores are the same everywhere).
        inputs: ``model`` and ``split`` as already shared through ``executor`` (None: shared
            here).

    Returns:
        The indices of the ``keep`` best pairs, best first (ties: earlier first), and every
        pair's score in the order of ``sized``.
    """
    name, _, k = metric.partition("@")
    if name not in ("recall", "ndcg") or not k.isdigit():
        raise ValueError(f"screen metric {metric!r}: expected recall@k or ndcg@k")
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    executor = executor or SerialExecutor(show_progress=False)
    if inputs is None:
        inputs = shared_inputs(executor, ScreenInputs(model, split))
    threads = None if executor.in_process else torch.get_num_threads()
    scores = executor.map(MaskScreen(inputs, metric, threads), sized)
    order = sorted(range(len(sized)), key=lambda index: -scores[index])
    return order[:keep], scores


def shared_inputs(executor: Executor, inputs: T) -> Shared[T]:
    """``inputs`` for the jobs of ``executor``: as they are for jobs run in this process, else
    stored once (``ray.put``) and read by reference."""
    return executor.share(inputs)


@dataclass
class ScreenInputs:
    """What every screening job reads: the warm start and the split (shared once)."""

    model: Recommender
    split: Split


class MaskScreen:
    """Job of :func:`screen_on_validation`: the untrained validation ``metric`` of the shared
    warm start under one ``(user_sizes (|U|,), item_sizes (|I|,))`` assignment.

    In this process the warm start is copied once and re-sized per job (the original is never
    changed); in a Ray task each job sizes its own copy of the stored model. Every size of
    every row is set either way, so the scores are the same.

    Args:
        inputs: the shared :class:`ScreenInputs`.
        metric: ``recall@k`` or ``ndcg@k``.
        num_threads: torch threads of a job run elsewhere (None: leave the process's).
    """

    def __init__(
        self, inputs: Shared[ScreenInputs], metric: str, num_threads: int | None = None
    ) -> None:
        self.inputs = inputs
        self.metric = metric
        self.num_threads = num_threads
        self._work: tuple[Recommender, FullRankingEvaluator] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_work": None}  # the working copy stays where it was made

    def __call__(self, sizes: SizePair) -> float:
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        if self._work is None:
            inputs = self.inputs.get()
            name, _, k = self.metric.partition("@")
            evaluator = FullRankingEvaluator(
                inputs.split.valid, exclude=[inputs.split.train], ks=[int(k)], metrics=[name]
            )
            self._work = (copy.deepcopy(inputs.model), evaluator)
        work, evaluator = self._work
        # a Ray task's arrays are read-only views of the object store: the tables own a copy
        set_entity_sizes(work, np.array(sizes[0]), np.array(sizes[1]))
        return float(evaluate_model(work, evaluator).mean[self.metric])


def screen_with_cache(
    model: Recommender,
    split: Split,
    sized: list[SizePair],
    keep: int,
    metric: str,
    path: Path,
    what: str,
    log: Callable[[str], None],
    executor: Executor | None = None,
    inputs: Shared[ScreenInputs] | None = None,
) -> tuple[list[SizePair], dict[str, Any]]:
    """The ``keep`` best of ``sized`` by :func:`screen_on_validation`, and the row's record of
    the screen (``screened``, ``screen_kept_scores``, ``screen_best_by_quality_score``).

    The outcome is cached in ``path``, so a run killed during retraining does not screen
    again; the cache is used only for the same candidates (a digest of their sizes), metric
    and ``keep``. The masks are scored through ``executor`` (None: in this process), from
    ``inputs`` when already shared."""
    settings = {"metric": metric, "top_masks": keep, "fingerprint": sizes_fingerprint(sized)}
    if path.exists():
        stored = load_checkpoint(path)
        if stored["settings"] == settings:
            log(f"{what}: the screen of {len(sized)} masks was done before ({path.name})")
            kept_sizes = [(u.numpy(), i.numpy()) for u, i in stored["kept"]]
            return kept_sizes, stored["record"]
    kept, scores = screen_on_validation(model, split, sized, keep, metric, executor, inputs)
    log(
        f"{what}: screened {len(sized)} masks on validation {metric} (untrained), "
        f"best {scores[kept[0]]:.4f}"
    )
    kept_sizes = [sized[index] for index in kept]
    record = {
        "screened": len(scores),
        "screen_kept_scores": [scores[index] for index in kept],
        "screen_best_by_quality_score": scores[0],
    }
    stored_kept = [(torch.from_numpy(u), torch.from_numpy(i)) for u, i in kept_sizes]
    save_atomic({"settings": settings, "kept": stored_kept, "record": record}, path)
    return kept_sizes, record


def sizes_fingerprint(sized: list[SizePair]) -> str:
    """A digest of candidate sizes, in order (a screen cache is only valid for the same)."""
    digest = hashlib.sha256()
    for users, items in sized:
        digest.update(np.ascontiguousarray(users, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(items, dtype=np.int64).tobytes())
    return digest.hexdigest()


def role_sizes(model: Recommender, role: str) -> np.ndarray:
    """The per-entity sizes of ``model``'s first table of ``role`` (``"user"``/``"item"``)."""
    name = next(n for n, r in model.table_roles().items() if r == role)
    return entity_sizes(model)[name]


def save_model_with_ids(model: Recommender, split: Split, path: Path) -> Path:
    """``model``'s checkpoint with the raw user and item ids of ``split``'s vocabularies (so a
    later run can check it was trained on its own split)."""
    return save_ranking_model(model, path, split.train.user_vocab, split.train.item_vocab)
