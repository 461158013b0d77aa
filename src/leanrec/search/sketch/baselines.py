"""Every sketching method of the experiment: DiPS and the static policies it is compared with
(DiPS Sec. "Methods and Baselines"), as method objects in :data:`METHODS`.

* :class:`ReservoirDecider` (Random; Vitter 1985): the ``t``-th event of a user enters the sketch
  with probability ``K / t``, replacing a uniformly chosen slot.
* :class:`HardestDecider` (Aljundi et al. 2019): keep the events the current model predicts
  worst (highest loss under the user parameters adapted on the sketch).
* :class:`InfluenceDecider` (first-order coreset score, Borsos et al. 2020): keep the events whose
  loss gradient in ``θ`` aligns best with the gradient of the loss on the newest ``τ`` events.
* :class:`RecentDecider` (sliding window; not in the paper): keep the ``K`` newest events, the
  window a SASRec-style model reads.
* ``dips`` and ``dips1`` (:class:`LearnedMethod`): the learned policy of
  :mod:`~leanrec.search.sketch.policy`, trained with the base model through a queue of ``Q``
  decisions (DiPS) or the latest one only (DiPS@1).

A method object (:class:`SketchMethod`) says what a method trains besides the base model (a
scorer ``Φ`` and its queue size ``Q``, or nothing) and which decider applies it, so the trainer
and the experiment loop over :data:`METHODS` instead of branching on names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from leanrec.runner.registry import Registry
from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.policy import LearnedDecider, SketchScorer
from leanrec.search.sketch.streaming import DecisionInputs, SketchDecider, top_k_mask


class ReservoirDecider:
    """Uniform reservoir sampling over each user's whole stream."""

    name = "random"

    def keep(self, inputs: DecisionInputs) -> torch.Tensor:
        cands = inputs.candidates
        k = inputs.sketch_size
        batch = cands.positions.shape[0]
        # slot j of the reservoir holds candidate column holder[:, j] (-1: empty slot)
        holder = torch.where(
            cands.valid[:, :k], torch.arange(k).expand(batch, k), torch.full((batch, k), -1)
        )
        for column in range(k, cands.positions.shape[1]):
            present = cands.valid[:, column]
            seen = (cands.positions[:, column] + 1).to(torch.float64)  # t, 1-based
            empty = holder < 0
            has_empty = empty.any(dim=1)
            first_empty = torch.argmax(empty.to(torch.int8), dim=1)
            accept = torch.rand(batch, generator=inputs.generator, dtype=torch.float64) < (k / seen)
            victim = torch.randint(k, (batch,), generator=inputs.generator)
            slot = torch.where(has_empty, first_empty, victim)
            write = present & (has_empty | accept)
            rows = torch.nonzero(write).squeeze(1)
            holder[rows, slot[rows]] = column
        keep = torch.zeros_like(cands.valid)
        rows, slots = torch.nonzero(holder >= 0, as_tuple=True)
        keep[rows, holder[rows, slots]] = True
        return keep & cands.valid


class RecentDecider:
    """Keep the ``K`` newest candidates (smallest age): a sliding window over the stream."""

    name = "recent"

    def keep(self, inputs: DecisionInputs) -> torch.Tensor:
        cands = inputs.candidates
        return top_k_mask(-cands.age.to(torch.float32), cands.valid, inputs.sketch_size)


class HardestDecider:
    """Keep the ``K`` candidates with the largest loss under the current user parameters."""

    name = "hardest"

    def keep(self, inputs: DecisionInputs) -> torch.Tensor:
        losses = candidate_losses(inputs)
        return top_k_mask(losses, inputs.candidates.valid, inputs.sketch_size)


def candidate_losses(inputs: DecisionInputs) -> torch.Tensor:
    """``ℓ_j(θ)`` of every candidate under the user parameters ``θ``, ``(B, C)`` (no gradient)."""
    cands = inputs.candidates
    if inputs.model is None or inputs.theta is None:
        raise ValueError("this policy needs the base model's view of the user")
    with torch.no_grad():
        return inputs.model.item_losses(inputs.theta, cands.items, cands.ratings, inputs.pool)


def influence_scores(inputs: DecisionInputs) -> torch.Tensor:
    """``⟨∇_θ ℓ_j, Σ_new ∇_θ ℓ_n⟩`` of every candidate ``j`` against the newest (pending)
    events, ``(B, C)``: the first-order influence of Borsos et al. (Hessian replaced by the
    identity); 0 on invalid entries."""
    cands = inputs.candidates
    if inputs.model is None or inputs.theta is None:
        raise ValueError("this policy needs the base model's view of the user")
    grads = inputs.model.event_loss_grads(inputs.theta, cands.items, cands.ratings, inputs.pool)
    grads = grads * cands.valid.unsqueeze(-1)
    recent = (grads * cands.is_new.unsqueeze(-1)).sum(dim=1, keepdim=True)  # (B, 1, D)
    return (grads * recent).sum(-1)


STATE_FEATURES = ("loss", "influence")
"""Model-state features a learned policy may read per candidate (see
:func:`model_state_features`)."""


def model_state_features(inputs: DecisionInputs) -> torch.Tensor:
    """What the static policies know, as inputs for a learned one, ``(B, C, 2)``.

    Column 0: ``log(1 + ℓ_j(θ))``, the loss Hardest ranks by. Column 1: the influence score of
    :func:`influence_scores` as ``sign(s) log(1 + |s|)``. Both are computed under the user
    parameters adapted on the sketch, without gradient, and are 0 on invalid entries.
    """
    valid = inputs.candidates.valid.to(torch.float32)
    losses = torch.log1p(candidate_losses(inputs).clamp_min(0.0))
    influence = influence_scores(inputs).detach()
    influence = torch.sign(influence) * torch.log1p(influence.abs())
    return torch.stack([losses * valid, influence * valid], dim=-1)


class InfluenceDecider:
    """Keep the ``K`` candidates whose gradient ``∇_θ ℓ_j`` has the largest inner product with
    the gradient of the loss on the newest events (the pending ones): a first-order influence
    score (the Hessian of Eq. 11 replaced by the identity)."""

    name = "influence"

    def keep(self, inputs: DecisionInputs) -> torch.Tensor:
        scores = influence_scores(inputs)
        return top_k_mask(scores, inputs.candidates.valid, inputs.sketch_size)


# ---------------------------------------------------------------------------------- methods
class SketchMethod(Protocol):
    """A sketching method of the experiment: what it trains besides the base model ``Θ`` and
    the decider that applies it."""

    @property
    def name(self) -> str: ...

    def new_scorer(self, n_items: int, explicit: bool, config: SketchConfig) -> SketchScorer | None:
        """A fresh policy ``f(·; Φ)`` to train jointly with ``Θ``; None for a static policy."""
        ...

    def queue_size(self, config: SketchConfig) -> int:
        """``Q``: decisions the policy gradient runs through (Eq. 10; 0: nothing learned)."""
        ...

    def decider(self, scorer: SketchScorer | None, online: bool) -> SketchDecider:
        """The policy ``π`` (a learned method needs its trained ``scorer``)."""
        ...


@dataclass(frozen=True)
class StaticMethod:
    """A fixed policy: only ``Θ`` is trained, with ``make_decider()`` in the loop."""

    name: str
    make_decider: Callable[[], SketchDecider]

    def new_scorer(self, n_items: int, explicit: bool, config: SketchConfig) -> None:
        return None

    def queue_size(self, config: SketchConfig) -> int:
        return 0

    def decider(self, scorer: SketchScorer | None, online: bool) -> SketchDecider:
        return self.make_decider()


@dataclass(frozen=True)
class LearnedMethod:
    """DiPS: a :class:`~leanrec.search.sketch.policy.SketchScorer` trained jointly with ``Θ``.

    Attributes:
        name: ``"dips"`` or ``"dips1"``.
        fixed_queue_size: ``Q`` of this method (1: DiPS@1); None reads ``config.queue_size``.
    """

    name: str
    fixed_queue_size: int | None = None

    def new_scorer(self, n_items: int, explicit: bool, config: SketchConfig) -> SketchScorer:
        return SketchScorer(
            n_items,
            16,
            config.hidden_dim,
            explicit,
            len(STATE_FEATURES) if config.model_state_features else 0,
            config.recency_prior,
        )

    def queue_size(self, config: SketchConfig) -> int:
        return self.fixed_queue_size or config.queue_size

    def decider(self, scorer: SketchScorer | None, online: bool) -> SketchDecider:
        if scorer is None:
            raise ValueError(f"method {self.name!r} needs a trained SketchScorer")
        return LearnedDecider(scorer, online, name=self.name)


METHODS: Registry[SketchMethod] = Registry("sketching method")
"""Every method the sketching experiment runs, in the default table order
(:data:`~leanrec.search.sketch.config.DEFAULT_METHODS`)."""
METHODS.add(StaticMethod("random", ReservoirDecider))
METHODS.add(StaticMethod("hardest", HardestDecider))
METHODS.add(StaticMethod("influence", InfluenceDecider))
METHODS.add(StaticMethod("recent", RecentDecider))
METHODS.add(LearnedMethod("dips"))
METHODS.add(LearnedMethod("dips1", fixed_queue_size=1))


def make_decider(method: str, scorer: SketchScorer | None, online: bool) -> SketchDecider:
    """The sketching policy called ``method`` (a learned one needs its scorer)."""
    return METHODS[method].decider(scorer, online)
