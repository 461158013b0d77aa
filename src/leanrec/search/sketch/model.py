"""The base recommender of DiPS: NCF with a global user initialisation adapted on the sketch.

Test users are never seen in training, so there is no per-user table: every user starts from the
same global parameters ``Θ(u)`` and is adapted on the items of their sketch by a few gradient
steps (DiPS Eq. 7, MAML-style; the fixed number of steps is the implicit regulariser ``R``).
The item side ``Θ(p)`` (item embeddings, biases, MLP) is shared and never adapted.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.autograd.forward_ad as forward_ad
from torch import nn
from torch.nn import functional as F


class SketchNCF(nn.Module):
    """NCF scorer ``g(x; θ)`` of a user vector ``θ`` and an item ``x``.

    Explicit feedback: ``r̂ = μ + b_x + θ_b + <θ_v, e_x> + MLP([θ_v, e_x])`` with
    ``θ = (θ_v, θ_b)`` of size ``dim + 1``; loss: squared error.
    Implicit feedback: logits ``<θ_v, e_x> + b_x + θ_b·0`` over the items; loss: categorical
    cross-entropy of the observed item against all items (or a sampled pool in training).

    Args:
        n_items: ``M``.
        dim: size of ``θ_v`` and of item embeddings.
        hidden: MLP width (explicit only).
        explicit: explicit (ratings) or implicit (next item) feedback.
        global_mean: ``μ``, the mean training rating (explicit).
        rating_scale: predictions are clamped to this range at evaluation.
    """

    def __init__(
        self,
        n_items: int,
        dim: int = 32,
        hidden: int = 32,
        explicit: bool = True,
        global_mean: float = 3.5,
        rating_scale: tuple[float, float] = (1.0, 5.0),
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.dim = dim
        self.explicit = explicit
        self.rating_scale = rating_scale
        self.user_init = nn.Parameter(torch.zeros(dim + 1))
        """``Θ(u)``: the global user parameters every user starts from, shape ``(dim + 1,)``."""
        self.item_embedding = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        nn.init.zeros_(self.item_bias.weight)
        nn.init.normal_(self.user_init, std=0.1)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        self.mlp: nn.Module | None = None
        if explicit:
            self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    @torch.no_grad()
    def init_item_biases(
        self, items: torch.Tensor, ratings: torch.Tensor | None, shrinkage: float = 5.0
    ) -> None:
        """Start ``b_x`` from the training events instead of 0.

        Explicit: the shrunk mean offset ``Σ (r - μ) / (n_x + shrinkage)`` of each item's
        training ratings. Implicit: ``log(n_x + 1)``, the popularity prior of the next-item
        softmax. ``items`` ``(E,)`` (and ``ratings`` ``(E,)``) are all training events.
        """
        counts = torch.bincount(items, minlength=self.n_items).to(torch.float32)
        if self.explicit:
            if ratings is None:
                raise ValueError("explicit feedback needs ratings to initialise item biases")
            offsets = torch.bincount(
                items,
                weights=(ratings.to(torch.float64) - float(self.get_buffer("global_mean"))),
                minlength=self.n_items,
            ).to(torch.float32)
            bias = offsets / (counts + shrinkage)
        else:
            bias = torch.log1p(counts)
        self.item_bias.weight.copy_(bias.unsqueeze(1))

    def initial_users(self, batch: int) -> torch.Tensor:
        """``Θ(u)`` repeated for a batch, shape ``(B, dim + 1)``."""
        return self.user_init.unsqueeze(0).expand(batch, -1)

    # ------------------------------------------------------------------ explicit
    def predict(self, theta: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings, ``theta`` ``(B, dim + 1)``, ``items`` ``(B, C)`` -> ``(B, C)``."""
        vec, bias = theta[:, : self.dim], theta[:, self.dim]
        emb = self.item_embedding(items)  # (B, C, dim)
        score = (
            self.global_mean
            + self.item_bias(items).squeeze(-1)
            + bias.unsqueeze(1)
            + (emb * vec.unsqueeze(1)).sum(-1)
        )
        if self.mlp is not None:
            pair = torch.cat([vec.unsqueeze(1).expand_as(emb), emb], dim=-1)
            score = score + self.mlp(pair).squeeze(-1)
        return score

    # ------------------------------------------------------------------ implicit
    def logits(self, theta: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item logits: for ``items`` ``(P,)`` shared by the batch, or all items; ``(B, P)``."""
        vec = theta[:, : self.dim]
        if items is None:
            return vec @ self.item_embedding.weight.T + self.item_bias.weight.T
        return vec @ self.item_embedding(items).T + self.item_bias(items).T

    def item_losses(
        self,
        theta: torch.Tensor,
        items: torch.Tensor,
        ratings: torch.Tensor,
        pool: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Loss ``ℓ(r_x, g(x; θ))`` of every (user, item), shape ``(B, C)``.

        Explicit: squared error against ``ratings`` ``(B, C)``. Implicit: cross-entropy of each
        item against ``pool`` (a shared item sample, shape ``(P,)``) plus itself, or against all
        items when ``pool`` is None.
        """
        if self.explicit:
            return (self.predict(theta, items) - ratings) ** 2
        vec = theta[:, : self.dim]
        target = (self.item_embedding(items) * vec.unsqueeze(1)).sum(-1) + self.item_bias(
            items
        ).squeeze(-1)
        others = self.logits(theta, pool)  # (B, P)
        normaliser = torch.logsumexp(others, dim=1, keepdim=True)  # (B, 1)
        if pool is not None:
            normaliser = torch.logaddexp(normaliser, target)
        return normaliser - target

    # ------------------------------------------------------------------ adaptation
    def adapt(
        self,
        items: torch.Tensor,
        ratings: torch.Tensor,
        weights: torch.Tensor,
        steps: int,
        learning_rate: float,
        create_graph: bool,
        pool: torch.Tensor | None = None,
        sketch_size: int | None = None,
        trajectory: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``θ*``: ``steps`` gradient steps from ``Θ(u)`` on the weighted sketch loss (Eq. 7-8).

        The inner loss is ``Σ_k z_k ℓ(r_k, g(x_k; θ)) / K``: ``weights`` ``(B, S)`` holds ``z``
        (1 for a sketch item, 0 for a padded or removed one); ``K`` is ``sketch_size`` (default
        ``S``). With ``create_graph`` the result is differentiable in ``Θ`` and in ``weights``
        (the meta-gradient and ``dℓ/dz`` of DiPS); without, only the values are computed.
        ``trajectory``, when given, receives ``θ_0 .. θ_steps`` (see :meth:`removed_event_grads`).

        Returns:
            ``θ*``, shape ``(B, dim + 1)``.
        """
        theta = self.initial_users(items.shape[0])
        scale = 1.0 / max(1, sketch_size or items.shape[1])
        with torch.enable_grad():
            if not create_graph:
                theta = theta.detach().requires_grad_(True)
            if trajectory is not None:
                trajectory.append(theta)
            for _ in range(steps):
                inner = (weights * self.item_losses(theta, items, ratings, pool)).sum() * scale
                (grad,) = torch.autograd.grad(inner, theta, create_graph=create_graph)
                theta = theta - learning_rate * grad
                if not create_graph:
                    theta = theta.detach().requires_grad_(True)
                if trajectory is not None:
                    trajectory.append(theta)
        return theta if create_graph else theta.detach()

    def removed_event_grads(
        self,
        trajectory: list[torch.Tensor],
        adjoints: list[torch.Tensor],
        items: torch.Tensor,
        ratings: torch.Tensor,
        learning_rate: float,
        sketch_size: int,
        pool: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``v_e = dℓ/dz_e`` at ``z_e = 0`` for events outside the sketch, ``(B, E)``.

        An event with weight 0 does not move the inner trajectory, so its effect on the outer
        loss is first order in each step: ``v_e = -(α/K) Σ_s λ_{s+1} · ∇_θ ℓ_e(θ_s)`` with
        ``λ_s = dℓ/dθ_s`` (the adjoints of the trajectory, from the outer backward pass). This
        gives the same ``v`` as putting the events into the inner loss with weight 0, without
        second-order terms through them.

        Args:
            trajectory: ``θ_0 .. θ_S`` from :meth:`adapt`, each ``(B, dim + 1)``.
            adjoints: ``λ_1 .. λ_S``, each ``(B, dim + 1)``.
            items / ratings: the events, ``(B, E)``.
        """
        # explicit ratings have no normaliser to share: the reverse pass is as fast or faster
        mode: Literal["forward", "reverse"] = "reverse" if self.explicit else "forward"
        total = self.directional_loss_grads(trajectory, adjoints, items, ratings, pool, mode)
        return -learning_rate / sketch_size * total

    def directional_loss_grads(
        self,
        trajectory: list[torch.Tensor],
        adjoints: list[torch.Tensor],
        items: torch.Tensor,
        ratings: torch.Tensor,
        pool: torch.Tensor | None = None,
        mode: Literal["forward", "reverse"] = "forward",
    ) -> torch.Tensor:
        """``Σ_s λ_{s+1} · ∇_θ ℓ_e(θ_s)`` for every event, ``(B, E)``.

        ``mode="forward"``: one forward pass with dual numbers (tangent ``λ``) per inner step,
        so the implicit normaliser over the pool is computed once per user. ``"reverse"``: one
        reverse pass over ``(B·E)`` copies of ``θ`` per inner step, which recomputes it once
        per (user, event): 75x slower for 200 removed events of 64 Beauty users
        (``benchmarks/perf/sketch_removed_grads.py``); with explicit ratings there is no
        normaliser to share, and it is as fast as forward mode or faster (the dual-number
        overhead).
        """
        batch, width = items.shape
        total = torch.zeros(batch, width)
        if width == 0:
            return total
        for theta, adjoint in zip(trajectory[:-1], adjoints, strict=True):
            if mode == "forward":
                with torch.no_grad(), forward_ad.dual_level():
                    # Θ(u) is an expanded view: the dual needs memory of its own
                    point = forward_ad.make_dual(theta.detach().clone(), adjoint.detach().clone())
                    losses = self.item_losses(point, items, ratings, pool)
                    total += forward_ad.unpack_dual(losses).tangent
                continue
            grads = self.event_loss_grads(theta, items, ratings, pool)
            total += (grads * adjoint.unsqueeze(1)).sum(-1)
        return total

    def event_loss_grads(
        self,
        theta: torch.Tensor,
        items: torch.Tensor,
        ratings: torch.Tensor,
        pool: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``∇_θ ℓ_e(θ)`` of every event, ``theta`` ``(B, dim + 1)``, ``items`` / ``ratings``
        ``(B, E)`` -> ``(B, E, dim + 1)``: one reverse pass over ``B·E`` copies of ``θ``
        (no gradient to ``θ`` itself)."""
        batch, width = items.shape
        with torch.enable_grad():
            copies = (
                theta.detach()
                .unsqueeze(1)
                .expand(batch, width, -1)
                .reshape(batch * width, -1)
                .clone()
                .requires_grad_(True)
            )
            losses = self.item_losses(copies, items.reshape(-1, 1), ratings.reshape(-1, 1), pool)
            (grads,) = torch.autograd.grad(losses.sum(), copies)
        return grads.reshape(batch, width, -1)

    def clamp(self, predictions: torch.Tensor) -> torch.Tensor:
        low, high = self.rating_scale
        return predictions.clamp(low, high)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 when nothing is masked in."""
    count = mask.sum()
    return (values * mask).sum() / count.clamp_min(1)


def topk_projection(scores: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """Relaxed top-K keep vector ``μ(f)`` of DiPS Eq. 5 (Amos et al. 2019), shape ``(B, C)``.

    The solution of ``argmin_{0<u<1} -fᵀu - H(u)  s.t.  1ᵀu = K`` is ``u = σ(f + ν)`` with ``ν``
    such that the kept mass is ``K``. ``ν`` is found by bisection without gradient; the gradient
    is the implicit-function one, ``du_i/df_j = s_i (δ_ij - s_j / Σ s)`` with ``s = u(1 - u)``,
    obtained by adding the first-order term of ``ν`` around its solved value.
    Rows with at most ``k`` valid entries keep every valid entry (``u = 1``).
    """
    neg = torch.finfo(scores.dtype).min
    masked = torch.where(valid, scores, torch.full_like(scores, neg))
    n_valid = valid.sum(dim=1, keepdim=True)
    with torch.no_grad():
        finite = torch.where(valid, scores, torch.zeros_like(scores))
        low = -finite.max(dim=1, keepdim=True).values - 40.0
        high = -finite.min(dim=1, keepdim=True).values + 40.0
        for _ in range(50):
            mid = (low + high) / 2
            mass = (torch.sigmoid(masked + mid) * valid).sum(dim=1, keepdim=True)
            too_much = mass > k
            high = torch.where(too_much, mid, high)
            low = torch.where(too_much, low, mid)
        nu0 = (low + high) / 2
        slope = torch.sigmoid(masked + nu0) * (1 - torch.sigmoid(masked + nu0)) * valid
    drift = scores - scores.detach()
    nu = nu0 - (slope * drift).sum(dim=1, keepdim=True) / slope.sum(dim=1, keepdim=True).clamp_min(
        1e-12
    )
    relaxed = torch.sigmoid(torch.where(valid, scores + nu, torch.full_like(scores, neg))) * valid
    keep_all = (n_valid <= k).expand_as(valid)
    return torch.where(keep_all, valid.to(scores.dtype), relaxed)


def removal_distribution(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Online setting (Eq. 4): softmax over the candidates of which one to remove, ``(B, C)``.

    ``scores`` are keep scores, so the removal logits are ``-scores``; invalid entries get 0.
    """
    logits = torch.where(valid, -scores, torch.full_like(scores, float("-inf")))
    any_valid = valid.any(dim=1, keepdim=True)
    safe = torch.where(any_valid, logits, torch.zeros_like(logits))
    return F.softmax(safe, dim=1) * valid
