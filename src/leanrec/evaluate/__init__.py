"""leanrec.evaluate: full-ranking top-k metrics and pointwise metrics.

* :mod:`~leanrec.evaluate.ranking`: pure, vectorised top-k metrics over a hit matrix
  (recall, NDCG, precision, hit rate, MRR).
* :mod:`~leanrec.evaluate.full_ranking`: :class:`FullRankingEvaluator`, which ranks all items
  for every user with a target, excludes seen items, and returns a :class:`RankingResult`.
* :mod:`~leanrec.evaluate.sampled`: next-item evaluation (one target per user) against 100
  sampled negatives (BERT4Rec protocol) or all items.
* :mod:`~leanrec.evaluate.pointwise`: AUC, grouped AUC, log loss, MSE, RMSE.
* :mod:`~leanrec.evaluate.prequential`: test-then-train evaluation along an event stream.
"""

from leanrec.evaluate.full_ranking import FullRankingEvaluator, RankingResult, ScoreFn
from leanrec.evaluate.pointwise import auc, grouped_auc, log_loss, mse, rmse
from leanrec.evaluate.prequential import Prediction, PrequentialRecord, run_prequential
from leanrec.evaluate.ranking import (
    METRICS,
    hit_at_k,
    metric_key,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from leanrec.evaluate.sampled import evaluate_full, evaluate_sampled, metrics_from_ranks

__all__ = [
    "METRICS",
    "FullRankingEvaluator",
    "Prediction",
    "PrequentialRecord",
    "RankingResult",
    "ScoreFn",
    "auc",
    "evaluate_full",
    "evaluate_sampled",
    "grouped_auc",
    "hit_at_k",
    "log_loss",
    "metric_key",
    "metrics_from_ranks",
    "mrr_at_k",
    "mse",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "rmse",
    "run_prequential",
]
