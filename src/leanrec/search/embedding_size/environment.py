"""The environment of the size search: set sizes, train briefly, measure quality (CIESS 2.2).

One step takes a size for every user and item, applies them as masks to a recommender (every
table of the role), trains it for a bounded budget (Algorithm 1, line 10), evaluates it on the
validation split, and returns the quality indicator ``q_n`` of every user and item (Eq. 7-9).
All of it is vectorized: per-user metrics come from the full-ranking evaluator, item qualities
from one sparse product, no per-entity Python loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from leanrec.data.interactions import Split
from leanrec.evaluate import FullRankingEvaluator, RankingResult
from leanrec.models.base import Recommender
from leanrec.models.compress import set_entity_sizes
from leanrec.train.bpr import bpr_loss, evaluate_model
from leanrec.train.sampling import NegativeSampler
from leanrec.train.step import gradient_step


@dataclass
class EntityQuality:
    """``eval(e_n | .)`` of every user (Eq. 8) and item (Eq. 9); NaN where unmeasurable."""

    users: np.ndarray
    """``(|U|,)``"""
    items: np.ndarray
    """``(|I|,)``"""


def user_eval(result_per_user: dict[str, np.ndarray], ks: tuple[int, ...]) -> np.ndarray:
    """Eq. 8: ``sum_k (Recall@k_u + NDCG@k_u) / (2 |K|)`` from per-user metric vectors."""
    total = sum(result_per_user[f"recall@{k}"] + result_per_user[f"ndcg@{k}"] for k in ks)
    return np.asarray(total, dtype=np.float64) / (2 * len(ks))


def item_eval(user_scores: np.ndarray, item_users: sp.csr_matrix) -> np.ndarray:
    """Eq. 9: mean of ``eval(e_u)`` over each item's training users (NaN users skipped).

    Args:
        user_scores: ``(|U|,)`` with NaN for users without validation items.
        item_users: binary ``(|I|, |U|)`` training matrix.
    """
    known = ~np.isnan(user_scores)
    total = item_users @ np.where(known, user_scores, 0.0)
    count = item_users @ known.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def item_hit_eval(
    top_items: np.ndarray,
    eval_users: np.ndarray,
    valid_users: np.ndarray,
    valid_items: np.ndarray,
    n_items: int,
    ks: tuple[int, ...],
) -> np.ndarray:
    """An item's own retrieval quality: ``(1/|K|) sum_k hits@k(i) / n_valid(i)``.

    ``hits@k(i)`` counts the validation pairs ``(u, i)`` whose item is in ``u``'s top-k list;
    ``n_valid(i)`` counts all of the item's validation pairs. Unlike Eq. 9 this depends on the
    item's own embedding: an item cut too short stops being retrieved.

    Args:
        top_items: ``(U, max(ks))`` top lists of ``eval_users`` (``-1`` where no item).
        eval_users: ``(U,)`` user indices of the rows of ``top_items``.
        valid_users, valid_items: ``(P,)`` validation pairs (duplicates count once).

    Returns:
        ``(n_items,)``, NaN for items without a validation pair.
    """
    keys = np.unique(valid_users.astype(np.int64) * n_items + valid_items.astype(np.int64))
    n_valid = np.bincount(keys % n_items, minlength=n_items).astype(np.float64)
    query = eval_users.astype(np.int64)[:, None] * n_items + top_items
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    is_hit = (top_items >= 0) & (keys[pos] == query) if len(keys) else np.zeros_like(query, bool)
    hits = np.zeros(n_items, dtype=np.float64)
    for k in ks:
        hits += np.bincount(top_items[:, :k][is_hit[:, :k]], minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_valid > 0, hits / (len(ks) * np.maximum(n_valid, 1)), np.nan)


def quality_ratio(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Eq. 7: ``q_n = min(eval_masked / eval_full, 1)``.

    Where the full model scores 0 or the entity cannot be measured (NaN), nothing can be lost
    and ``q_n = 1``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = current / reference
    ratio = np.where((reference > 0) & ~np.isnan(current), ratio, 1.0)
    return np.clip(ratio, 0.0, 1.0)


ITEM_QUALITIES = ("users", "hits")
"""``eval(e_i)`` choices for items: Eq. 9 (``users``) or the item's own hits (``hits``)."""


class SizeSearchEnvironment:
    """Applies sizes, fine-tunes, evaluates.

    Args:
        model: a recommender whose tables are all :class:`~leanrec.embeddings.MaskedEmbedding`
            (trained warm start, or freshly initialised when ``warm_state`` is None).
        split: train / valid (test is never touched here).
        ks: cut-offs of Eq. 8.
        inner_batches, inner_batch_size, inner_learning_rate, inner_negatives, l2: the bounded
            BPR training per step.
        warm_state: weights every step starts from: the warm start, or (``fresh_epochs > 0``)
            one fixed fresh initialisation.
        seed: seeds batch sampling.
        item_quality: ``"users"`` (Eq. 9, the mean of the item's training users' eval) or
            ``"hits"`` (:func:`item_hit_eval`, the item's own retrieval on validation; items
            without a validation pair fall back to Eq. 9).
        reference_state: the fully trained full-size model whose validation eval is Eq. 7's
            denominator (None: ``warm_state``, the warm start).
        fresh_epochs: 0 trains each step for ``inner_batches`` random batches (fine-tuning a
            warm start); ``E > 0`` trains ``E`` shuffled epochs over the training data at
            ``inner_batch_size`` instead (the paper's fresh model per step, Algorithm 1 line
            7-10).
    """

    def __init__(
        self,
        model: Recommender,
        split: Split,
        ks: tuple[int, ...],
        inner_batches: int,
        inner_batch_size: int,
        inner_learning_rate: float,
        inner_negatives: int,
        l2: float,
        warm_state: dict[str, torch.Tensor],
        seed: int,
        item_quality: str = "users",
        reference_state: dict[str, torch.Tensor] | None = None,
        fresh_epochs: int = 0,
    ) -> None:
        if item_quality not in ITEM_QUALITIES:
            raise ValueError(f"item_quality must be one of {ITEM_QUALITIES}, got {item_quality!r}")
        self.item_quality = item_quality
        self.model = model
        self.split = split
        self.ks = tuple(ks)
        self.inner_batches = inner_batches
        self.inner_batch_size = inner_batch_size
        self.inner_learning_rate = inner_learning_rate
        self.inner_negatives = inner_negatives
        self.l2 = l2
        self.warm_state = {k: v.clone() for k, v in warm_state.items()}
        self.reference_state = (
            self.warm_state
            if reference_state is None
            else {k: v.clone() for k, v in reference_state.items()}
        )
        self.fresh_epochs = fresh_epochs
        self.rng = np.random.default_rng(seed)
        self.sampler = NegativeSampler(split.train, self.rng)
        self.evaluator = FullRankingEvaluator(
            split.valid, exclude=[split.train], ks=list(self.ks), metrics=["recall", "ndcg"]
        )
        train = split.train
        self.item_users = sp.csr_matrix(
            (np.ones(len(train)), (train.items, train.users)),
            shape=(train.n_items, train.n_users),
        )
        self.item_users.data[:] = 1.0  # duplicates count once
        self.reference: EntityQuality | None = None

    @property
    def n_users(self) -> int:
        return self.split.train.n_users

    @property
    def n_items(self) -> int:
        return self.split.train.n_items

    def measure_result(self) -> RankingResult:
        """Validation metrics of the model as it stands."""
        return evaluate_model(self.model, self.evaluator)

    def measure(self) -> EntityQuality:
        """Eq. 8-9 of the model as it stands."""
        result = self.measure_result()
        per_user = {
            name: result.per_user_full(name, self.n_users)
            for name in (f"{m}@{k}" for m in ("recall", "ndcg") for k in self.ks)
        }
        users = user_eval(per_user, self.ks)
        items = item_eval(users, self.item_users)
        if self.item_quality == "hits":
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                eval_users, top = self.evaluator.top_k(
                    self.model.score_all, max(self.ks), inplace=True
                )
            self.model.train(was_training)
            valid = self.split.valid
            own = item_hit_eval(top, eval_users, valid.users, valid.items, self.n_items, self.ks)
            items = np.where(np.isnan(own), items, own)
        return EntityQuality(users, items)

    def set_reference(self) -> EntityQuality:
        """Eq. 7's denominators: the reference model (the warm start unless given) at full
        size, measured once."""
        self.model.load_state_dict(self.reference_state)
        set_entity_sizes(
            self.model,
            np.full(self.n_users, self._max_dim()),
            np.full(self.n_items, self._max_dim()),
        )
        self.reference = self.measure()
        return self.reference

    def _max_dim(self) -> int:
        return next(iter(self.model.embedding_tables().values())).embedding_dim

    def step(self, user_sizes: np.ndarray, item_sizes: np.ndarray) -> dict[str, Any]:
        """One iteration: masks, bounded training, quality.

        Returns:
            ``{"q_users": (|U|,), "q_items": (|I|,), "loss": float}``.
        """
        if self.reference is None:
            self.set_reference()
        assert self.reference is not None
        self.model.load_state_dict(self.warm_state)
        set_entity_sizes(self.model, user_sizes, item_sizes)
        loss = self._train_inner()
        quality = self.measure()
        return {
            "q_users": quality_ratio(quality.users, self.reference.users),
            "q_items": quality_ratio(quality.items, self.reference.items),
            "loss": loss,
        }

    def _inner_batches(self) -> Iterator[np.ndarray]:
        """Training rows of each inner step, drawn as the steps go: ``inner_batches`` random
        batches, or ``fresh_epochs`` shuffled passes over the training data."""
        n = len(self.split.train)
        if self.fresh_epochs <= 0:
            for _ in range(self.inner_batches):
                yield self.rng.integers(0, n, self.inner_batch_size)
            return
        for _ in range(self.fresh_epochs):
            order = self.rng.permutation(n)
            for start in range(0, n, self.inner_batch_size):
                yield order[start : start + self.inner_batch_size]

    def _train_inner(self) -> float:
        if self.fresh_epochs <= 0 and self.inner_batches <= 0:
            return float("nan")
        model = self.model
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=self.inner_learning_rate)
        train = self.split.train
        losses = []
        for rows in self._inner_batches():
            users = train.users[rows]
            negatives = self.sampler.sample(users, self.inner_negatives)
            loss = bpr_loss(
                model,
                torch.from_numpy(users),
                torch.from_numpy(train.items[rows]),
                torch.from_numpy(negatives),
                self.l2,
            )
            gradient_step(
                loss,
                optimizer,
                "inner loss became {loss}; lower inner_learning_rate "
                f"(now {self.inner_learning_rate})",
            )
            losses.append(float(loss.detach()))
        model.eval()
        return float(np.mean(losses))
