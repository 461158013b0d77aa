"""Hand-computed checks of the hit-matrix ranking metrics."""

from __future__ import annotations

import math

import pytest
import torch

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

# Hand-computed constants:
#   1 / log2(3) = 0.6309297535714575    1 / log2(4) = 0.5    1 / log2(5) = 0.43067655807339306
#   IDCG@2 = 1 + 0.6309297535714575 = 1.6309297535714575
#   IDCG@3 = 1 + 0.6309297535714575 + 0.5 = 2.1309297535714575
INV_LOG2_3 = 0.6309297535714575
INV_LOG2_5 = 0.43067655807339306


def _row(out: dict[str, torch.Tensor], b: int) -> dict[str, float]:
    return {k: float(v[b]) for k, v in out.items()}


def test_targets_1_3_ranking_3_0_1_2() -> None:
    # targets {1, 3}, ranking [3, 0, 1, 2]  ->  hits [1, 0, 1, 0], n_targets = 2
    hits = torch.tensor([[True, False, True, False]])
    out = _row(ranking_metrics(hits, torch.tensor([2]), ks=(1, 2, 4)), 0)
    # k = 1: 1 hit of 2 targets; DCG = 1 = IDCG@1
    assert out["recall@1"] == pytest.approx(0.5)
    assert out["precision@1"] == pytest.approx(1.0)
    assert out["hit@1"] == 1.0
    assert out["ndcg@1"] == pytest.approx(1.0)
    assert out["mrr@1"] == pytest.approx(1.0)
    # k = 2: recall 1/2, precision 1/2, ndcg = 1 / (1 + 1/log2(3)) = 0.6131471927654584
    assert out["recall@2"] == pytest.approx(0.5)
    assert out["precision@2"] == pytest.approx(0.5)
    assert out["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert out["ndcg@2"] == pytest.approx(0.6131471927654584, abs=1e-12)
    assert out["mrr@2"] == pytest.approx(1.0)
    # k = 4: recall 2/2, precision 2/4, DCG = 1 + 1/log2(4) = 1.5, IDCG = 1.6309297535714575
    #        ndcg = 1.5 / 1.6309297535714575 = 0.9197207891481876
    assert out["recall@4"] == pytest.approx(1.0)
    assert out["precision@4"] == pytest.approx(0.5)
    assert out["hit@4"] == 1.0
    assert out["ndcg@4"] == pytest.approx(0.9197207891481876, abs=1e-12)
    assert out["mrr@4"] == pytest.approx(1.0)


def test_more_targets_than_k_idcg_over_k() -> None:
    # 5 targets, top-3 = [miss, hit, hit]
    hits = torch.tensor([[False, True, True]])
    out = _row(ranking_metrics(hits, torch.tensor([5]), ks=(3,)), 0)
    # recall = 2/5, precision = 2/3
    assert out["recall@3"] == pytest.approx(0.4)
    assert out["precision@3"] == pytest.approx(2 / 3)
    # DCG = 1/log2(3) + 1/log2(4) = 1.1309297535714575; IDCG over min(5, 3) = 3 positions =
    # 2.1309297535714575; ndcg = 0.5307212739772434
    assert out["ndcg@3"] == pytest.approx(0.5307212739772434, abs=1e-12)
    assert out["ndcg@3"] == pytest.approx((INV_LOG2_3 + 0.5) / (1 + INV_LOG2_3 + 0.5))
    # first hit at 0-based rank 1 -> MRR = 1/2
    assert out["mrr@3"] == pytest.approx(0.5)
    assert out["hit@3"] == 1.0


def test_late_single_hit_and_batch() -> None:
    # user 0: 1 target, found at 0-based rank 3; user 1: no hit; user 2: all hits, 2 targets
    hits = torch.tensor(
        [
            [False, False, False, True, False],
            [False, False, False, False, False],
            [True, True, False, False, False],
        ]
    )
    out = ranking_metrics(hits, torch.tensor([1, 4, 2]), ks=(3, 5))
    u0 = _row(out, 0)
    # k = 3: nothing
    for m in METRICS:
        assert u0[f"{m}@3"] == 0.0
    # k = 5: recall 1, precision 1/5, ndcg = 1/log2(5) / 1 = 0.43067655807339306, mrr = 1/4
    assert u0["recall@5"] == pytest.approx(1.0)
    assert u0["precision@5"] == pytest.approx(0.2)
    assert u0["ndcg@5"] == pytest.approx(INV_LOG2_5, abs=1e-12)
    assert u0["mrr@5"] == pytest.approx(0.25)
    u1 = _row(out, 1)
    assert all(v == 0.0 for v in u1.values())
    u2 = _row(out, 2)
    # perfect ranking of 2 targets: ndcg 1 at every k, recall 1, precision 2/3 then 2/5
    assert u2["ndcg@3"] == pytest.approx(1.0)
    assert u2["ndcg@5"] == pytest.approx(1.0)
    assert u2["recall@3"] == pytest.approx(1.0)
    assert u2["precision@3"] == pytest.approx(2 / 3)
    assert u2["precision@5"] == pytest.approx(0.4)


def test_output_format_and_single_metric_functions() -> None:
    g = torch.Generator().manual_seed(0)
    hits = torch.rand(7, 6, generator=g) < 0.3
    n_t = torch.randint(1, 9, (7,), generator=g)
    out = ranking_metrics(hits, n_t, ks=(1, 3, 6))
    assert list(out) == [metric_key(m, k) for m in METRICS for k in (1, 3, 6)]
    for v in out.values():
        assert v.shape == (7,) and v.dtype == torch.float64
    fns = {
        "recall": recall_at_k,
        "ndcg": ndcg_at_k,
        "precision": precision_at_k,
        "hit": hit_at_k,
        "mrr": mrr_at_k,
    }
    for m, fn in fns.items():
        assert torch.equal(fn(hits, n_t, 3), out[f"{m}@3"])
    # 0/1 integer hits give the same numbers as bool hits
    out_int = ranking_metrics(hits.to(torch.int64), n_t, ks=(3,))
    assert torch.equal(out_int["ndcg@3"], out["ndcg@3"])


def test_zero_targets_give_zero_not_nan() -> None:
    out = ranking_metrics(torch.zeros(1, 3, dtype=torch.bool), torch.tensor([0]), ks=(2,))
    assert all(float(v[0]) == 0.0 for v in out.values())


def test_bad_inputs() -> None:
    hits = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="exceeds"):
        ranking_metrics(hits, torch.tensor([1, 1]), ks=(4,))
    with pytest.raises(ValueError, match="positive"):
        ranking_metrics(hits, torch.tensor([1, 1]), ks=(0,))
    with pytest.raises(ValueError, match="unknown"):
        ranking_metrics(hits, torch.tensor([1, 1]), ks=(1,), metrics=("map",))
    with pytest.raises(ValueError, match="n_targets"):
        ranking_metrics(hits, torch.tensor([1]), ks=(1,))
    with pytest.raises(ValueError, match="shape"):
        ranking_metrics(torch.zeros(3, dtype=torch.bool), torch.tensor([1, 1, 1]), ks=(1,))
