"""Static sketching policies DiPS is compared with (DiPS Sec. "Methods and Baselines").

* :class:`ReservoirDecider` (Random; Vitter 1985): the ``t``-th event of a user enters the sketch
  with probability ``K / t``, replacing a uniformly chosen slot.
* :class:`HardestDecider` (Aljundi et al. 2019): keep the events the current model predicts
  worst (highest loss under the user parameters adapted on the sketch).
* :class:`InfluenceDecider` (first-order coreset score, Borsos et al. 2020): keep the events whose
  loss gradient in ``θ`` aligns best with the gradient of the loss on the newest ``τ`` events.
* :class:`RecentDecider` (sliding window; not in the paper): keep the ``K`` newest events, the
  window a SASRec-style model reads.
"""

from __future__ import annotations

import torch

from leanrec.search.sketch.streaming import DecisionInputs, top_k_mask


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
    batch, width = cands.positions.shape
    with torch.enable_grad():
        theta = (
            inputs.theta.detach()
            .unsqueeze(1)
            .expand(batch, width, -1)
            .reshape(batch * width, -1)
            .clone()
            .requires_grad_(True)
        )
        losses = inputs.model.item_losses(
            theta,
            cands.items.reshape(-1, 1),
            cands.ratings.reshape(-1, 1),
            inputs.pool,
        )
        (grads,) = torch.autograd.grad(losses.sum(), theta)
    grads = grads.reshape(batch, width, -1) * cands.valid.unsqueeze(-1)
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
