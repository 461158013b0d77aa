"""Memory budgets: sparsity of a size assignment and exact projection onto a target.

Sparsity (CIESS Eq. 5) of sizes ``d_n`` over ``N`` entities with full size ``d_max``::

    sparsity = 1 - sum(d_n) / (N * d_max)

(when a model has several tables per role, each table holds the same sizes, so the ratio is
unchanged). A target ``c`` allows ``floor((1 - c) * N * d_max)`` kept values.

Projection rule (:func:`fit_to_budget`): sizes are rescaled by one common factor ``α`` and
floored, ``d'_n = clip(floor(α w_n), 1, d_max)``, with the largest ``α`` whose total fits the
budget. Relative allocation is preserved; a policy that overshoots shrinks proportionally, one
that undershoots grows into the unused budget. The result's sparsity is always ``>= c``.
"""

from __future__ import annotations

import math

import numpy as np


class BudgetError(ValueError):
    """A target sparsity that cannot be met (every entity keeps at least one value)."""


def sparsity(sizes: np.ndarray, max_dim: int) -> float:
    """``1 - sum(d_n) / (N d_max)`` for ``sizes`` of shape ``(N,)``."""
    sizes = np.asarray(sizes)
    return 1.0 - float(sizes.sum()) / (sizes.size * max_dim)


def budget_values(n_entities: int, max_dim: int, target_sparsity: float) -> int:
    """Largest ``sum(d_n)`` with sparsity ``>= c``; raises :class:`BudgetError` below ``N``."""
    if not 0.0 <= target_sparsity < 1.0:
        raise BudgetError(f"target sparsity must be in [0, 1), got {target_sparsity}")
    # the epsilon guards against 0.2 * N * d landing a hair below an exact integer
    budget = math.floor((1.0 - target_sparsity) * n_entities * max_dim + 1e-9)
    if budget < n_entities:
        raise BudgetError(
            f"target sparsity {target_sparsity:.4f} leaves {budget} values for {n_entities} "
            f"entities, fewer than one each; the highest reachable is "
            f"{1 - 1 / max_dim:.4f} (d_max = {max_dim})"
        )
    return budget


def _sizes_at(weights: np.ndarray, alpha: float, max_dim: int) -> np.ndarray:
    return np.clip(np.floor(alpha * weights), 1, max_dim).astype(np.int64)


def fit_to_budget(weights: np.ndarray, max_dim: int, target_sparsity: float) -> np.ndarray:
    """Integer sizes ``clip(floor(α w_n), 1, d_max)`` with the largest ``α`` meeting ``c``.

    Args:
        weights: ``(N,)`` non-negative allocation weights (a policy's sizes, popularity, ...).
        max_dim: ``d_max``.
        target_sparsity: ``c``.

    Returns:
        int64 ``(N,)`` sizes in ``[1, d_max]`` with ``sparsity(sizes) >= c``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError("weights must be a non-empty 1-d array")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    budget = budget_values(weights.size, max_dim, target_sparsity)
    if weights.max() <= 0:
        weights = np.ones_like(weights)
    low, high = 0.0, (max_dim + 1) / weights[weights > 0].min()
    if _sizes_at(weights, high, max_dim).sum() <= budget:
        return _sizes_at(weights, high, max_dim)
    for _ in range(100):
        middle = (low + high) / 2
        if _sizes_at(weights, middle, max_dim).sum() <= budget:
            low = middle
        else:
            high = middle
    sizes = _sizes_at(weights, low, max_dim)
    assert sizes.sum() <= budget
    return sizes
