"""The learned sketching policy of DiPS and its learning rule (Ghosh, Mitra & Lan, AAAI 2022).

The decision-maker. ``f(Ŝ ⊙ y; Φ)`` (:class:`SketchScorer`) scores the intermediate sketch. By
default the scorer sees the intermediate sketch's items and ratings (plus each event's age and
whether it is new), never the base model: so the same policy runs as a plain streaming operator
and transfers to another base model. With ``state_features`` it also reads the model's state
per candidate (:func:`~leanrec.search.sketch.baselines.model_state_features`: the candidate's
loss and its first-order influence on the newest events, under the user parameters adapted on
the sketch); such a policy runs only next to its base model. It outputs a *keep score* per
candidate, which :class:`LearnedDecider` turns into a decision:

* online (``τ = 1``, Eq. 4): the removed event is drawn from ``softmax(-scores)`` (sampled while
  training, the most likely one at inference); the relaxed keep weight is ``1 - p_remove``;
* batch (``τ > 1``, Eq. 5-6): the ``K`` best scores are kept (Gumbel-perturbed while training);
  the relaxed keep weight is the top-K projection ``μ(f)`` (:func:`topk_projection`).

The learning rule (:class:`QueuePolicyGradient`), steps 3-4 of Algorithm 1. The base model's
trainer (:mod:`~leanrec.search.sketch.trainer`) back-propagates the outer loss ``ℓ_{t+1}`` to the
sketch weights and hands over ``v = dℓ/dz`` for every event in the sketch and every event removed
in the last ``Q`` decisions. The gradient to ``Φ`` is then

* Eq. 9 (straight-through): ``dℓ/dΦ ≈ vᵀ dz/dΦ`` with ``z`` the relaxed keep weight
  (:func:`keep_weights`) instead of the hard decision;
* Eq. 10 (queue): the sketch after ``t`` decisions depends on all of them; the last ``Q`` are
  stored as intermediate sketches ``Ẑ_j`` and re-scored with the current ``Φ``, so the gradient
  is that of the surrogate ``Σ_j vᵀ z_j(Ẑ_j; Φ)`` (:func:`queue_surrogate`); ``Q = 1`` is DiPS@1.
  Between two updates ``Φ`` is fixed, so the ``v`` read at every step are summed per decision
  and the surrogate runs once per update (:func:`accumulated_surrogate`).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch import nn

from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.model import removal_distribution, topk_projection
from leanrec.search.sketch.streaming import Candidates, DecisionInputs, top_k_mask


class SketchScorer(nn.Module):
    """``f(·; Φ)``: keep scores of the candidates of intermediate sketches.

    Every candidate is encoded from its item (a learned embedding), its rating (explicit: one-hot
    of the rounded rating and the centred value), ``log(1 + age)``, a new-event flag and, with
    ``state_features > 0``, its model-state features; a DeepSets context (mean of the encodings
    over the candidate set) lets the score of one event depend on what else is in the sketch.
    The model-state features also reach the score through a linear skip ``w_s · s_j``, which
    starts at the influence score (``w_s = (0, 1)``) while the head's last layer starts at 0:
    the policy's first decisions are exactly the Influence baseline's, and it learns from there.
    A learned recency skip ``-β · log(1 + age)`` (``β``: ``recency_prior`` at initialisation)
    lets the policy start between that score and a sliding window (``β = 0``: no such skip;
    a large ``β`` starts it as the sliding window).

    Args:
        n_items: ``M``.
        dim: item embedding size of the policy.
        hidden: encoder width.
        explicit: ratings are part of the input.
        state_features: model-state features per candidate (0: a model-free policy; 2: the
            columns of :func:`~leanrec.search.sketch.baselines.model_state_features`).
    """

    def __init__(
        self,
        n_items: int,
        dim: int = 16,
        hidden: int = 32,
        explicit: bool = True,
        state_features: int = 0,
        recency_prior: float = 0.0,
    ):
        super().__init__()
        if not np.isfinite(recency_prior) or recency_prior < 0:
            raise ValueError(f"recency_prior β must be finite and >= 0, got {recency_prior}")
        self.recency_skip: nn.Parameter | None = None
        if recency_prior > 0:
            self.recency_skip = nn.Parameter(torch.tensor(-float(recency_prior)))
        self.explicit = explicit
        self.state_features = state_features
        self.item_embedding = nn.Embedding(n_items, dim)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        in_dim = dim + 2 + (6 if explicit else 0) + state_features
        self.encoder = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.state_skip: nn.Linear | None = None
        if state_features:
            self.state_skip = nn.Linear(state_features, 1, bias=False)
            with torch.no_grad():
                self.state_skip.weight.zero_()
                self.state_skip.weight[0, min(1, state_features - 1)] = 1.0
                last = self.head[2]
                assert isinstance(last, nn.Linear)
                last.weight.zero_()  # the learned part starts at 0: decisions are Influence's
                last.bias.zero_()

    def forward(
        self,
        items: torch.Tensor,
        ratings: torch.Tensor,
        age: torch.Tensor,
        is_new: torch.Tensor,
        valid: torch.Tensor,
        features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Keep scores, every input ``(..., C)`` -> ``(..., C)`` (invalid entries: 0);
        ``features`` ``(..., C, state_features)`` when the policy reads the model's state."""
        log_age = torch.log1p(age.to(torch.float32))
        parts = [
            self.item_embedding(items),
            log_age.unsqueeze(-1),
            is_new.to(torch.float32).unsqueeze(-1),
        ]
        if self.explicit:
            rounded = ratings.round().clamp(1, 5).long() - 1
            parts.append(nn.functional.one_hot(rounded, 5).to(torch.float32))
            parts.append(((ratings - 3.0) / 2.0).unsqueeze(-1))
        if self.state_features:
            if features is None or features.shape[-1] != self.state_features:
                raise ValueError(
                    f"this policy reads {self.state_features} model-state features per "
                    "candidate; the candidates carry "
                    f"{'none' if features is None else features.shape[-1]}"
                )
            parts.append(features.to(torch.float32))
        encoded = self.encoder(torch.cat(parts, dim=-1))
        mask = valid.unsqueeze(-1).to(encoded.dtype)
        context = (encoded * mask).sum(-2, keepdim=True) / mask.sum(-2, keepdim=True).clamp_min(1)
        context = context.expand_as(encoded)
        scores = self.head(torch.cat([encoded, context, encoded * context], dim=-1)).squeeze(-1)
        if self.state_skip is not None and features is not None:
            scores = scores + self.state_skip(features.to(torch.float32)).squeeze(-1)
        if self.recency_skip is not None:
            scores = scores + self.recency_skip * log_age
        return scores * valid

    def numpy_scorer(self) -> NumpyScorer:
        """The same function in NumPy, for the streaming operator (no autograd, low overhead)."""
        if self.state_features:
            raise ValueError(
                "this policy reads the base model's state (state_features="
                f"{self.state_features}): it runs next to its model (evaluate_sketch), not as a "
                "model-free streaming operator"
            )
        return NumpyScorer(self)

    def score(self, candidates: Candidates) -> torch.Tensor:
        return self(
            candidates.items,
            candidates.ratings,
            candidates.age,
            candidates.is_new,
            candidates.valid,
            candidates.features,
        )


class NumpyScorer:
    """:class:`SketchScorer` evaluated with NumPy; the item part of the first layer is folded
    into a per-item table (``M x hidden``), so a candidate costs a row lookup, not a matmul."""

    def __init__(self, scorer: SketchScorer) -> None:
        with torch.no_grad():
            first, second = scorer.encoder[0], scorer.encoder[2]
            head_first, head_second = scorer.head[0], scorer.head[2]
            dim = scorer.item_embedding.embedding_dim
            w1 = first.weight.numpy().astype(np.float32)  # type: ignore[operator]
            self.item_table = scorer.item_embedding.weight.numpy() @ w1[:, :dim].T
            self.item_table += first.bias.numpy()  # type: ignore[operator]
            self.age_weight = w1[:, dim]
            self.new_weight = w1[:, dim + 1]
            self.explicit = scorer.explicit
            self.rating_table = w1[:, dim + 2 : dim + 7].T.copy() if scorer.explicit else None
            self.rating_weight = w1[:, dim + 7] if scorer.explicit else None
            self.w2 = second.weight.numpy().T.copy()  # type: ignore[operator]
            self.b2 = second.bias.numpy().copy()  # type: ignore[operator]
            wh1 = head_first.weight.numpy().T.copy()  # type: ignore[operator]
            hidden = wh1.shape[0] // 3
            self.wh1_own, self.wh1_context, self.wh1_product = (
                wh1[:hidden],
                wh1[hidden : 2 * hidden],
                wh1[2 * hidden :],
            )
            self.bh1 = head_first.bias.numpy().copy()  # type: ignore[operator]
            self.wh2 = head_second.weight.numpy()[0].copy()  # type: ignore[operator]
            self.bh2 = float(head_second.bias.numpy()[0])  # type: ignore[operator]
            skip = scorer.recency_skip
            self.recency = 0.0 if skip is None else float(skip)

    def __call__(
        self,
        items: np.ndarray,
        ratings: np.ndarray,
        age: np.ndarray,
        is_new: np.ndarray,
        valid: np.ndarray,
    ) -> np.ndarray:
        """Keep scores ``(B, C)`` of candidates ``(B, C)`` (invalid entries: 0)."""
        pre = self.item_table[items]
        log_age = np.log1p(age.astype(np.float32))
        pre += log_age[..., None] * self.age_weight
        pre += is_new[..., None].astype(np.float32) * self.new_weight
        if self.rating_table is not None and self.rating_weight is not None:
            rounded = np.clip(np.rint(ratings), 1, 5).astype(np.int64) - 1
            pre += self.rating_table[rounded]
            pre += ((ratings - 3.0) / 2.0)[..., None] * self.rating_weight
        hidden = np.maximum(pre, 0.0)
        hidden = np.maximum(hidden @ self.w2 + self.b2, 0.0)
        mask = valid[..., None].astype(np.float32)
        context = (hidden * mask).sum(-2, keepdims=True) / np.maximum(
            mask.sum(-2, keepdims=True), 1.0
        )
        # head([h, c, h * c]) with the concatenation split into three products
        joint = (
            hidden @ self.wh1_own
            + (context @ self.wh1_context + self.bh1)
            + (hidden * context) @ self.wh1_product
        )
        out = np.maximum(joint, 0.0) @ self.wh2 + self.bh2
        if self.recency:
            out += self.recency * log_age
        return out * valid


def keep_weights(
    scores: torch.Tensor, valid: torch.Tensor, sketch_size: int, online: bool
) -> torch.Tensor:
    """Relaxed keep weights ``(…, C)`` of the candidates: ``1 - softmax(-f)`` online (Eq. 4),
    the top-K projection ``μ(f)`` in batch (Eq. 5). Rows with at most ``K`` valid candidates
    keep all of them with weight 1 (no decision is made there)."""
    shape = scores.shape
    flat_scores = scores.reshape(-1, shape[-1])
    flat_valid = valid.reshape(-1, shape[-1])
    if online:
        weights = flat_valid.to(scores.dtype) - removal_distribution(flat_scores, flat_valid)
        decided = flat_valid.sum(dim=1, keepdim=True) > sketch_size
        weights = torch.where(decided, weights, flat_valid.to(scores.dtype))
    else:
        weights = topk_projection(flat_scores, flat_valid, sketch_size)
    return weights.reshape(shape)


class LearnedDecider:
    """Applies a :class:`SketchScorer` as a sketching policy ``π(·; Φ)``."""

    def __init__(self, scorer: SketchScorer, online: bool, name: str = "dips") -> None:
        self.scorer = scorer
        self.online = online
        self.name = name

    @property
    def needs_model_state(self) -> bool:
        """Candidates must carry :func:`~leanrec.search.sketch.baselines.model_state_features`."""
        return bool(self.scorer.state_features)

    def keep(self, inputs: DecisionInputs) -> torch.Tensor:
        cands = inputs.candidates
        with torch.no_grad():
            scores = self.scorer.score(cands)
        return self.keep_from_scores(scores, cands.valid, inputs)

    def keep_from_scores(
        self, scores: torch.Tensor, valid: torch.Tensor, inputs: DecisionInputs
    ) -> torch.Tensor:
        k = inputs.sketch_size
        decided = valid.sum(dim=1) > k
        if self.online:
            removal = removal_distribution(scores, valid)
            if inputs.stochastic:
                safe = torch.where(decided.unsqueeze(1), removal, valid.to(removal.dtype))
                drop = torch.multinomial(safe + 1e-12 * valid, 1, generator=inputs.generator)
            else:
                drop = removal.argmax(dim=1, keepdim=True)
            dropped = torch.zeros_like(valid)
            dropped.scatter_(1, drop, True)
            return torch.where(decided.unsqueeze(1), valid & ~dropped, valid)
        if inputs.stochastic:
            uniform = torch.rand(scores.shape, generator=inputs.generator).clamp(1e-9, 1 - 1e-9)
            scores = scores - torch.log(-torch.log(uniform))
        return top_k_mask(scores, valid, k)


# ------------------------------------------------------------------------------ learning rule
def candidate_grads(
    queue: list[Candidates], positions: torch.Tensor, sketch_grad: torch.Tensor
) -> torch.Tensor:
    """``v`` read at the candidates of each stored decision, ``(B, Q, C)`` (0 where the
    candidate is not in the inner-loss set)."""
    stacked = torch.stack([c.positions for c in queue], dim=1)  # (B, Q, C)
    valid = torch.stack([c.valid for c in queue], dim=1)
    match = (stacked.unsqueeze(-1) == positions[:, None, None, :]) & (positions >= 0)[
        :, None, None, :
    ]
    match = match & valid.unsqueeze(-1)
    return (match.to(sketch_grad.dtype) * sketch_grad[:, None, None, :]).sum(-1).detach()


def queue_surrogate(
    scorer: SketchScorer,
    queue: list[Candidates],
    positions: torch.Tensor,
    sketch_grad: torch.Tensor,
    sketch_size: int,
    online: bool,
) -> torch.Tensor:
    """``Σ_j vᵀ z_j(Ẑ_j; Φ)`` of DiPS Eq. 10 for the stored decisions ``queue``.

    Args:
        scorer: ``f(·; Φ)`` with its current parameters.
        queue: the last ``Q`` intermediate sketches, each ``(B, C)``.
        positions: event positions of the inner-loss set, ``(B, S)`` (-1: empty).
        sketch_grad: ``v = dℓ/dz`` for those events, ``(B, S)``.

    Returns:
        A scalar whose gradient in ``Φ`` is the approximate ``dℓ/dΦ``.
    """
    per_candidate = candidate_grads(queue, positions, sketch_grad)
    return accumulated_surrogate(scorer, queue, per_candidate, sketch_size, online)


def accumulated_surrogate(
    scorer: SketchScorer,
    decisions: list[Candidates],
    grads: torch.Tensor,
    sketch_size: int,
    online: bool,
    standardise: bool = False,
) -> torch.Tensor:
    """``Σ_j Σ_c g_{j,c} z_j(Ẑ_j; Φ)_c`` for fixed ``grads`` ``(B, Q, C)``: one scorer pass over
    the stored intermediate sketches.

    With ``standardise`` each decision's scores are centred and scaled to unit spread over its
    valid candidates before the relaxation (:func:`standardised_scores`): the surrogate then
    cannot be lowered by sharpening the scores, only by reordering them."""
    stacked = {
        name: torch.stack([getattr(c, name) for c in decisions], dim=1)
        for name in ("items", "ratings", "age", "is_new", "valid")
    }
    features = None
    if scorer.state_features:
        # the features stored with each decision: the model's state when it was taken
        features = torch.stack([_stored_features(c) for c in decisions], dim=1)
    scores = scorer(
        stacked["items"],
        stacked["ratings"],
        stacked["age"],
        stacked["is_new"],
        stacked["valid"],
        features,
    )
    if standardise:
        scores = standardised_scores(scores, stacked["valid"])
    relaxed = keep_weights(scores, stacked["valid"], sketch_size, online)  # (B, Q, C)
    return (grads * relaxed).sum()


def standardised_scores(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(f - mean) / std`` over the valid candidates of each decision, ``(..., C)`` -> same
    (0 on invalid entries). The greedy decisions are unchanged (a positive affine map keeps the
    order); the relaxed keep weights no longer depend on the scores' scale. The gradient flows
    through the mean and the spread, so a pure change of scale or shift gets none."""
    mask = valid.to(scores.dtype)
    count = mask.sum(-1, keepdim=True).clamp_min(1.0)
    mean = (scores * mask).sum(-1, keepdim=True) / count
    centred = (scores - mean) * mask
    spread = ((centred**2).sum(-1, keepdim=True) / count).add(1e-8).sqrt()
    return centred / spread


def _stored_features(candidates: Candidates) -> torch.Tensor:
    if candidates.features is None:
        raise RuntimeError("a stored decision of a state-reading policy has no features")
    return candidates.features


class QueuePolicyGradient:
    """Learns ``Φ`` by the relaxed policy gradient through the last ``Q`` decisions (Eq. 9-10).

    Per mini-batch of users (:meth:`start_batch`): every decision is remembered
    (:meth:`remember`, a queue of ``Q`` intermediate sketches, each ``(B, C)``); after each outer
    backward pass the trainer hands over ``v = dℓ/dz`` of the inner-loss set
    (:meth:`accumulate`), which is read at the candidates of every queued decision and summed per
    decision; every ``steps_per_update`` steps :meth:`update` back-propagates the surrogate of
    those decisions to ``Φ`` and takes one Adam step.

    Args:
        scorer: ``f(·; Φ)``, trained in place.
        config: ``K`` (``sketch_size``), ``τ`` (``update_period``; 1 is online), the step sizes
            and ``standardise_scores``.
        queue_size: ``Q`` (1: DiPS@1).
    """

    def __init__(self, scorer: SketchScorer, config: SketchConfig, queue_size: int) -> None:
        self.scorer = scorer
        self.queue_size = queue_size
        self.sketch_size = config.sketch_size
        self.online = config.update_period == 1
        self.standardise = config.standardise_scores
        self.removed_memory = config.update_period * queue_size
        """Removed events whose ``v`` the trainer must compute: ``τ`` per queued decision."""
        self.optimizer = torch.optim.Adam(
            scorer.parameters(), lr=policy_learning_rate(config, queue_size)
        )
        self.queue: deque[Candidates] = deque(maxlen=queue_size)
        # decisions whose v was read since the last update, with their accumulated v: Φ is fixed
        # between updates, so one scorer pass per update gives the exact sum of per-step terms
        self._touched: dict[int, tuple[Candidates, torch.Tensor]] = {}

    def start_batch(self) -> None:
        """A new mini-batch of users: no decision remembered, no gradient pending."""
        self.queue = deque(maxlen=self.queue_size)
        self._touched = {}
        self.optimizer.zero_grad()

    def remember(self, candidates: Candidates) -> None:
        """Queue a decision's intermediate sketch ``Ẑ_j`` (the oldest of ``Q`` drops out)."""
        self.queue.append(candidates)

    @property
    def has_decisions(self) -> bool:
        """Whether any decision is queued (before the first one there is nothing to learn)."""
        return bool(self.queue)

    def accumulate(self, positions: torch.Tensor, sketch_grad: torch.Tensor) -> None:
        """Add ``v`` at the candidates of every queued decision.

        Args:
            positions: event positions of the inner-loss set, ``(B, S)`` (-1: empty).
            sketch_grad: ``v = dℓ/dz`` of those events, ``(B, S)``.
        """
        entries = list(self.queue)
        per_candidate = candidate_grads(entries, positions, sketch_grad)
        for index, entry in enumerate(entries):
            key = id(entry)
            if key in self._touched:
                self._touched[key] = (entry, self._touched[key][1] + per_candidate[:, index])
            else:
                self._touched[key] = (entry, per_candidate[:, index])

    def surrogate(self) -> torch.Tensor | None:
        """The Eq. 10 surrogate of the decisions read since the last update, under the current
        ``Φ`` (a scalar; None when no ``v`` was read): the sum of the per-step surrogates."""
        if not self._touched:
            return None
        decisions = [entry for entry, _ in self._touched.values()]
        grads = torch.stack([grad for _, grad in self._touched.values()], dim=1)
        return accumulated_surrogate(
            self.scorer, decisions, grads, self.sketch_size, self.online, self.standardise
        )

    def update(self) -> None:
        """Back-propagate :meth:`surrogate` to ``Φ`` and take an Adam step."""
        surrogate = self.surrogate()
        if surrogate is not None:
            surrogate.backward()
            self._touched.clear()
        self.optimizer.step()
        self.optimizer.zero_grad()


def policy_learning_rate(config: SketchConfig, queue_size: int) -> float:
    """Adam step size of ``Φ``: ``queue_policy_learning_rate`` when the gradient runs through a
    queue (``Q > 1``) and it is set, else ``policy_learning_rate``."""
    if queue_size > 1 and config.queue_policy_learning_rate is not None:
        return config.queue_policy_learning_rate
    return config.policy_learning_rate
