"""Pointwise metrics: AUC against a naive pairwise count, hand-computed log loss / RMSE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.evaluate.pointwise import auc, grouped_auc, log_loss, mse, rmse


def naive_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Pairwise count: a positive above a negative counts 1, a tie counts 1/2."""
    pos = [s for y, s in zip(labels, scores) if y == 1]
    neg = [s for y, s in zip(labels, scores) if y != 1]
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def test_auc_hand_computed() -> None:
    # positives 0.35, 0.8; negatives 0.1, 0.4: wins 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # ties: positives 0.5, 0.7; negatives 0.5, 0.2: 0.5 vs 0.5 = 1/2, other three pairs win
    #       -> 3.5 / 4 = 0.875
    assert auc([1, 0, 1, 0], [0.5, 0.5, 0.7, 0.2]) == 0.875
    # all scores tied -> 0.5; perfectly reversed -> 0
    assert auc([0, 1, 0, 1], [1.0, 1.0, 1.0, 1.0]) == 0.5
    assert auc([1, 1, 0], [0.1, 0.2, 0.3]) == 0.0


def test_auc_label_encodings_and_tensors() -> None:
    scores = [0.1, 0.4, 0.35, 0.8]
    assert auc([-1, -1, 1, 1], scores) == 0.75
    assert auc([False, False, True, True], scores) == 0.75
    assert auc(torch.tensor([0, 0, 1, 1]), torch.tensor(scores, dtype=torch.float32)) == 0.75
    assert auc(np.array([[0, 0], [1, 1]]), np.array([[0.1, 0.4], [0.35, 0.8]])) == 0.75


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_naive_pairwise_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 8, n) / 4.0  # few distinct values: many ties
    assert auc(labels, scores) == pytest.approx(naive_auc(labels, scores), abs=1e-12)
    cont = rng.normal(size=n)
    assert auc(labels, cont) == pytest.approx(naive_auc(labels, cont), abs=1e-12)


def test_auc_errors() -> None:
    with pytest.raises(ValueError, match="one class"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="one class"):
        auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="binary"):
        auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="values"):
        auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        auc([], [])


def test_grouped_auc_matches_loop() -> None:
    rng = np.random.default_rng(3)
    n = 400
    groups = rng.integers(0, 30, n) * 7 + 100  # non-contiguous group ids
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 5, n).astype(np.float64)  # ties within groups
    per_group, sizes = [], []
    for g in np.unique(groups):
        m = groups == g
        if labels[m].min() != labels[m].max():
            per_group.append(naive_auc(labels[m], scores[m]))
            sizes.append(int(m.sum()))
    assert grouped_auc(groups, labels, scores) == pytest.approx(np.mean(per_group), abs=1e-12)
    assert grouped_auc(groups, labels, scores, weighted=True) == pytest.approx(
        np.average(per_group, weights=sizes), abs=1e-12
    )


def test_grouped_auc_hand_computed_and_errors() -> None:
    # group 0: AUC 0.75 (example above); group 1: one class only -> ignored; group 2: AUC 0
    groups = [0, 0, 0, 0, 1, 1, 2, 2]
    labels = [0, 0, 1, 1, 1, 1, 1, 0]
    scores = [0.1, 0.4, 0.35, 0.8, 0.3, 0.2, 0.1, 0.9]
    # mean of 0.75 and 0 = 0.375; weighted by sizes 4 and 2: (3 + 0) / 6 = 0.5
    assert grouped_auc(groups, labels, scores) == pytest.approx(0.375)
    assert grouped_auc(groups, labels, scores, weighted=True) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no group"):
        grouped_auc([0, 0, 1], [1, 1, 0], [0.1, 0.2, 0.3])


def test_log_loss_by_hand() -> None:
    # -(ln 0.8 + ln(1 - 0.4)) / 2 = (0.22314355 + 0.51082562) / 2 = 0.3669845875401002
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(0.3669845875401002, abs=1e-12)
    # clipping: p = 0 for a positive costs -ln(1e-7) = 16.11809565095832
    assert log_loss([1], [0.0]) == pytest.approx(16.11809565095832, abs=1e-9)
    assert log_loss([0], [1.0]) == pytest.approx(16.11809565095832, abs=1e-6)
    # soft label 0.3 with p = 0.6: -(0.3 ln 0.6 + 0.7 ln 0.4) = 0.7946511994417057
    assert log_loss([0.3], [0.6]) == pytest.approx(0.7946511994417057, abs=1e-12)
    assert log_loss(torch.tensor([True, False]), torch.tensor([0.8, 0.4])) == pytest.approx(
        0.3669845875401002, abs=1e-7
    )
    with pytest.raises(ValueError):
        log_loss([2], [0.5])


def test_mse_rmse_by_hand() -> None:
    # errors 0, 2, -3 -> mse = (0 + 4 + 9) / 3 = 4.333..., rmse = sqrt(13/3) = 2.0816659994661326
    assert mse([1.0, 2.0, 3.0], [1.0, 4.0, 0.0]) == pytest.approx(13 / 3)
    assert rmse([1.0, 2.0, 3.0], [1.0, 4.0, 0.0]) == pytest.approx(2.0816659994661326, abs=1e-12)
    assert rmse(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    with pytest.raises(ValueError, match="values"):
        mse([1.0], [1.0, 2.0])
