"""Sketches of many users streamed together, and the decision interface every policy implements.

A batch of ``B`` users moves through time together: at step ``t`` each active user (``t`` below
their stream length) has their event ``t`` predicted from their sketch, then the event joins the
user's *pending* events; every ``τ`` steps the intermediate sketch (``K`` sketch slots plus ``τ``
pending events, DiPS' ``Ŝ``) is cut back to ``K`` by a :class:`SketchDecider`. Sketch entries are
*event positions* in the user's stream, so an item rated twice is two entries and every entry has
a well-defined age. Nothing here loops over users in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from leanrec.search.sketch.model import SketchNCF


@dataclass
class StreamBatch:
    """Right-padded streams of ``B`` users: ``items`` ``(B, L)``, ``ratings`` ``(B, L)``,
    ``lengths`` ``(B,)``."""

    items: torch.Tensor
    ratings: torch.Tensor
    lengths: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.items.shape[0])

    @property
    def width(self) -> int:
        return int(self.items.shape[1])

    def gather(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Items and ratings at ``positions`` ``(B, S)`` (-1 entries read position 0)."""
        safe = positions.clamp_min(0)
        return self.items.gather(1, safe), self.ratings.gather(1, safe)


@dataclass
class Candidates:
    """An intermediate sketch ``Ŝ`` of every user in a batch, shape ``(B, C)``, ``C = K + τ``.

    Attributes:
        positions: event positions (-1: empty).
        items / ratings: what the events are.
        age: ``t - position`` at decision time (0 for the newest event).
        is_new: the event is one of the ``τ`` pending ones (not yet in the sketch).
        valid: the entry holds an event.
        step: ``t``, the time step of the decision (same for the whole batch).
        features: model-state features of each candidate, ``(B, C, F)``, attached at decision
            time for a policy that reads them
            (:func:`~leanrec.search.sketch.baselines.model_state_features`); None otherwise.
    """

    positions: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor
    age: torch.Tensor
    is_new: torch.Tensor
    valid: torch.Tensor
    step: int
    features: torch.Tensor | None = None

    @property
    def n_valid(self) -> torch.Tensor:
        return self.valid.sum(dim=1)


@dataclass
class DecisionInputs:
    """What a decider may look at: the candidates, the sketch size, and the model's view.

    ``theta`` is the user parameters adapted on the sketch *before* the pending events joined
    it, shape ``(B, dim + 1)``; ``pool`` the implicit-feedback item sample (or None). A streaming
    operator has no model (``model`` and ``theta`` None): only model-free policies run there.
    """

    candidates: Candidates
    sketch_size: int
    model: SketchNCF | None
    theta: torch.Tensor | None
    pool: torch.Tensor | None
    generator: torch.Generator
    stochastic: bool


class SketchDecider(Protocol):
    """A sketching policy ``π``: which ``K`` of the ``K + τ`` candidates to keep."""

    name: str

    def keep(self, inputs: DecisionInputs) -> torch.Tensor:
        """Boolean keep mask ``(B, C)``, exactly ``min(K, n_valid)`` valid entries per row."""
        ...


def top_k_mask(scores: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` highest ``scores`` among the valid entries of each row, ``(B, C)`` bool."""
    neg = torch.finfo(scores.dtype).min
    masked = torch.where(valid, scores, torch.full_like(scores, neg))
    k = min(k, scores.shape[1])
    order = masked.topk(k, dim=1).indices
    keep = torch.zeros_like(valid)
    keep.scatter_(1, order, True)
    return keep & valid


class SketchState:
    """The sketches of a batch of users: ``K`` slots, ``τ`` pending events, and (for the DiPS
    gradient) a ring of the ``E`` most recently removed events.

    Args:
        batch: the streams.
        sketch_size: ``K``.
        update_period: ``τ``.
        removed_memory: ``E``, removed events remembered (0: none).
    """

    def __init__(
        self, batch: StreamBatch, sketch_size: int, update_period: int, removed_memory: int = 0
    ) -> None:
        size = batch.size
        self.batch = batch
        self.sketch_size = sketch_size
        self.update_period = update_period
        self.slots = torch.full((size, sketch_size), -1, dtype=torch.long)
        self.pending = torch.full((size, update_period), -1, dtype=torch.long)
        self.n_pending = 0
        self.removed = torch.full((size, removed_memory), -1, dtype=torch.long)

    def sketch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The inner-loss set: sketch slots then remembered removed events.

        Returns:
            ``positions`` ``(B, K + E)``, ``items``, ``ratings``, and ``z`` (1.0 for a sketch
            event, 0.0 for a removed or empty one), all ``(B, K + E)``.
        """
        positions = torch.cat([self.slots, self.removed], dim=1)
        items, ratings = self.batch.gather(positions)
        in_sketch = torch.zeros_like(positions, dtype=torch.bool)
        in_sketch[:, : self.sketch_size] = self.slots >= 0
        return positions, items, ratings, in_sketch.to(self.batch.ratings.dtype)

    def observe(self, step: int, active: torch.Tensor) -> bool:
        """Event ``step`` joins the pending events; True when a decision is due."""
        self.pending[:, self.n_pending] = torch.where(
            active, torch.full_like(active, step, dtype=torch.long), -1
        )
        self.n_pending += 1
        return self.n_pending == self.update_period

    def candidates(self, step: int) -> Candidates:
        positions = torch.cat([self.slots, self.pending], dim=1)
        items, ratings = self.batch.gather(positions)
        valid = positions >= 0
        is_new = torch.zeros_like(valid)
        is_new[:, self.sketch_size :] = valid[:, self.sketch_size :]
        age = torch.where(valid, step - positions, torch.zeros_like(positions))
        return Candidates(positions, items, ratings, age, is_new, valid, step)

    def needs_decision(self, candidates: Candidates) -> bool:
        return bool((candidates.n_valid > self.sketch_size).any())

    def apply(self, candidates: Candidates, keep: torch.Tensor) -> None:
        """Cut the intermediate sketch to the kept candidates; remember the removed ones."""
        keep = keep & candidates.valid
        over = keep.sum(dim=1) > self.sketch_size
        if bool(over.any()):
            raise RuntimeError("a sketching decision kept more than K events")
        self.slots = _compact(candidates.positions, keep, self.sketch_size)
        if self.removed.shape[1]:
            dropped = _compact(candidates.positions, candidates.valid & ~keep, self.update_period)
            self.removed = torch.cat([dropped, self.removed], dim=1)[:, : self.removed.shape[1]]
        self.pending.fill_(-1)
        self.n_pending = 0

    def keep_everything(self, candidates: Candidates) -> None:
        """No user has more than ``K`` candidates: they all stay."""
        self.apply(candidates, candidates.valid)


def _compact(positions: torch.Tensor, keep: torch.Tensor, width: int) -> torch.Tensor:
    """The kept positions of each row moved to the front, ``(B, width)``, -1 padded."""
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]
    chosen = positions.gather(1, order)
    kept = keep.gather(1, order)
    out = torch.where(kept, chosen, torch.full_like(chosen, -1))
    if out.shape[1] < width:
        pad = torch.full((out.shape[0], width - out.shape[1]), -1, dtype=out.dtype)
        out = torch.cat([out, pad], dim=1)
    return out
