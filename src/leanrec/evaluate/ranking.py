"""Top-k ranking metrics computed from a hit matrix.

Every function here is pure and vectorised over a batch of users. The input is a *hit matrix*
``hits`` of shape ``(B, K)``: ``hits[b, r]`` is true when the item ranked at position ``r``
(0-based, best first) for user ``b`` is one of that user's targets. ``n_targets`` of shape
``(B,)`` gives each user's number of targets (which may exceed ``K``). With ``hits@k`` the number
of hits among the first ``k`` positions, for any ``1 <= k <= K``:

* ``recall@k    = hits@k / n_targets``
* ``precision@k = hits@k / k``
* ``hit@k       = 1 if hits@k > 0 else 0``
* ``ndcg@k      = DCG@k / IDCG@k`` with binary gains, ``DCG@k = sum_{r<k} hit_r / log2(r + 2)``
  and ``IDCG@k = sum_{r < min(n_targets, k)} 1 / log2(r + 2)`` (the ideal list puts all targets
  first, so a user with more targets than ``k`` has ``IDCG`` over ``k`` positions);
* ``mrr@k       = 1 / (r_first + 1)`` where ``r_first`` is the 0-based rank of the first hit,
  or 0 when there is no hit in the first ``k`` positions.

Users with ``n_targets == 0`` get 0 for recall and NDCG (instead of a division by zero);
:class:`~leanrec.evaluate.full_ranking.FullRankingEvaluator` never passes such users.

Example:
    >>> import torch
    >>> hits = torch.tensor([[True, False, True]])   # targets {a, c}, ranking [a, b, c, ...]
    >>> out = ranking_metrics(hits, torch.tensor([2]), ks=(2,))
    >>> round(out["recall@2"].item(), 4), out["mrr@2"].item()
    (0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

METRICS: tuple[str, ...] = ("recall", "ndcg", "precision", "hit", "mrr")
"""Names of the supported ranking metrics, in the default reporting order."""

__all__ = [
    "METRICS",
    "hit_at_k",
    "metric_key",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]


def metric_key(metric: str, k: int) -> str:
    """Result key of ``metric`` at cut-off ``k``: ``metric_key("ndcg", 10) == "ndcg@10"``."""
    return f"{metric}@{k}"


def _check_inputs(hits: torch.Tensor, n_targets: torch.Tensor) -> None:
    if hits.ndim != 2:
        raise ValueError(f"hits must have shape (B, K), got {tuple(hits.shape)}")
    if n_targets.ndim != 1 or n_targets.shape[0] != hits.shape[0]:
        raise ValueError(
            f"n_targets must have shape ({hits.shape[0]},), got {tuple(n_targets.shape)}"
        )


def _check_ks(ks: Sequence[int], K: int) -> list[int]:
    out: list[int] = []
    for k in ks:
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"cut-off k must be a positive integer, got {k!r}")
        if k > K:
            raise ValueError(f"cut-off k={k} exceeds the hit matrix width K={K}")
        out.append(int(k))
    return out


def _discounts(K: int, device: torch.device) -> torch.Tensor:
    """``1 / log2(r + 2)`` for ``r = 0..K-1``, shape ``(K,)``, float64."""
    return 1.0 / torch.log2(torch.arange(K, dtype=torch.float64, device=device) + 2.0)


def ranking_metrics(
    hits: torch.Tensor,
    n_targets: torch.Tensor,
    ks: Sequence[int],
    metrics: Sequence[str] = METRICS,
) -> dict[str, torch.Tensor]:
    """All requested metrics at all cut-offs, per user, sharing the cumulative sums.

    Args:
        hits: hit matrix, shape ``(B, K)``, bool (or 0/1 numbers); ``hits[b, r]`` is true when
            the item at 0-based rank ``r`` is a target of user ``b``.
        n_targets: number of targets per user, shape ``(B,)``, integer, same device as ``hits``.
        ks: cut-offs, each ``1 <= k <= K``.
        metrics: subset of :data:`METRICS`.

    Returns:
        ``{"recall@10": tensor (B,), "ndcg@10": ..., ...}``: one float64 tensor of shape
        ``(B,)`` per ``(metric, k)``, keys ordered by metric then ``k``.
    """
    _check_inputs(hits, n_targets)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown ranking metric(s) {unknown}; choose from {list(METRICS)}")
    B, K = hits.shape
    ks_ = _check_ks(ks, K)
    h = hits.to(torch.float64)
    n_t = n_targets.to(device=hits.device, dtype=torch.int64)
    has_targets = n_t > 0
    n_t_f = n_t.clamp(min=1).to(torch.float64)
    cum_hits = h.cumsum(dim=1)  # (B, K): hits@(r+1)

    need_ndcg = "ndcg" in metrics
    need_mrr = "mrr" in metrics
    if need_ndcg:
        disc = _discounts(K, hits.device)
        cum_dcg = (h * disc).cumsum(dim=1)  # (B, K)
        cum_ideal = disc.cumsum(dim=0)  # (K,): IDCG with m ideal positions at index m-1
    if need_mrr:
        any_hit = h.sum(dim=1) > 0
        # argmax returns the first maximal position, i.e. the first hit when there is one.
        first = torch.where(
            any_hit, h.argmax(dim=1), torch.full((B,), K, dtype=torch.int64, device=hits.device)
        )

    out: dict[str, torch.Tensor] = {}
    for metric in metrics:
        for k in ks_:
            hk = cum_hits[:, k - 1]
            if metric == "recall":
                val = torch.where(has_targets, hk / n_t_f, torch.zeros_like(hk))
            elif metric == "precision":
                val = hk / float(k)
            elif metric == "hit":
                val = (hk > 0).to(torch.float64)
            elif metric == "ndcg":
                m = n_t.clamp(min=1, max=k) - 1
                val = torch.where(
                    has_targets, cum_dcg[:, k - 1] / cum_ideal[m], torch.zeros_like(hk)
                )
            else:  # mrr
                val = torch.where(
                    first < k, 1.0 / (first.to(torch.float64) + 1.0), torch.zeros_like(hk)
                )
            out[metric_key(metric, k)] = val
    return out


def recall_at_k(hits: torch.Tensor, n_targets: torch.Tensor, k: int) -> torch.Tensor:
    """Recall@k per user, shape ``(B,)`` float64; see :func:`ranking_metrics`."""
    return ranking_metrics(hits, n_targets, (k,), ("recall",))[metric_key("recall", k)]


def precision_at_k(hits: torch.Tensor, n_targets: torch.Tensor, k: int) -> torch.Tensor:
    """Precision@k per user, shape ``(B,)`` float64; see :func:`ranking_metrics`."""
    return ranking_metrics(hits, n_targets, (k,), ("precision",))[metric_key("precision", k)]


def hit_at_k(hits: torch.Tensor, n_targets: torch.Tensor, k: int) -> torch.Tensor:
    """Hit@k (1 if any target in the top k) per user, shape ``(B,)`` float64."""
    return ranking_metrics(hits, n_targets, (k,), ("hit",))[metric_key("hit", k)]


def ndcg_at_k(hits: torch.Tensor, n_targets: torch.Tensor, k: int) -> torch.Tensor:
    """NDCG@k with binary gains per user, shape ``(B,)`` float64; see :func:`ranking_metrics`."""
    return ranking_metrics(hits, n_targets, (k,), ("ndcg",))[metric_key("ndcg", k)]


def mrr_at_k(hits: torch.Tensor, n_targets: torch.Tensor, k: int) -> torch.Tensor:
    """MRR@k (reciprocal rank of the first hit within the top k) per user, shape ``(B,)``."""
    return ranking_metrics(hits, n_targets, (k,), ("mrr",))[metric_key("mrr", k)]
