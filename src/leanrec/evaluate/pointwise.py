"""Pointwise metrics: AUC, grouped AUC, log loss, MSE and RMSE.

All functions accept numpy arrays, torch tensors (any device; detached and copied to the CPU)
or sequences, flatten them to 1-d and compute in float64. They return plain Python floats.

Example:
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> round(rmse([1.0, 2.0], [1.0, 4.0]), 6)
    1.414214
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import torch

ArrayLike: TypeAlias = np.ndarray | torch.Tensor | Sequence[float]

__all__ = ["auc", "grouped_auc", "log_loss", "mse", "rmse"]


def _as_array(x: ArrayLike, name: str) -> np.ndarray:
    """1-d numpy view/copy of ``x`` (tensors are detached and moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        arr = x.numpy()
    else:
        arr = np.asarray(x)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def _binary_labels(labels: ArrayLike, n: int | None = None) -> np.ndarray:
    """Labels as a bool array (positive = 1 / True); accepts {0, 1}, {-1, 1} or bools."""
    y = _as_array(labels, "labels")
    if n is not None and len(y) != n:
        raise ValueError(f"labels has {len(y)} values, scores has {n}")
    if y.dtype == np.bool_:
        return y
    values = np.unique(y)
    if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {-1, 1}):
        raise ValueError(f"labels must be binary ({{0, 1}} or {{-1, 1}}), got values {values[:5]}")
    return y == 1


def _scores(scores: ArrayLike) -> np.ndarray:
    s = _as_array(scores, "scores").astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve, by ranks (Mann-Whitney U) with tied scores averaged.

    Equals ``sklearn.metrics.roc_auc_score(labels, scores)``: a positive ranked above a negative
    counts 1, a tie counts 1/2. The numerator is accumulated in exact integer arithmetic, so the
    result is the correctly rounded value of ``U / (n_pos * n_neg)``.

    Args:
        labels: binary labels, shape ``(n,)``: bools, ``{0, 1}`` or ``{-1, 1}`` (1 = positive).
        scores: higher means more likely positive, shape ``(n,)``.

    Raises:
        ValueError: if only one class is present, shapes differ, or scores contain NaN.
    """
    s = _scores(scores)
    y = _binary_labels(labels, len(s))
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when only one class is present in labels")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    before = np.cumsum(counts) - counts  # number of strictly smaller scores per distinct value
    # Twice the average 1-based rank of each distinct value: 2 * before + count + 1 (an integer).
    twice_rank = 2 * before + counts + 1
    twice_u = int(twice_rank[inverse.reshape(-1)[y]].sum()) - n_pos * (n_pos + 1)
    return twice_u / (2 * n_pos * n_neg)


def grouped_auc(
    groups: ArrayLike, labels: ArrayLike, scores: ArrayLike, weighted: bool = False
) -> float:
    """Mean per-group AUC (e.g. per user: "GAUC") over the groups having both classes.

    Vectorised (one lexsort, no Python loop over groups). Groups with only positives or only
    negatives are ignored.

    Args:
        groups: group id per example, shape ``(n,)``, integer.
        labels: binary labels, shape ``(n,)``; see :func:`auc`.
        scores: scores, shape ``(n,)``.
        weighted: if true, weight each group's AUC by its number of examples; otherwise a plain
            mean over groups.

    Raises:
        ValueError: if no group has both classes.
    """
    s = _scores(scores)
    y = _binary_labels(labels, len(s))
    g_raw = _as_array(groups, "groups")
    if len(g_raw) != len(s):
        raise ValueError(f"groups has {len(g_raw)} values, scores has {len(s)}")
    _, g = np.unique(g_raw, return_inverse=True)
    g = g.reshape(-1).astype(np.int64)
    n_groups = int(g.max()) + 1
    order = np.lexsort((s, g))  # by group, then score ascending
    gs, ss, ys = g[order], s[order], y[order]
    n = len(gs)
    pos = np.arange(n, dtype=np.int64)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = gs[1:] != gs[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    new_run = new_group.copy()
    new_run[1:] |= ss[1:] != ss[:-1]
    run_id = np.cumsum(new_run) - 1
    run_start = pos[new_run]
    run_len = np.diff(np.append(run_start, n))
    # Twice the average 1-based within-group rank of each tie run: 2*(start - group_start) + len + 1
    twice_rank_run = 2 * (run_start - group_start[run_start]) + run_len + 1
    twice_rank = twice_rank_run[run_id]
    n_pos = np.bincount(gs, weights=ys, minlength=n_groups).astype(np.int64)
    n_all = np.bincount(gs, minlength=n_groups).astype(np.int64)
    n_neg = n_all - n_pos
    sum_twice = np.bincount(gs, weights=np.where(ys, twice_rank, 0), minlength=n_groups)
    valid = (n_pos > 0) & (n_neg > 0)
    if not valid.any():
        raise ValueError("grouped AUC is undefined: no group has both classes")
    twice_u = sum_twice[valid] - n_pos[valid] * (n_pos[valid] + 1)
    aucs = twice_u / (2.0 * n_pos[valid] * n_neg[valid])
    if weighted:
        return float(np.average(aucs, weights=n_all[valid]))
    return float(aucs.mean())


def log_loss(labels: ArrayLike, probs: ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy ``-[y log p + (1 - y) log(1 - p)]``, natural log.

    Args:
        labels: targets in ``[0, 1]`` (hard or soft labels; bools accepted), shape ``(n,)``.
        probs: predicted probabilities of the positive class, shape ``(n,)``; clipped to
            ``[eps, 1 - eps]`` so a confident mistake costs ``-log(eps)`` instead of ``inf``.
        eps: clipping constant.
    """
    p = _scores(probs)
    y = _as_array(labels, "labels").astype(np.float64)
    if len(y) != len(p):
        raise ValueError(f"labels has {len(y)} values, probs has {len(p)}")
    if (y < 0).any() or (y > 1).any():
        raise ValueError("log_loss labels must lie in [0, 1]")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def mse(targets: ArrayLike, predictions: ArrayLike) -> float:
    """Mean squared error ``mean((prediction - target)^2)`` over ``(n,)`` arrays."""
    t = _as_array(targets, "targets").astype(np.float64)
    p = _as_array(predictions, "predictions").astype(np.float64)
    if len(t) != len(p):
        raise ValueError(f"targets has {len(t)} values, predictions has {len(p)}")
    return float(np.mean((p - t) ** 2))


def rmse(targets: ArrayLike, predictions: ArrayLike) -> float:
    """Root mean squared error, ``sqrt(mse(targets, predictions))``."""
    return float(np.sqrt(mse(targets, predictions)))
