"""Next-item evaluation: one target per user, ranked among sampled candidates or all items.

Two protocols over a :class:`~leanrec.data.sequential.NextItemEvalSet`:

* :func:`evaluate_sampled` (BERT4Rec protocol): the target is ranked among itself plus the
  user's ``n_negatives`` (100) sampled negatives, i.e. 101 candidates.
* :func:`evaluate_full`: the target is ranked among *all* items except padding (ID 0) and the
  items the user interacted with before the target (the whole prefix, see
  :attr:`NextItemEvalSet.history_items`); the target itself is never excluded.

Both compute the target's 0-based **rank** = number of other (non-excluded) candidates whose
score is ``>=`` the target's score. **Ties count against the target (pessimistic)**: a model
that gives every item the same score gets rank ``C - 1`` (last), never a lucky 0; an
optimistic count (``>``) would let a constant model score HR = 1. A NaN score raises.

From the rank, with one relevant item per user (so ``IDCG = 1``)::

    hit@k  = 1 if rank < k else 0                  (HR@k)
    ndcg@k = 1 / log2(rank + 2) if rank < k else 0
    mrr    = 1 / (rank + 1)                        (over all candidates, not cut off)

``hit@k`` and ``ndcg@k`` come from :func:`leanrec.evaluate.ranking.ranking_metrics` applied to
the one-hot hit matrix of the rank, so they share its definitions. Results are
:class:`~leanrec.evaluate.full_ranking.RankingResult` objects (per-user values aligned with
``eval_set.users``; ``per_user["rank"]`` holds the ranks).

Users are scored in batches of similar input length, and each batch is cut to its longest input
(``trim=True``): with right-aligned windows this drops the padding columns every row shares,
which is exact for a padding-invariant encoder (the contract of
:class:`~leanrec.models.seq.SequenceEncoder`) and ~5x faster on short-sequence data such as
Beauty. Pass ``trim=False`` for score functions that need the full window.

Example (``model`` a :class:`~leanrec.models.seq.NextItemModel`)::

    result = evaluate_sampled(model.score_candidates, split.test, ks=(5, 10))
    print(result["hit@5"], result["ndcg@5"], result["mrr"])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from leanrec.data.sequential import PADDING_ID, NextItemEvalSet, csr_rows
from leanrec.errors import NaNScoresError
from leanrec.evaluate.full_ranking import RankingResult
from leanrec.evaluate.ranking import ranking_metrics

CandidateScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``score(inputs (B, N), candidates (B, C)) -> (B, C)`` float scores of the candidate IDs."""

AllScoreFn = Callable[[torch.Tensor], torch.Tensor]
"""``score(inputs (B, N)) -> (B, n_items + 1)`` float scores of every item ID (column 0 is
padding and is ignored)."""

NEXT_ITEM_METRICS: tuple[str, ...] = ("hit", "ndcg")
"""Cut-off metrics reported per ``k`` (``mrr`` is reported once, uncut)."""

__all__ = [
    "NEXT_ITEM_METRICS",
    "AllScoreFn",
    "CandidateScoreFn",
    "evaluate_full",
    "evaluate_sampled",
    "metrics_from_ranks",
]


def metrics_from_ranks(ranks: torch.Tensor, ks: Sequence[int]) -> dict[str, torch.Tensor]:
    """Per-user ``hit@k``, ``ndcg@k`` (each ``k``) and ``mrr`` from 0-based target ranks.

    Args:
        ranks: 0-based rank of each user's single target, shape ``(B,)`` int64.
        ks: cut-offs.

    Returns:
        ``{"hit@5": (B,), "ndcg@5": (B,), ..., "mrr": (B,)}``, float64.

    Example:
        >>> out = metrics_from_ranks(torch.tensor([0, 1, 7]), ks=(5,))
        >>> [round(v, 4) for v in out["ndcg@5"].tolist()], out["hit@5"].tolist()
        ([1.0, 0.6309, 0.0], [1.0, 1.0, 0.0])
    """
    if ranks.ndim != 1:
        raise ValueError(f"ranks must have shape (B,), got {tuple(ranks.shape)}")
    K = max(int(k) for k in ks)
    positions = torch.arange(K, device=ranks.device)
    hits = positions[None, :] == ranks[:, None]  # (B, K): one-hot rank, empty if rank >= K
    n_targets = torch.ones(len(ranks), dtype=torch.int64, device=ranks.device)
    out = ranking_metrics(hits, n_targets, ks, NEXT_ITEM_METRICS)
    out["mrr"] = 1.0 / (ranks.to(torch.float64) + 1.0)
    return out


def _batches(
    inputs: np.ndarray, batch_size: int, trim: bool
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield ``(rows (B,), inputs (B, L))``: rows grouped by input length, cut to the longest
    row of the batch when ``trim`` (``L = N`` otherwise)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    lengths = (inputs != PADDING_ID).sum(axis=1)
    order = np.argsort(lengths, kind="stable") if trim else np.arange(len(inputs))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = max(1, int(lengths[rows].max())) if trim else inputs.shape[1]
        yield rows, torch.from_numpy(np.ascontiguousarray(inputs[rows, -longest:]))


def _result(
    eval_set: NextItemEvalSet,
    ranks: torch.Tensor,
    ks: Sequence[int],
    began: float,
    score_seconds: float,
) -> RankingResult:
    per_user_t = metrics_from_ranks(ranks, ks)
    per_user = {name: v.cpu().numpy() for name, v in per_user_t.items()}
    per_user["rank"] = ranks.cpu().numpy().astype(np.float64)
    mean = {name: float(v.mean()) for name, v in per_user.items() if name != "rank"}
    return RankingResult(
        users=eval_set.users.copy(),
        per_user=per_user,
        mean=mean,
        n_users_skipped=0,
        seconds=time.perf_counter() - began,
        score_seconds=score_seconds,
    )


def _check_scores(scores: torch.Tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"score function must return a torch.Tensor, got {type(scores).__name__}")
    if tuple(scores.shape) != shape:
        raise ValueError(f"score function returned shape {tuple(scores.shape)}, expected {shape}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be floating point, got {scores.dtype}")


def evaluate_sampled(
    score_fn: CandidateScoreFn,
    eval_set: NextItemEvalSet,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 1024,
    trim: bool = True,
) -> RankingResult:
    """Rank each target among itself and its sampled negatives (BERT4Rec protocol).

    Args:
        score_fn: ``(inputs (B, N), candidates (B, 1 + n_negatives)) -> (B, 1 + n_negatives)``;
            called under :func:`torch.no_grad`; column 0 of ``candidates`` is the target.
        eval_set: the validation or test part of a :class:`~leanrec.data.sequential.NextItemSplit`.
        ks: cut-offs of ``hit`` and ``ndcg``.
        batch_size: users per ``score_fn`` call.
        trim: score users grouped by input length with shared padding columns cut (see the
            module docstring); results are identical for a padding-invariant encoder.

    Returns:
        :class:`RankingResult` with ``hit@k``, ``ndcg@k`` and ``mrr`` (ties pessimistic).
    """
    began = time.perf_counter()
    candidates_all = torch.from_numpy(eval_set.candidates())
    if len(eval_set) and candidates_all.shape[1] < 2:
        raise ValueError(
            "the evaluation set holds no sampled negatives (a split made for ranking against "
            "every item): evaluate it with the full protocol"
        )
    ranks = torch.empty(len(eval_set), dtype=torch.int64)
    score_seconds = 0.0
    with torch.no_grad():
        for rows, inputs in _batches(eval_set.inputs, batch_size, trim):
            rows_t = torch.from_numpy(rows)
            candidates = candidates_all[rows_t]
            t0 = time.perf_counter()
            scores = score_fn(inputs, candidates)
            score_seconds += time.perf_counter() - t0
            _check_scores(scores, tuple(candidates.shape))
            if torch.isnan(scores).any():
                raise NaNScoresError("score function returned NaN scores")
            target = scores[:, :1]
            ranks[rows_t] = (scores[:, 1:] >= target).sum(dim=1, dtype=torch.int32).long()
    return _result(eval_set, ranks, ks, began, score_seconds)


def evaluate_full(
    score_fn: AllScoreFn,
    eval_set: NextItemEvalSet,
    n_items: int,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 512,
    trim: bool = True,
) -> RankingResult:
    """Rank each target among all items, excluding padding and the user's earlier items.

    Args:
        score_fn: ``inputs (B, N) -> (B, n_items + 1)`` scores of every item ID; called under
            :func:`torch.no_grad`. A fresh tensor is expected (it is masked in place).
        eval_set: the validation or test part of a :class:`~leanrec.data.sequential.NextItemSplit`.
        n_items: number of real items ``I`` (IDs ``1..I``).
        ks: cut-offs of ``hit`` and ``ndcg``.
        batch_size: users per ``score_fn`` call (scores take ``batch_size * (I + 1) * 4`` bytes).
        trim: as in :func:`evaluate_sampled`.

    Returns:
        :class:`RankingResult` with ``hit@k``, ``ndcg@k`` and ``mrr`` (ties pessimistic).
    """
    began = time.perf_counter()
    targets_all = torch.from_numpy(eval_set.targets)
    indptr = eval_set.history_indptr
    history = eval_set.history_items
    ranks = torch.empty(len(eval_set), dtype=torch.int64)
    score_seconds = 0.0
    minus_inf = torch.tensor(-math.inf)
    with torch.no_grad():
        for rows, inputs in _batches(eval_set.inputs, batch_size, trim):
            B = len(rows)
            t0 = time.perf_counter()
            scores = score_fn(inputs)
            score_seconds += time.perf_counter() - t0
            _check_scores(scores, (B, n_items + 1))
            rows_t = torch.from_numpy(rows)
            batch = torch.arange(B)
            targets = targets_all[rows_t]
            target_scores = scores[batch, targets].clone()
            if torch.isnan(target_scores).any():
                raise NaNScoresError("score function returned NaN scores")
            hist_ptr, hist_items = csr_rows(indptr, history, rows)
            hist_rows = torch.repeat_interleave(batch, torch.from_numpy(np.diff(hist_ptr)))
            minus = minus_inf.to(scores.dtype)
            scores.index_put_((hist_rows, torch.from_numpy(hist_items)), minus)
            scores[:, PADDING_ID] = minus
            scores[batch, targets] = minus  # counted apart: the target is not its own rival
            if torch.isnan(scores).any():
                raise NaNScoresError("score function returned NaN scores")
            ranks[rows_t] = (scores >= target_scores[:, None]).sum(dim=1, dtype=torch.int32).long()
    return _result(eval_set, ranks, ks, began, score_seconds)
