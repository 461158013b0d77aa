"""AMEIR Step 1 for next-item retrieval: the paper's sequential scenario (Table 2, Beauty/Steam).

Only user behaviours are given, so only Stage 1 is searched (paper Sec. 4, "sequential
scenario"): ``L_a`` residual blocks ``H_l = Act(Layer(Norm(H_{l-1}))) + H_{l-1}`` over the item
embeddings of the last ``N`` items, every layer in its causal variant so that the hidden state
``h_t`` (which scores the item at ``t + 1`` against the shared item table, as SASRec) reads
positions ``<= t`` only. The search is AMEIR's one-shot random search:

1. a one-shot model (:class:`~leanrec.search.architecture.blocks.BehaviorSupernet` behind a
   :class:`~leanrec.search.architecture.blocks.SupernetSequenceEncoder`) is trained with the
   sampled-negative loss of the sequential trainer, one child drawn uniformly per batch;
2. ``sampled_children`` children are scored with the inherited weights on a validation subset
   (NDCG@5 against the 100 sampled negatives); the best ``top_children`` are re-scored on the
   whole validation set;
3. the best child is derived with the one-shot weights (item table and chosen operations) and
   retrained with early stopping on validation NDCG@5.

Model selection reads validation users only; the test part is never touched here. Every stage
is saved to ``out_dir`` when given (the one-shot model after each epoch, the scores, the
retrained model), so a killed search resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.sequential import NextItemEvalSet, NextItemSplit
from leanrec.models.ctr.ameir.architecture import BlockChoice
from leanrec.models.seq.base import NextItemModel
from leanrec.runner.rundir import atomic_write_json
from leanrec.search.architecture.blocks import BehaviorSupernet, SupernetSequenceEncoder
from leanrec.search.architecture.config import RetrievalSearchConfig
from leanrec.search.architecture.space import sample_blocks
from leanrec.seeding import torch_seeded
from leanrec.train.checkpoint import load_checkpoint, save_atomic
from leanrec.train.sequential import (
    SequentialTrainer,
    SequentialTrainerConfig,
    evaluate_next_item,
)

Log = Callable[[str], None]

__all__ = [
    "OneShotSequentialTrainer",
    "RetrievalSearchConfig",
    "RetrievalSearchResult",
    "build_retrieval_supernet",
    "derive_retrieval_model",
    "eval_subset",
    "search_retrieval",
    "sequential_trainer_config",
]


@dataclass
class RetrievalSearchResult:
    """What :func:`search_retrieval` found and what it cost."""

    choices: tuple[BlockChoice, ...]
    model: NextItemModel
    valid: dict[str, float]
    search_seconds: float
    retrain_seconds: float
    best_epoch: int
    children: list[dict[str, Any]] = field(default_factory=list)

    def architecture_json(self, config: RetrievalSearchConfig | None = None) -> dict[str, Any]:
        """The searched encoder as JSON-friendly data: the blocks and, with ``config``, the
        backbone settings :func:`~leanrec.models.seq.searched.build_searched_model` needs to
        rebuild it."""
        out: dict[str, Any] = {"task": "next_item", "blocks": [asdict(c) for c in self.choices]}
        if config is not None:
            out.update(
                embedding_dim=config.embedding_dim,
                input_dropout=config.input_dropout,
                positions=config.positions,
                final_norm=config.final_norm,
            )
        return out


class OneShotSequentialTrainer(SequentialTrainer):
    """The sequential trainer for a one-shot model: a new child is drawn before every batch.

    Children are drawn by ``sampler(rng)`` from the trainer's own generator, whose state is in
    every checkpoint: a resumed run draws the same children as an uninterrupted one. It keeps
    the last weights (a one-shot model has no best epoch) and validates nothing itself;
    :func:`score_children` ranks children afterwards.
    """

    def __init__(
        self,
        model: NextItemModel,
        split: NextItemSplit,
        config: SequentialTrainerConfig,
        sampler: Callable[[np.random.Generator], tuple[BlockChoice, ...]],
        checkpoint_path: str | Path | None = None,
    ) -> None:
        super().__init__(model, split, config, checkpoint_path)
        if not isinstance(model.encoder, SupernetSequenceEncoder):
            raise TypeError("a one-shot model needs a SupernetSequenceEncoder")
        self.encoder = model.encoder
        self.sampler = sampler

    def batch_loss(self, rows: np.ndarray) -> torch.Tensor:
        self.encoder.choices = self.sampler(self.rng)
        return super().batch_loss(rows)

    def validate_step(self, epoch: int) -> dict[str, float]:
        return {}  # nothing kept: the last epoch's weights are the one-shot model


def build_retrieval_supernet(
    n_items: int, config: RetrievalSearchConfig, max_length: int = 50
) -> NextItemModel:
    """The one-shot next-item model: item table + causal ``L_a``-block supernet (sequences of
    at most ``max_length`` items when ``config.positions``)."""
    with torch_seeded(config.seed):
        supernet = BehaviorSupernet(
            config.embedding_dim, config.n_blocks, has_target=False, causal=True, readout=("last",)
        )
        first = sample_blocks(np.random.default_rng(config.seed), config.n_blocks, False)
        encoder = SupernetSequenceEncoder(
            supernet,
            first,
            input_dropout=config.input_dropout,
            positions=max_length if config.positions else None,
            final_norm=config.final_norm,
        )
        return NextItemModel(n_items, encoder)


def derive_retrieval_model(
    one_shot: NextItemModel, choices: tuple[BlockChoice, ...]
) -> NextItemModel:
    """A standalone model of the child ``choices`` with the one-shot model's item table and the
    chosen operations' weights."""
    encoder = one_shot.encoder
    if not isinstance(encoder, SupernetSequenceEncoder):
        raise TypeError("derive_retrieval_model needs a one-shot model")
    encoder.choices = choices
    derived = NextItemModel(one_shot.n_items, encoder.derive())
    derived.item_table.load_state_dict(one_shot.item_table.state_dict())
    return derived


def eval_subset(eval_set: NextItemEvalSet, size: int, seed: int) -> NextItemEvalSet:
    """``size`` rows of ``eval_set`` drawn without replacement (all of them when fewer)."""
    if size >= len(eval_set):
        return eval_set
    rows = np.sort(np.random.default_rng(seed).choice(len(eval_set), size, replace=False))
    starts, ends = eval_set.history_indptr[rows], eval_set.history_indptr[rows + 1]
    indptr = np.concatenate([[0], np.cumsum(ends - starts)]).astype(eval_set.history_indptr.dtype)
    history = np.concatenate([eval_set.history_items[s:e] for s, e in zip(starts, ends)])
    return NextItemEvalSet(
        users=eval_set.users[rows],
        inputs=eval_set.inputs[rows],
        targets=eval_set.targets[rows],
        negatives=eval_set.negatives[rows],
        history_indptr=indptr,
        history_items=history.astype(eval_set.history_items.dtype),
    )


def score_children(
    one_shot: NextItemModel,
    children: list[tuple[BlockChoice, ...]],
    eval_set: NextItemEvalSet,
    metric: str = "ndcg@5",
) -> list[float]:
    """``metric`` (100 sampled negatives) of every child with the inherited weights."""
    encoder = one_shot.encoder
    if not isinstance(encoder, SupernetSequenceEncoder):
        raise TypeError("score_children needs a one-shot model")
    scores = []
    for child in children:
        encoder.choices = child
        scores.append(float(evaluate_next_item(one_shot, eval_set, "sampled", (5, 10))[metric]))
    return scores


def sequential_trainer_config(
    config: RetrievalSearchConfig, epochs: int, eval_every: int, seconds: float | None
) -> SequentialTrainerConfig:
    """The sequential trainer's settings for ``epochs`` epochs (validating every
    ``eval_every``, within ``seconds`` of wall time) with ``config``'s step size, batch,
    patience, seed and threads: the one-shot model, the retraining and the experiment's
    hand-designed baselines all train this way."""
    return SequentialTrainerConfig(
        embedding_optimizer="dense_adam",  # as the published figures were trained
        max_epochs=epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        eval_every=eval_every,
        patience=config.retrain_patience,
        max_seconds=seconds,
        seed=config.seed,
        num_threads=config.num_threads,
    )


def search_retrieval(
    split: NextItemSplit,
    config: RetrievalSearchConfig,
    out_dir: str | Path | None = None,
    log: Log | None = None,
) -> RetrievalSearchResult:
    """AMEIR Step 1 on ``split`` (see the module docstring); resumable through ``out_dir``."""
    say = log or (lambda message: None)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    one_shot = build_retrieval_supernet(split.n_items, config, split.max_length)
    scores_path = out / "children.json" if out is not None else None
    saved = json.loads(scores_path.read_text()) if scores_path and scores_path.exists() else None
    began = time.perf_counter()
    # 1. one-shot training
    trainer = OneShotSequentialTrainer(
        one_shot,
        split,
        sequential_trainer_config(config, config.supernet_epochs, 1, None),
        lambda rng: sample_blocks(rng, config.n_blocks, False),
        out / "one_shot.pt" if out is not None else None,
    )
    trainer.fit(resume=True)  # a finished one-shot checkpoint is only restored
    say(f"one-shot model: {config.supernet_epochs} epochs ({time.perf_counter() - began:.0f} s)")
    one_shot.eval()
    # 2. children with inherited weights: a validation subset, then the best on all of it
    if saved is None:
        saved = {
            "children": rank_children(one_shot, split, config),
            "search_seconds": time.perf_counter() - began,
        }
        if scores_path is not None:
            atomic_write_json(scores_path, saved)
    records = saved["children"]
    best_record = max((r for r in records if "valid_ndcg@5" in r), key=lambda r: r["valid_ndcg@5"])
    choices = tuple(BlockChoice(**b) for b in best_record["blocks"])
    say(
        "chosen: "
        + " | ".join(f"{c.norm}/{c.layer}/{c.activation}" for c in choices)
        + f" (valid NDCG@5 {best_record['valid_ndcg@5']:.4f} with one-shot weights)"
    )
    # 3. derive and retrain
    model = derive_retrieval_model(one_shot, choices)
    done = _retrain(model, split, config, out)
    return RetrievalSearchResult(
        choices=choices,
        model=model,
        valid=done["valid"],
        search_seconds=float(saved["search_seconds"]),
        retrain_seconds=float(done["retrain_seconds"]),
        best_epoch=int(done["best_epoch"]),
        children=records,
    )


def rank_children(
    one_shot: NextItemModel, split: NextItemSplit, config: RetrievalSearchConfig
) -> list[dict[str, Any]]:
    """Draw ``sampled_children`` distinct children, score them with the inherited weights on a
    validation subset and the best ``top_children`` on the whole validation set.

    Returns one record per child: its ``blocks`` and ``subset_ndcg@5``, and for the
    finalists ``valid_ndcg@5``.
    """
    draw = np.random.default_rng(config.seed + 2)
    seen: set[tuple[BlockChoice, ...]] = set()
    children: list[tuple[BlockChoice, ...]] = []
    for _ in range(config.sampled_children):
        child = sample_blocks(draw, config.n_blocks, False)
        if child not in seen:
            seen.add(child)
            children.append(child)
    subset = eval_subset(split.valid, config.validation_subset, config.seed)
    subset_scores = score_children(one_shot, children, subset)
    order = np.argsort(subset_scores)[::-1][: config.top_children]
    full_scores = score_children(one_shot, [children[i] for i in order], split.valid)
    records: list[dict[str, Any]] = [
        {"blocks": [asdict(c) for c in child], "subset_ndcg@5": s}
        for child, s in zip(children, subset_scores)
    ]
    for i, s in zip(order, full_scores):
        records[int(i)]["valid_ndcg@5"] = s
    return records


def _retrain(
    model: NextItemModel, split: NextItemSplit, config: RetrievalSearchConfig, out: Path | None
) -> dict[str, Any]:
    """Retrain the derived ``model`` in place (early stopping on validation NDCG@5); returns
    its ``valid`` metrics, ``retrain_seconds`` and ``best_epoch``. With ``out``, a finished
    retraining is kept in ``retrained.pt`` and only loaded again on a rerun."""
    done_path = out / "retrained.pt" if out is not None else None
    if done_path is not None and done_path.exists():
        done: dict[str, Any] = load_checkpoint(done_path)
        model.load_state_dict(done["model"])
        model.eval()
        return done
    began = time.perf_counter()
    retrainer = SequentialTrainer(
        model,
        split,
        sequential_trainer_config(
            config, config.retrain_epochs, config.eval_every, config.retrain_seconds
        ),
        out / "retrain.pt" if out is not None else None,
    )
    result = retrainer.fit(resume=True)
    done = {
        "model": model.state_dict(),
        "valid": dict(retrainer.evaluate("valid", "sampled").mean),
        "retrain_seconds": time.perf_counter() - began,
        "best_epoch": result.best_epoch,
    }
    if done_path is not None:
        save_atomic(done, done_path)
    return done
