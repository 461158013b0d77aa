"""Exploration for continuous actions: noise processes and the random walk of CIESS (Eq. 11-14).

Everything is vectorized over ``n`` independent decision-makers (one per user or item); the
random generator is passed in, never global.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Noise(Protocol):
    """Additive exploration noise ``ε`` of Eq. 11, one value per decision-maker."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    def reset(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _IndependentNoise:
    """Noise drawn afresh on every call: nothing to reset, nothing to checkpoint (subclasses
    implement :meth:`sample`)."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def reset(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class GaussianNoise(_IndependentNoise):
    """``ε ~ N(0, σ)`` independently per call (the CIESS default, σ = 6)."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(0.0, self.sigma, n)


class UniformNoise(_IndependentNoise):
    """``ε ~ U(-w, w)`` with ``w = σ √3`` (same standard deviation ``σ`` as the Gaussian)."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        width = self.sigma * np.sqrt(3.0)
        return rng.uniform(-width, width, n)


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise ``x ← x + θ(0 - x) + σ N(0, 1)``, one process per
    decision-maker, reset at the start of every episode."""

    def __init__(self, sigma: float, theta: float = 0.15) -> None:
        self.sigma = sigma
        self.theta = theta
        self.x: np.ndarray | None = None

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.x is None or len(self.x) != n:
            self.x = np.zeros(n)
        self.x = self.x - self.theta * self.x + self.sigma * rng.standard_normal(n)
        return self.x.copy()

    def reset(self) -> None:
        self.x = None

    def state_dict(self) -> dict[str, Any]:
        return {"x": None if self.x is None else self.x.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.x = None if state.get("x") is None else np.asarray(state["x"], dtype=np.float64)


def make_noise(kind: str, sigma: float) -> Noise:
    """``"gaussian"`` (G), ``"ou"`` (OU) or ``"uniform"`` (U), as in CIESS Table 2."""
    kinds: dict[str, type] = {
        "gaussian": GaussianNoise,
        "g": GaussianNoise,
        "uniform": UniformNoise,
        "u": UniformNoise,
        "ou": OrnsteinUhlenbeckNoise,
    }
    try:
        noise: Noise = kinds[kind.lower()](sigma)
    except KeyError:
        raise ValueError(f"unknown noise {kind!r}; use gaussian, ou or uniform") from None
    return noise


def random_walk(
    start: np.ndarray,
    low: int,
    high: int,
    threshold: int,
    length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Random walks over the integer action graph (CIESS Eq. 12-13), one per decision-maker.

    From action ``d`` the walk moves to a neighbour ``d'`` with ``0 < |d' - d| <= t`` inside
    ``[low, high]``, with probability proportional to ``|d' - d|`` (far neighbours are favoured,
    so the walk explores). The walk is with replacement: it may revisit actions.

    Args:
        start: ``(n,)`` integer starting actions ``\\hat d_n`` (clipped into ``[low, high]``).
        threshold: ``t``, the largest step.
        length: number of steps; the result has ``length + 1`` columns, the start first.

    Returns:
        int64 array ``(n, length + 1)`` of visited actions ``Z`` (Eq. 14 picks among them).
    """
    if high - low < 1 or threshold < 1:
        raise ValueError("random walk needs high > low and threshold >= 1")
    position = np.clip(np.asarray(start, dtype=np.int64), low, high)
    steps = np.concatenate([np.arange(-threshold, 0), np.arange(1, threshold + 1)])
    visited = [position]
    for _ in range(length):
        target = position[:, None] + steps[None, :]
        weight = np.abs(steps)[None, :] * ((target >= low) & (target <= high))
        cumulative = np.cumsum(weight, axis=1, dtype=np.float64)
        draw = rng.random(len(position)) * cumulative[:, -1]
        choice = (cumulative <= draw[:, None]).sum(axis=1)
        position = target[np.arange(len(position)), choice]
        visited.append(position)
    return np.stack(visited, axis=1)
