"""Bi-level training of the base model with a sketching policy (DiPS Algorithm 1), and evaluation.

Training, per mini-batch of users streamed together (:mod:`~leanrec.search.sketch.streaming`),
at every time step ``t``:

1. adapt the user parameters on the sketch: ``θ*_t`` by ``inner_steps`` gradient steps from
   ``Θ(u)`` (Eq. 7), keeping the graph (the meta-gradient to ``Θ``);
2. the outer loss ``ℓ_{t+1}`` of the next event under ``θ*_t`` (Eq. 1) is back-propagated to
   ``Θ`` and to the sketch weights ``z`` — giving ``v = dℓ/dz`` for every event in the sketch and
   every event removed in the last ``Q`` decisions (their ``z`` is 0, their ``v`` is not);
3. learned policies only: the last ``Q`` decisions, stored as intermediate sketches, are
   re-scored with the current ``Φ`` and the surrogate ``Σ_j vᵀ z_j(Ẑ_j; Φ)`` of Eq. 10 is
   back-propagated to ``Φ`` (straight-through: ``z_j`` is the relaxed keep weight);
   ``Q = 1`` is DiPS@1;
4. every ``steps_per_update`` steps Adam updates ``Θ`` and ``Φ`` (Algorithm 1 updates at every
   step: ``steps_per_update = 1``);
5. the event joins the pending events; every ``τ`` steps the policy cuts the intermediate sketch
   back to ``K``.

Static baselines train ``Θ`` the same way with their fixed policy. Model selection (the epoch
kept) uses the validation users; test users are only streamed by :func:`evaluate_sketch`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.streams import UserStreams
from leanrec.search.sketch.baselines import (
    STATE_FEATURES,
    HardestDecider,
    InfluenceDecider,
    RecentDecider,
    ReservoirDecider,
    model_state_features,
)
from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.model import SketchNCF, masked_mean
from leanrec.search.sketch.policy import LearnedDecider, SketchScorer, keep_weights
from leanrec.search.sketch.streaming import (
    Candidates,
    DecisionInputs,
    SketchDecider,
    SketchState,
    StreamBatch,
)
from leanrec.train.bpr import TrainingError
from leanrec.train.checkpoint import load_checkpoint, save_atomic

LEARNED = ("dips", "dips1")
STATIC = ("random", "hardest", "influence", "recent")
METHODS = STATIC + LEARNED


def make_decider(method: str, scorer: SketchScorer | None, online: bool) -> SketchDecider:
    """The sketching policy called ``method`` (a learned one needs its scorer)."""
    if method == "random":
        return ReservoirDecider()
    if method == "hardest":
        return HardestDecider()
    if method == "influence":
        return InfluenceDecider()
    if method == "recent":
        return RecentDecider()
    if method in LEARNED:
        if scorer is None:
            raise ValueError(f"method {method!r} needs a trained SketchScorer")
        return LearnedDecider(scorer, online, name=method)
    raise ValueError(f"unknown sketching method {method!r}; known: {', '.join(METHODS)}")


def iterate_batches(
    streams: UserStreams,
    batch_users: int,
    rng: np.random.Generator | None,
    max_length: int | None = None,
) -> Iterator[tuple[np.ndarray, StreamBatch]]:
    """Batches of users of similar length (little padding), in random order when ``rng``."""
    lengths = streams.lengths
    order = np.argsort(lengths, kind="stable")
    if rng is not None:
        # shuffle within equal lengths, then cut into chunks and shuffle the chunks
        order = np.lexsort((rng.random(len(order)), lengths))
    chunks = [order[i : i + batch_users] for i in range(0, len(order), batch_users)]
    if rng is not None:
        rng.shuffle(chunks)  # type: ignore[arg-type]
    for chunk in chunks:
        items, ratings, kept = streams.padded(chunk, max_length)
        yield (
            chunk,
            StreamBatch(torch.from_numpy(items), torch.from_numpy(ratings), torch.from_numpy(kept)),
        )


# ---------------------------------------------------------------------------------- evaluation
@dataclass
class SketchMetrics:
    """Next-event quality of a policy on a set of users, over every event with ``t >= 1``.

    Explicit: ``rmse``. Implicit: ``recall@20`` (the next item ranks in the top 20 of all items)
    and ``mrr@20``.
    """

    values: dict[str, float]
    events: int

    def __getitem__(self, key: str) -> float:
        return self.values[key]


def evaluate_sketch(
    model: SketchNCF,
    decider: SketchDecider,
    streams: UserStreams,
    config: SketchConfig,
    seed: int = 0,
    stochastic: bool = False,
) -> SketchMetrics:
    """Stream every user of ``streams`` through ``decider``'s sketches and score each next event
    (greedy decisions unless ``stochastic``; no parameter changes).

    Implicit feedback: the user is adapted with the inner softmax over a sampled pool of
    ``sampled_items`` items (drawn per step from ``seed``), exactly as in training; the next
    item is then ranked among *all* items, for the users still streaming. (With a full inner
    softmax, evaluation cost several times the training on Beauty.)"""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    squared = 0.0
    hits = 0.0
    reciprocal = 0.0
    count = 0
    for _, batch in iterate_batches(streams, config.eval_batch_users, None):
        state = SketchState(batch, config.sketch_size, config.update_period)
        for step in range(batch.width):
            active = step < batch.lengths
            pool = None
            if not model.explicit:  # the inner softmax is sampled, as in training
                pool = torch.randint(model.n_items, (config.sampled_items,), generator=generator)
            _, items, ratings, z = state.sketch()
            theta = model.adapt(
                items, ratings, z, config.inner_steps, config.inner_learning_rate, False, pool
            )
            if step >= 1:
                scored = active
                target = batch.items[:, step]
                with torch.no_grad():
                    if model.explicit:
                        predicted = model.clamp(model.predict(theta, target.unsqueeze(1)))[:, 0]
                        error = (predicted - batch.ratings[:, step]) ** 2
                        squared += float((error * scored).sum())
                    else:  # rank among all items, for the users still streaming only
                        rows = torch.nonzero(scored).squeeze(1)
                        logits = model.logits(theta[rows])
                        target_logit = logits.gather(1, target[rows].unsqueeze(1))
                        # int32 accumulation: 5x faster than the default int64 on CPU
                        rank = (logits > target_logit).sum(dim=1, dtype=torch.int32) + 1
                        top = rank <= 20
                        hits += float(top.sum())
                        reciprocal += float((top / rank.to(torch.float64)).sum())
                count += int(scored.sum())
            if state.observe(step, active):
                _decide(state, step, decider, model, theta, pool, generator, stochastic, None)
    if count == 0:
        raise ValueError(f"{streams.name}: no user has two events to evaluate on")
    if model.explicit:
        return SketchMetrics({"rmse": math.sqrt(squared / count)}, count)
    return SketchMetrics({"recall@20": hits / count, "mrr@20": reciprocal / count}, count)


def _decide(
    state: SketchState,
    step: int,
    decider: SketchDecider,
    model: SketchNCF,
    theta: torch.Tensor,
    pool: torch.Tensor | None,
    generator: torch.Generator,
    stochastic: bool,
    queue: deque[Candidates] | None,
) -> None:
    candidates = state.candidates(step)
    if not state.needs_decision(candidates):
        state.keep_everything(candidates)
        return
    inputs = DecisionInputs(
        candidates, state.sketch_size, model, theta.detach(), pool, generator, stochastic
    )
    if getattr(decider, "needs_model_state", False):
        candidates.features = model_state_features(inputs)
    keep = decider.keep(inputs)
    if queue is not None:
        queue.append(candidates)
    state.apply(candidates, keep)


# ---------------------------------------------------------------------------------- training
@dataclass
class SketchTrainResult:
    """A trained base model (and policy), the epoch kept, and per-epoch records."""

    method: str
    model: SketchNCF
    scorer: SketchScorer | None
    best_epoch: int
    best_valid: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def decider(self, online: bool) -> SketchDecider:
        return make_decider(self.method, self.scorer, online)


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


def _policy_lr(config: SketchConfig, queue_size: int) -> float:
    if queue_size > 1 and config.queue_policy_learning_rate is not None:
        return config.queue_policy_learning_rate
    return config.policy_learning_rate


def train_sketch(
    train: UserStreams,
    valid: UserStreams,
    method: str,
    config: SketchConfig,
    checkpoint_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> SketchTrainResult:
    """Train the base model ``Θ`` (and, for ``dips``/``dips1``, the policy ``Φ``) on ``train``
    users; keep the epoch with the best validation metric. Resumes from ``checkpoint_path``
    when it exists (written after every epoch)."""
    if method not in METHODS:
        raise ValueError(f"unknown sketching method {method!r}; known: {', '.join(METHODS)}")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    online = config.update_period == 1
    learned = method in LEARNED
    queue_size = 1 if method == "dips1" else config.queue_size
    explicit = train.explicit
    torch.manual_seed(config.seed)
    global_mean = float(train.ratings.mean()) if train.ratings is not None else 0.0
    model = SketchNCF(
        train.n_items,
        config.embedding_dim,
        config.hidden_dim,
        explicit,
        global_mean,
        config.rating_scale,
    )
    if config.item_bias_shrinkage is not None:
        model.init_item_biases(
            torch.from_numpy(train.items),
            None if train.ratings is None else torch.from_numpy(train.ratings),
            config.item_bias_shrinkage,
        )
    scorer = (
        SketchScorer(
            train.n_items,
            16,
            config.hidden_dim,
            explicit,
            len(STATE_FEATURES) if config.model_state_features else 0,
            config.recency_prior,
        )
        if learned
        else None
    )
    decider = make_decider(method, scorer, online)
    model_opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    policy_opt = (
        torch.optim.Adam(scorer.parameters(), lr=_policy_lr(config, queue_size)) if scorer else None
    )
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    metric, sign = ("rmse", -1.0) if explicit else ("recall@20", 1.0)
    start_epoch = 0
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": -1, "score": -math.inf, "valid": {}, "state": None}
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and path.exists():
        saved = load_checkpoint(path)
        model.load_state_dict(saved["model"])
        model_opt.load_state_dict(saved["model_opt"])
        if scorer is not None and policy_opt is not None:
            scorer.load_state_dict(saved["scorer"])
            policy_opt.load_state_dict(saved["policy_opt"])
        rng.bit_generator.state = saved["rng"]
        generator.set_state(saved["generator"])
        start_epoch, history, best = saved["epoch"], saved["history"], saved["best"]
    began = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        model.train()
        losses = []
        for _, batch in iterate_batches(train, config.batch_users, rng, config.max_train_length):
            losses.append(
                _train_batch(
                    model,
                    scorer,
                    decider,
                    batch,
                    config,
                    queue_size,
                    model_opt,
                    policy_opt,
                    generator,
                )
            )
        result = evaluate_sketch(model, decider, valid, config, seed=config.seed)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), **result.values}
        history.append(record)
        if log is not None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in result.values.items())
            log(f"  {method} epoch {epoch + 1}: train loss {record['loss']:.4f}, valid {shown}")
        score = sign * result[metric]
        if score > best["score"]:
            best = {
                "epoch": epoch + 1,
                "score": score,
                "valid": dict(result.values),
                "state": {
                    "model": {k: v.clone() for k, v in model.state_dict().items()},
                    "scorer": None
                    if scorer is None
                    else {k: v.clone() for k, v in scorer.state_dict().items()},
                },
            }
        if path is not None:
            save_atomic(
                {
                    "model": model.state_dict(),
                    "model_opt": model_opt.state_dict(),
                    "scorer": None if scorer is None else scorer.state_dict(),
                    "policy_opt": None if policy_opt is None else policy_opt.state_dict(),
                    "rng": rng.bit_generator.state,
                    "generator": generator.get_state(),
                    "epoch": epoch + 1,
                    "history": history,
                    "best": best,
                },
                path,
            )
    if best["state"] is not None:
        model.load_state_dict(best["state"]["model"])
        if scorer is not None:
            scorer.load_state_dict(best["state"]["scorer"])
    model.eval()
    return SketchTrainResult(
        method,
        model,
        scorer,
        best["epoch"],
        best["valid"],
        history,
        time.perf_counter() - began,
    )


def _train_batch(
    model: SketchNCF,
    scorer: SketchScorer | None,
    decider: SketchDecider,
    batch: StreamBatch,
    config: SketchConfig,
    queue_size: int,
    model_opt: torch.optim.Optimizer,
    policy_opt: torch.optim.Optimizer | None,
    generator: torch.Generator,
) -> float:
    """One pass of Algorithm 1 over a mini-batch of users; returns the mean outer loss."""
    learned = scorer is not None
    online = config.update_period == 1
    memory = config.update_period * queue_size if learned else 0
    state = SketchState(batch, config.sketch_size, config.update_period, memory)
    queue: deque[Candidates] | None = deque(maxlen=queue_size) if learned else None
    # decisions whose v was read since the last update, with their accumulated v: Φ is fixed
    # between updates, so one scorer pass per update gives the exact sum of the per-step terms
    touched: dict[int, tuple[Candidates, torch.Tensor]] = {}
    total, steps = 0.0, 0
    model_opt.zero_grad()
    if policy_opt is not None:
        policy_opt.zero_grad()
    for step in range(batch.width):
        active = step < batch.lengths
        pool = None
        if not model.explicit:
            pool = torch.randint(model.n_items, (config.sampled_items,), generator=generator)
        positions, items, ratings, z = state.sketch()
        k = config.sketch_size
        # the inner loss runs over the K sketch slots; removed events get v in closed form
        weights = z[:, :k].clone().requires_grad_(learned)
        trajectory: list[torch.Tensor] = []
        theta = model.adapt(
            items[:, :k],
            ratings[:, :k],
            weights,
            config.inner_steps,
            config.inner_learning_rate,
            True,
            pool,
            k,
            trajectory if learned else None,
        )
        if learned:
            for point in trajectory[1:]:
                point.retain_grad()
        if step >= 1:
            target = batch.items[:, step : step + 1]
            outer = model.item_losses(theta, target, batch.ratings[:, step : step + 1], pool)
            loss = masked_mean(outer[:, 0], active)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"sketch training: the outer loss became {float(loss)} at step {step}; "
                    "lower learning_rate or inner_learning_rate"
                )
            loss.backward()
            total += float(loss.detach())
            steps += 1
            if learned and queue and weights.grad is not None:
                adjoints = [
                    p.grad if p.grad is not None else torch.zeros_like(p) for p in trajectory[1:]
                ]
                removed_v = model.removed_event_grads(
                    trajectory,
                    adjoints,
                    items[:, k:],
                    ratings[:, k:],
                    config.inner_learning_rate,
                    k,
                    pool,
                )
                sketch_grad = torch.cat([weights.grad, removed_v], dim=1)
                entries = list(queue)
                per_candidate = candidate_grads(entries, positions, sketch_grad)
                for index, entry in enumerate(entries):
                    key = id(entry)
                    if key in touched:
                        touched[key] = (entry, touched[key][1] + per_candidate[:, index])
                    else:
                        touched[key] = (entry, per_candidate[:, index])
            if steps % config.steps_per_update == 0 or step == batch.width - 1:
                if touched and scorer is not None:
                    decisions = [entry for entry, _ in touched.values()]
                    grads = torch.stack([grad for _, grad in touched.values()], dim=1)
                    accumulated_surrogate(
                        scorer,
                        decisions,
                        grads,
                        config.sketch_size,
                        online,
                        config.standardise_scores,
                    ).backward()
                    touched.clear()
                model_opt.step()
                model_opt.zero_grad()
                if policy_opt is not None:
                    policy_opt.step()
                    policy_opt.zero_grad()
        if state.observe(step, active):
            _decide(
                state,
                step,
                decider,
                model,
                theta,
                pool,
                generator,
                config.stochastic_training,
                queue,
            )
    return total / max(1, steps)
