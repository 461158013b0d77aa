"""Bi-level training of the base model with a sketching policy (DiPS Algorithm 1), and evaluation.

Training, per mini-batch of users streamed together (:mod:`~leanrec.search.sketch.streaming`),
at every time step ``t``:

1. adapt the user parameters on the sketch: ``θ*_t`` by ``inner_steps`` gradient steps from
   ``Θ(u)`` (Eq. 7), keeping the graph (the meta-gradient to ``Θ``);
2. the outer loss ``ℓ_{t+1}`` of the next event under ``θ*_t`` (Eq. 1) is back-propagated to
   ``Θ`` and to the sketch weights ``z`` — giving ``v = dℓ/dz`` for every event in the sketch and
   every event removed in the last ``Q`` decisions (their ``z`` is 0, their ``v`` is not);
3. learned policies only: ``v`` goes to the policy's learning rule
   (:class:`~leanrec.search.sketch.policy.QueuePolicyGradient`, Eq. 9-10), which re-scores the
   last ``Q`` decisions with the current ``Φ``; ``Q = 1`` is DiPS@1;
4. every ``steps_per_update`` steps Adam updates ``Θ`` (and the learning rule updates ``Φ``;
   Algorithm 1 updates at every step: ``steps_per_update = 1``);
5. the event joins the pending events; every ``τ`` steps the policy cuts the intermediate sketch
   back to ``K``.

Static baselines train ``Θ`` the same way with their fixed policy: what a method trains besides
``Θ`` comes from its method object (:data:`~leanrec.search.sketch.baselines.METHODS`). Model
selection (the epoch kept) uses the validation users; test users are only streamed by
:func:`evaluate_sketch`, inside the experiment's final evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.streams import UserStreams
from leanrec.search.sketch.baselines import (
    METHODS,
    SketchMethod,
    make_decider,
    model_state_features,
)
from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.model import SketchNCF, masked_mean
from leanrec.search.sketch.policy import QueuePolicyGradient, SketchScorer
from leanrec.search.sketch.streaming import DecisionInputs, SketchDecider, SketchState, StreamBatch
from leanrec.train.checkpoint import save_atomic, start_run
from leanrec.train.step import TrainingError


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
    and ``mrr@20``. ``events``: the events scored; ``max_sketch_length``: the most events any
    user's sketch held when one of their events was predicted (the budget is ``K``).
    """

    values: dict[str, float]
    events: int
    max_sketch_length: int

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
    longest = 0
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
                longest = max(longest, int((z.sum(dim=1) * scored).max()))
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
        return SketchMetrics({"rmse": math.sqrt(squared / count)}, count, longest)
    values = {"recall@20": hits / count, "mrr@20": reciprocal / count}
    return SketchMetrics(values, count, longest)


def _decide(
    state: SketchState,
    step: int,
    decider: SketchDecider,
    model: SketchNCF,
    theta: torch.Tensor,
    pool: torch.Tensor | None,
    generator: torch.Generator,
    stochastic: bool,
    learner: QueuePolicyGradient | None,
) -> None:
    """Cut the intermediate sketch of step ``step`` back to ``K`` with ``decider`` (attaching
    the model-state features a state-reading policy needs); a ``learner`` remembers the
    decision for the Eq. 10 gradient."""
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
    if learner is not None:
        learner.remember(candidates)
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


def new_base_model(train: UserStreams, config: SketchConfig) -> SketchNCF:
    """The NCF base model ``Θ`` of ``train``'s items, item biases started from its events."""
    global_mean = float(train.ratings.mean()) if train.ratings is not None else 0.0
    model = SketchNCF(
        train.n_items,
        config.embedding_dim,
        config.hidden_dim,
        train.explicit,
        global_mean,
        config.rating_scale,
    )
    if config.item_bias_shrinkage is not None:
        model.init_item_biases(
            torch.from_numpy(train.items),
            None if train.ratings is None else torch.from_numpy(train.ratings),
            config.item_bias_shrinkage,
        )
    return model


def train_sketch(
    train: UserStreams,
    valid: UserStreams,
    method: str | SketchMethod,
    config: SketchConfig,
    checkpoint_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> SketchTrainResult:
    """Train the base model ``Θ`` (and, for a learned method, the policy ``Φ``) on ``train``
    users; keep the epoch with the best validation metric. Resumes from ``checkpoint_path``
    when it exists (written after every epoch).

    Args:
        method: a method of :data:`~leanrec.search.sketch.baselines.METHODS` or its name.
    """
    if isinstance(method, str):
        method = METHODS[method]
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    saved = start_run(config.num_threads, config.seed, path, resume=True)
    run = _TrainingState.start(train, method, config)
    decider = method.decider(run.scorer, config.update_period == 1)
    metric, sign = ("rmse", -1.0) if train.explicit else ("recall@20", 1.0)
    progress: dict[str, Any] = {
        "epoch": 0,
        "history": [],
        "best": {"epoch": -1, "score": -math.inf, "valid": {}, "state": None},
    }
    if saved is not None:
        progress = run.restore(saved)
    history: list[dict[str, float]] = progress["history"]
    best: dict[str, Any] = progress["best"]
    began = time.perf_counter()
    for epoch in range(progress["epoch"], config.epochs):
        run.model.train()
        losses = [
            _train_batch(
                run.model, run.learner, decider, batch, config, run.model_opt, run.generator
            )
            for _, batch in iterate_batches(
                train, config.batch_users, run.rng, config.max_train_length
            )
        ]
        result = evaluate_sketch(run.model, decider, valid, config, seed=config.seed)
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), **result.values}
        history.append(record)
        if log is not None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in result.values.items())
            log(
                f"  {method.name} epoch {epoch + 1}: train loss {record['loss']:.4f}, valid {shown}"
            )
        if sign * result[metric] > best["score"]:
            best = {
                "epoch": epoch + 1,
                "score": sign * result[metric],
                "valid": dict(result.values),
                "state": run.weights(),
            }
        if path is not None:
            save_atomic(
                run.checkpoint({"epoch": epoch + 1, "history": history, "best": best}), path
            )
    if best["state"] is not None:
        run.load_weights(best["state"])
    run.model.eval()
    seconds = time.perf_counter() - began
    return SketchTrainResult(
        method.name, run.model, run.scorer, best["epoch"], best["valid"], history, seconds
    )


@dataclass
class _TrainingState:
    """What a training run updates and draws from, all of it in its per-epoch checkpoint:
    the base model ``Θ`` and its optimiser, the policy ``Φ`` and its learning rule (learned
    methods), the batch order's NumPy generator and torch's generator (pools, decisions)."""

    model: SketchNCF
    model_opt: torch.optim.Optimizer
    scorer: SketchScorer | None
    learner: QueuePolicyGradient | None
    rng: np.random.Generator
    generator: torch.Generator

    @classmethod
    def start(
        cls, train: UserStreams, method: SketchMethod, config: SketchConfig
    ) -> _TrainingState:
        """Fresh parameters (``Θ`` first, then ``Φ``, from torch's global seed) and generators
        seeded with ``config.seed``."""
        model = new_base_model(train, config)
        scorer = method.new_scorer(train.n_items, train.explicit, config)
        learner = None
        if scorer is not None:
            learner = QueuePolicyGradient(scorer, config, method.queue_size(config))
        return cls(
            model,
            torch.optim.Adam(model.parameters(), lr=config.learning_rate),
            scorer,
            learner,
            np.random.default_rng(config.seed),
            torch.Generator().manual_seed(config.seed),
        )

    def weights(self) -> dict[str, Any]:
        """A copy of the weights of ``Θ`` and ``Φ``."""
        return {
            "model": _copy(self.model),
            "scorer": None if self.scorer is None else _copy(self.scorer),
        }

    def load_weights(self, weights: dict[str, Any]) -> None:
        self.model.load_state_dict(weights["model"])
        if self.scorer is not None:
            self.scorer.load_state_dict(weights["scorer"])

    def checkpoint(self, progress: dict[str, Any]) -> dict[str, Any]:
        """Everything to resume from, with the loop's ``progress`` (epoch, history, best)."""
        return {
            "model": self.model.state_dict(),
            "model_opt": self.model_opt.state_dict(),
            "scorer": None if self.scorer is None else self.scorer.state_dict(),
            "policy_opt": None if self.learner is None else self.learner.optimizer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "generator": self.generator.get_state(),
            **progress,
        }

    def restore(self, saved: dict[str, Any]) -> dict[str, Any]:
        """Load a :meth:`checkpoint`; returns its progress."""
        self.model.load_state_dict(saved["model"])
        self.model_opt.load_state_dict(saved["model_opt"])
        if self.scorer is not None and self.learner is not None:
            self.scorer.load_state_dict(saved["scorer"])
            self.learner.optimizer.load_state_dict(saved["policy_opt"])
        self.rng.bit_generator.state = saved["rng"]
        self.generator.set_state(saved["generator"])
        return {name: saved[name] for name in ("epoch", "history", "best")}


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _train_batch(
    model: SketchNCF,
    learner: QueuePolicyGradient | None,
    decider: SketchDecider,
    batch: StreamBatch,
    config: SketchConfig,
    model_opt: torch.optim.Optimizer,
    generator: torch.Generator,
) -> float:
    """One pass of Algorithm 1 over a mini-batch of users; returns the mean outer loss."""
    learned = learner is not None
    memory = learner.removed_memory if learner is not None else 0
    state = SketchState(batch, config.sketch_size, config.update_period, memory)
    total, steps = 0.0, 0
    model_opt.zero_grad()
    if learner is not None:
        learner.start_batch()
    k = config.sketch_size
    for step in range(batch.width):
        active = step < batch.lengths
        pool = None
        if not model.explicit:
            pool = torch.randint(model.n_items, (config.sampled_items,), generator=generator)
        positions, items, ratings, z = state.sketch()
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
            if learner is not None and learner.has_decisions and weights.grad is not None:
                learner.accumulate(
                    positions,
                    _sketch_grads(model, trajectory, weights.grad, items, ratings, config, pool),
                )
            if steps % config.steps_per_update == 0 or step == batch.width - 1:
                if learner is not None:
                    learner.update()
                model_opt.step()
                model_opt.zero_grad()
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
                learner,
            )
    return total / max(1, steps)


def _sketch_grads(
    model: SketchNCF,
    trajectory: list[torch.Tensor],
    sketch_weight_grads: torch.Tensor,
    items: torch.Tensor,
    ratings: torch.Tensor,
    config: SketchConfig,
    pool: torch.Tensor | None,
) -> torch.Tensor:
    """``v = dℓ/dz`` of the inner-loss set after the outer backward pass, ``(B, K + E)``: the
    sketch slots' from autograd (``sketch_weight_grads``, ``(B, K)``), the ``E`` remembered
    removed events' in closed form from the trajectory's adjoints."""
    k = config.sketch_size
    adjoints = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trajectory[1:]]
    removed = model.removed_event_grads(
        trajectory,
        adjoints,
        items[:, k:],
        ratings[:, k:],
        config.inner_learning_rate,
        k,
        pool,
    )
    return torch.cat([sketch_weight_grads, removed], dim=1)
