"""One method over a stream cut into sessions: decide at each session's start, then
test-then-train its chunks; checkpoint after every session.

Sessions (:func:`session_plan`): the warm-up ``[0, W)`` is cut into ``warmup_sessions`` equal
parts, the rest into ``sessions`` equal parts (``EventStream.sessions``) or calendar weeks.
The first warm-up session is only learnt (the model knows nothing yet); every later session is
prequential chunk by chunk (``chunk_size`` events: predict, then learn). Warm-up sessions are
scored for the controller's reward and for choosing ``λ``, never reported.

At the start of a session ``s ≥ 1`` (:func:`run_sessions`):

1. its first chunk is predicted by the model as it stands (this prediction is the one scored);
2. the method sees the :class:`~leanrec.search.adaptive.policy.SessionObservation`, built from
   that prediction and from events already seen, and decides (keep, change, reset);
3. the change is applied, the dense optimiser follows it, forgetting protection starts
   (:class:`Protection`), and the chunk is learnt; the session's other chunks follow;
4. at the session's end the method learns from ``R = AUC_s − λ · p``; the run's state
   (model, optimisers, generators, the decider, the prequential record) is checkpointed, so a
   killed run resumes after its last finished session with the same result.

A method that learns (the controller) has a **reference model** trained beside its own on the
same chunks (``AdaptiveConfig.reference``, a fixed tower of ``reference_widths``: 64-32 for the
``paper`` preset, 200-80 for the ``leanrec`` one): its AUC on the session is the difficulty
term of the controller's baseline, or the capacity measurement of the ``leanrec`` preset. It
is never served, reported or shaped; its cost is counted in the session's seconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from leanrec.data.events import MONDAY, WEEK, Chunk, EventStream
from leanrec.data.vocab_stream import StreamCounters
from leanrec.evaluate.pointwise import auc
from leanrec.evaluate.prequential import (
    Prediction,
    PrequentialRecord,
    StreamChunk,
    event_metrics,
    run_prequential,
)
from leanrec.models.stream import StreamModel
from leanrec.search.adaptive.baselines import AdaptiveMethod, Decision
from leanrec.search.adaptive.config import AdaptiveConfig, AdaptiveExperiment
from leanrec.search.adaptive.policy import SessionObservation, total_variation
from leanrec.search.adaptive.tower import (
    FIELDS,
    build_model,
    hidden_linears,
    model_bytes,
    old_unit_masks,
    reset_tower,
    reshape,
    shaped_parameters,
    tower_of,
    widths_of,
)
from leanrec.train.checkpoint import load_checkpoint, save_atomic
from leanrec.train.stream import StreamTrainer


# ---------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Session:
    """One session of a run: events ``[start, stop)``, chunks ``[first_chunk, stop_chunk)``
    of the run's plan; ``warmup`` sessions are never reported, unscored ones only learnt."""

    index: int
    start: int
    stop: int
    first_chunk: int
    stop_chunk: int
    warmup: bool
    scored: bool


def _equal_parts(start: int, stop: int, n: int) -> list[tuple[int, int]]:
    sizes = np.full(n, (stop - start) // n, dtype=np.int64)
    sizes[: (stop - start) % n] += 1
    bounds = start + np.concatenate([[0], np.cumsum(sizes)])
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def session_plan(
    experiment: AdaptiveExperiment, stream: EventStream, warmup_size: int, evaluated: bool
) -> tuple[list[Session], list[Chunk]]:
    """The sessions of a run and its chunk plan.

    Args:
        stream: the events (the whole stream, or the warm-up alone).
        warmup_size: ``W``, the warm-up's events.
        evaluated: also cut ``[W, n)`` into the evaluated sessions (False: warm-up only).

    Raises:
        ValueError: a warm-up too short for its sessions, or too few events after it.
    """
    if warmup_size < experiment.warmup_sessions:
        raise ValueError(f"a warm-up of {warmup_size} events cannot hold "
                         f"{experiment.warmup_sessions} sessions")  # fmt: skip
    ranges = [(a, b, True) for a, b in _equal_parts(0, warmup_size, experiment.warmup_sessions)]
    if evaluated:
        if experiment.session_by == "week":
            weeks = stream.chunks(by="period", seconds=WEEK, origin=MONDAY, start=warmup_size)
            ranges += [(c.start, c.stop, False) for c in weeks]
        else:
            if len(stream) - warmup_size < experiment.sessions:
                raise ValueError(f"cannot cut {len(stream) - warmup_size} events after the "
                                 f"warm-up into {experiment.sessions} sessions")  # fmt: skip
            parts = _equal_parts(warmup_size, len(stream), experiment.sessions)
            ranges += [(a, b, False) for a, b in parts]
    sessions: list[Session] = []
    plan: list[Chunk] = []
    for index, (start, stop, warmup) in enumerate(ranges):
        scored = index > 0
        first = len(plan)
        for chunk in stream.chunks(size=experiment.chunk_size, start=start, stop=stop):
            plan.append(Chunk(len(plan), chunk.start, chunk.stop, warmup=not scored))
        sessions.append(Session(index, start, stop, first, len(plan), warmup, scored))
    return sessions, plan


# ---------------------------------------------------------------------------------- protection
class Protection:
    """Forgetting protection during one session (``AdaptiveConfig.protection``).

    Old weights are those joining two units that existed before the session's change
    (:func:`_old_weights`). ``freeze``: after a change that added units, the old weights are
    held for ``freeze_steps`` optimiser steps or to the session's end: restored after each step
    of the dense Adam, so neither the gradient nor Adam's momentum moves them, while the new
    units and their connections learn (progressive networks). ``ewc``: a penalty
    ``λ_EWC Σ F_i (θ_i − θ*_i)²`` on the old weights, ``θ*`` the weights at the session's
    start, ``F`` the mean squared mini-batch gradient on the previous session's last
    ``fisher_events`` events, added to the gradient by tensor hooks (the trainer is not
    changed).
    """

    def __init__(self, config: AdaptiveConfig) -> None:
        self.config = config
        self._handles: list[Any] = []
        self.steps = 0

    def start(
        self,
        model: StreamModel,
        trainer: StreamTrainer,
        masks: list[torch.Tensor],
        grew: bool,
        previous: EventStream | None,
    ) -> None:
        """Begin protecting the units marked old in ``masks`` (one ``(width,)`` per layer)."""
        self.stop()
        kind = self.config.protection
        linears = hidden_linears(model)
        frozen = _old_weights(masks, linears[0].in_features)
        if kind == "freeze" and grew and self.config.freeze_steps > 0:
            kept = [
                (
                    lin,
                    weight_mask,
                    bias_mask,
                    lin.weight.detach().clone(),
                    lin.bias.detach().clone(),
                )
                for lin, (weight_mask, bias_mask) in zip(linears, frozen, strict=True)
                if bool(bias_mask.any())
            ]
            self.steps = 0

            def restore(*_: Any) -> None:
                self.steps += 1
                if self.steps > self.config.freeze_steps:
                    return
                with torch.no_grad():
                    for lin, weight_mask, bias_mask, weight, bias in kept:
                        lin.weight[weight_mask] = weight[weight_mask]
                        lin.bias[bias_mask] = bias[bias_mask]

            self._handles.append(trainer.dense_optimizer.register_step_post_hook(restore))
        elif kind == "ewc" and previous is not None and len(previous):
            fisher = self._fisher(model, trainer, previous)
            for lin, (weight_mask, bias_mask) in zip(linears, frozen, strict=True):
                for parameter, mask in ((lin.weight, weight_mask), (lin.bias, bias_mask)):
                    importance = fisher[id(parameter)] * mask.to(parameter.dtype)
                    anchor = parameter.detach().clone()
                    self._handles.append(parameter.register_hook(
                        _ewc_hook(parameter, anchor, importance, self.config.ewc_strength)
                    ))  # fmt: skip

    def _fisher(
        self, model: StreamModel, trainer: StreamTrainer, previous: EventStream
    ) -> dict[int, torch.Tensor]:
        """Mean squared mini-batch gradient of every hidden layer's parameters, by ``id``."""
        events = previous[max(0, len(previous) - self.config.fisher_events) : len(previous)]
        ids = {f: torch.from_numpy(events.ids[f].codes) for f in model.stream_fields}
        labels = torch.from_numpy(events.label)
        parameters = [p for lin in hidden_linears(model) for p in (lin.weight, lin.bias)]
        sums = {id(p): torch.zeros_like(p) for p in parameters}
        size = trainer.config.batch_size
        batches = 0
        model.train()
        for start in range(0, len(events), size):
            part = slice(start, start + size)
            loss = F.binary_cross_entropy_with_logits(
                model({f: v[part] for f, v in ids.items()}), labels[part]
            )
            grads = torch.autograd.grad(loss, parameters)
            for p, g in zip(parameters, grads, strict=True):
                sums[id(p)] += g.pow(2)
            batches += 1
        return {k: v / max(batches, 1) for k, v in sums.items()}

    def stop(self) -> None:
        """Remove every hook."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


class NewUnitBoost:
    """The grown units learn ``new_unit_boost`` times faster for the rest of the session.

    After each step of the dense optimiser, every entry of a grown unit (its incoming row and
    bias, and the column of the next layer or of the head that reads it) is moved to
    ``θ_before + boost · (θ_after − θ_before)``: for Adam, the step of a ``boost`` times larger
    learning rate on those entries alone (Adam's step does not depend on the gradient's scale,
    so scaling gradients would not do it). Old units' entries take the plain step.
    """

    def __init__(self, boost: float) -> None:
        self.boost = float(boost)
        self._handles: list[Any] = []

    def start(self, model: StreamModel, trainer: StreamTrainer, masks: list[torch.Tensor]) -> None:
        """Boost the units not marked old in ``masks`` (one ``(width,)`` bool per layer)."""
        self.stop()
        if self.boost == 1.0 or all(bool(m.all()) for m in masks):
            return
        entries = _new_entries(model, masks)
        before: list[torch.Tensor] = []

        def snapshot(*_: Any) -> None:
            before[:] = [tensor.detach().clone() for tensor, _ in entries]

        def boost(*_: Any) -> None:
            with torch.no_grad():
                for (tensor, mask), old in zip(entries, before, strict=True):
                    step = tensor - old
                    tensor.copy_(torch.where(mask, old + self.boost * step, tensor))

        optimizer = trainer.dense_optimizer
        self._handles.append(optimizer.register_step_pre_hook(snapshot))
        self._handles.append(optimizer.register_step_post_hook(boost))

    def stop(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _new_entries(
    model: StreamModel, masks: list[torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(parameter, bool mask)`` pairs marking every entry of a grown unit: rows and biases of
    new units, the columns of the next layer (or of the head's tower columns) reading them."""
    tower = tower_of(model)
    linears = hidden_linears(model)
    entries: list[tuple[torch.Tensor, torch.Tensor]] = []
    columns = torch.ones(linears[0].in_features, dtype=torch.bool)
    for lin, rows in zip(linears, masks, strict=True):
        entries.append((lin.weight, ~(rows[:, None] & columns[None, :])))
        entries.append((lin.bias, ~rows))
        columns = rows
    head = tower.head
    if head is not None:
        mask = torch.zeros_like(head.weight, dtype=torch.bool)
        offset = tower.head_offset
        mask[:, offset : offset + len(columns)] = ~columns[None, :]
        entries.append((head.weight, mask))
    return [(tensor, mask) for tensor, mask in entries if bool(mask.any())]


def _old_weights(
    masks: list[torch.Tensor], input_dim: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per hidden layer, bool masks of the weights ``(out, in)`` and biases ``(out,)`` that
    joined two units which both existed before the change (the input's columns always did).
    Weights from a new unit into an old one stay free: they start at zero, so the old unit's
    function is kept, and they are how a new unit reaches a layer that did not grow."""
    out = []
    columns = torch.ones(input_dim, dtype=torch.bool)
    for rows in masks:
        out.append((rows[:, None] & columns[None, :], rows))
        columns = rows
    return out


def _ewc_hook(
    parameter: torch.Tensor, anchor: torch.Tensor, importance: torch.Tensor, strength: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``g + 2 λ F (θ − θ*)``: the gradient of the EWC penalty added to ``g``."""

    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad + 2.0 * strength * importance * (parameter.detach() - anchor)

    return hook


# ---------------------------------------------------------------------------------- the run
@dataclass
class RunResult:
    """What :func:`run_sessions` leaves: one row per session, and the model at the end."""

    sessions: list[dict[str, Any]]
    model: StreamModel
    trainer: StreamTrainer
    record: PrequentialRecord


def _log_loss(label: np.ndarray, probability: np.ndarray) -> float:
    p = np.clip(probability, 1e-7, 1 - 1e-7)
    return float(-np.mean(label * np.log(p) + (1 - label) * np.log(1 - p)))


@dataclass
class _RunState:
    model: StreamModel
    trainer: StreamTrainer
    generator: torch.Generator
    record: PrequentialRecord | None
    rows: list[dict[str, Any]]
    reference: StreamTrainer | None = None
    """The reference model's trainer (methods that learn, with ``AdaptiveConfig.reference``)."""


def _fresh(
    experiment: AdaptiveExperiment, widths: tuple[int, ...], seed: int
) -> tuple[StreamModel, StreamTrainer]:
    model, _ = build_model(experiment, widths, seed)
    config = dataclasses.replace(experiment.trainer, seed=seed)
    return model, StreamTrainer(model, config)


def _resume(
    experiment: AdaptiveExperiment,
    method: AdaptiveMethod,
    config: AdaptiveConfig,
    seed: int,
    decider: Any,
    folder: Path | None,
) -> _RunState:
    """A fresh run, or the one the latest checkpoint in ``folder`` holds (``config``: the
    method's controller settings, whose ``reference_widths`` the reference model has)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    latest = None
    if folder is not None and folder.is_dir():
        done = sorted(p for p in folder.glob("session-*") if p.is_dir())
        latest = done[-1] if done else None
    reference = None
    if method.learns and config.reference:
        reference = _fresh(experiment, config.reference_widths, seed)[1]
    if latest is None:
        model, trainer = _fresh(experiment, method.initial_widths(experiment), seed)
        return _RunState(model, trainer, generator, None, [], reference)
    state = load_checkpoint(latest / "state.pt")
    model, trainer = _fresh(experiment, tuple(state["widths"]), seed)
    if reference is not None:
        reference.load_state_dict(state["reference"])
    trainer.load_state_dict(state["trainer"])
    decider.load_state_dict(state["decider"])
    generator.set_state(state["generator"])
    record = PrequentialRecord.load(latest / "record.npz")
    return _RunState(model, trainer, generator, record, list(state["rows"]), reference)


def _checkpoint(folder: Path, index: int, run: _RunState, decider: Any) -> None:
    """Write the run after session ``index`` into ``session-NNN/`` by one rename."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"session-{index:04d}"
    staging = folder / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    assert run.record is not None
    run.record.save(staging / "record.npz")
    save_atomic(
        {
            "widths": list(widths_of(run.model)),
            "trainer": run.trainer.state_dict(),
            "decider": decider.state_dict(),
            "generator": run.generator.get_state(),
            "rows": run.rows,
            "reference": None if run.reference is None else run.reference.state_dict(),
        },
        staging / "state.pt",
    )
    target = folder / name
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    for older in folder.glob("session-*"):
        if older.name < name:
            shutil.rmtree(older, ignore_errors=True)


def run_sessions(
    experiment: AdaptiveExperiment,
    stream: EventStream,
    sessions: list[Session],
    plan: list[Chunk],
    method: AdaptiveMethod,
    penalty: float,
    seed: int,
    reference_parameters: int,
    checkpoint_dir: Path | None = None,
    on_session_end: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Run ``method`` over every session (see the module docstring); resumable.

    Args:
        penalty: ``λ`` of the reward (the controller learns from it; other methods ignore it).
        reference_parameters: fixed-large's tower parameters (``p = 1``).
        checkpoint_dir: where the per-session checkpoints go (None: none).
        on_session_end: called with each finished session's row.
    """
    config = dataclasses.replace(experiment.controller, seed=seed, penalty=penalty)
    decider = method.decider(experiment, config)
    config = method.configure(config)
    run = _resume(experiment, method, config, seed, decider, checkpoint_dir)
    protection = Protection(config)
    boost = NewUnitBoost(config.new_unit_boost)
    counters: list[StreamCounters] = []
    for session in sessions[len(run.rows) :]:
        began, cpu_began = time.perf_counter(), time.process_time()
        decided = _run_session(experiment, stream, sessions, plan, session, run, decider,
                               (protection, boost), reference_parameters, counters)  # fmt: skip
        row = _session_row(session, run, decided, reference_parameters)
        reward = None
        if session.index > 0:
            reward = (0.5 if row["auc"] is None else row["auc"]) - penalty * row["parameter_share"]
            row["learning"] = decider.learn(reward, row.get("reference_auc"), row)
        row["reward"] = reward
        row["seconds"] = time.perf_counter() - began
        row["cpu_seconds"] = time.process_time() - cpu_began
        run.rows.append(row)
        if checkpoint_dir is not None:
            _checkpoint(checkpoint_dir, session.index, run, decider)
        if on_session_end is not None:
            on_session_end(row)
    assert run.record is not None
    return RunResult(run.rows, run.model, run.trainer, run.record)


def _run_session(
    experiment: AdaptiveExperiment,
    stream: EventStream,
    sessions: list[Session],
    plan: list[Chunk],
    session: Session,
    run: _RunState,
    decider: Any,
    hooks: tuple[Protection, NewUnitBoost],
    reference_parameters: int,
    counters: list[StreamCounters],
) -> dict[str, Any]:
    """Test-then-train the chunks of ``session``, deciding before its first chunk is learnt;
    ``counters`` carries the stream counters between sessions. Returns the decision's record."""
    decided: dict[str, Any] = {}
    predicted: dict[int, np.ndarray] = {}
    referenced: list[np.ndarray] = []
    labels: list[np.ndarray] = []

    def predict(batch: StreamChunk) -> Prediction:
        prediction = run.trainer.predict(batch)
        assert prediction.probability is not None
        predicted[batch.chunk.index] = prediction.probability
        if run.reference is not None:
            reference = run.reference.predict(batch).probability
            assert reference is not None
            referenced.append(reference)
            labels.append(batch.events.label)
        return prediction

    def learn(batch: StreamChunk) -> None:
        if batch.chunk.index == session.first_chunk and session.index > 0:
            decided.update(_decide(stream, sessions, session, batch, predicted, run, decider,
                                   hooks, reference_parameters))  # fmt: skip
        run.trainer.learn(batch)
        if run.reference is not None:
            run.reference.learn(batch)

    def chunk_end(_c: Chunk, _r: PrequentialRecord, live: StreamCounters) -> None:
        counters[:] = [live]

    run.record = run_prequential(
        stream, plan, predict, learn, run.trainer.memory,
        record=run.record, counters=counters[0] if counters else None, fields=FIELDS,
        stop_chunk=session.stop_chunk, on_chunk_end=chunk_end,
    )  # fmt: skip
    for hook in hooks:
        hook.stop()
    if referenced:
        label = np.concatenate(labels).astype(np.float64)
        if 0 < label.sum() < len(label):
            decided["reference_auc"] = auc(label, np.concatenate(referenced))
    return decided


def _decide(
    stream: EventStream,
    sessions: list[Session],
    session: Session,
    batch: StreamChunk,
    predicted: dict[int, np.ndarray],
    run: _RunState,
    decider: Any,
    hooks: tuple[Protection, NewUnitBoost],
    reference_parameters: int,
) -> dict[str, Any]:
    """Observe, decide and apply at the start of ``session`` (its first chunk ``batch`` is
    predicted, not yet learnt); start the session's forgetting protection and, after a
    growth the method marks ``boost``, the grown units' boost. Returns what the session row
    records of it."""
    began = time.perf_counter()
    events = batch.events
    previous_session = sessions[session.index - 1]
    previous = stream[previous_session.start : previous_session.stop]
    widths = widths_of(run.model)
    probability = predicted.get(batch.chunk.index)
    first_loss = (
        _log_loss(events.label, probability)
        if probability is not None
        else float(np.mean(run.trainer.last_losses)) if run.trainer.last_losses is not None
        else math.log(2)
    )  # fmt: skip
    first_auc = None
    if probability is not None and 0 < events.label.sum() < len(events):
        first_auc = auc(events.label.astype(np.float64), probability)
    observation = SessionObservation(
        widths=widths,
        parameter_share=shaped_parameters(run.model) / reference_parameters,
        first_loss=first_loss,
        first_auc=first_auc,
        previous_loss=float(run.rows[-1]["loss"]),
        new_user_share=float(np.mean(batch.observed.user_count == 0)),
        new_item_share=float(np.mean(batch.observed.item_count == 0)),
        item_drift=total_variation(events.item, previous.item),
        label_drift=abs(float(events.label.mean()) - float(previous.label.mean())),
    )
    decision: Decision = decider.decide(observation)
    change = None
    masks: list[torch.Tensor] = []
    grew = False
    if decision.reset:
        reset_tower(run.model, run.trainer, run.generator)
        masks = [torch.zeros(w, dtype=torch.bool) for w in widths]
    elif decision.change is not None:
        change = reshape(run.trainer, decision.change, run.generator)
        masks = old_unit_masks(widths, change)
        grew = any(d > 0 for d in change.width_deltas) or change.depth_delta > 0
    else:
        masks = [torch.ones(w, dtype=torch.bool) for w in widths]
    protection, boost = hooks
    protection.start(run.model, run.trainer, masks, grew, previous)
    if grew and decision.boost:
        boost.start(run.model, run.trainer, masks)
    return {
        "observation": dataclasses.asdict(observation),
        "requested": None if decision.change is None else dataclasses.asdict(decision.change),
        "change": None if change is None else dataclasses.asdict(change),
        "reset": decision.reset,
        "boost": decision.boost,
        "decision_seconds": time.perf_counter() - began,
    }


def _session_row(
    session: Session, run: _RunState, decided: dict[str, Any], reference_parameters: int
) -> dict[str, Any]:
    """The figures of a finished session: its prequential metrics (scored sessions), the
    tower it ran with, and the whole model's bytes."""
    assert run.record is not None
    metrics: dict[str, Any] = {"auc": None, "log_loss": None}
    if session.scored:
        n = session.stop - session.start
        data = run.record.arrays()
        metrics = event_metrics(
            data["label"][-n:], data["probability"][-n:], data["rating"][-n:],
            data["rating_prediction"][-n:],
        )  # fmt: skip
    losses = run.trainer.last_losses
    loss = metrics["log_loss"]
    if loss is None:
        loss = float(np.mean(losses)) if losses is not None else math.log(2)
    parameters = shaped_parameters(run.model)
    return {
        "session": session.index,
        "warmup": session.warmup,
        "start": session.start,
        "stop": session.stop,
        "widths": list(widths_of(run.model)),
        "parameters": parameters,
        "parameter_share": parameters / reference_parameters,
        "model_bytes": model_bytes(run.model),
        "auc": metrics["auc"],
        "log_loss": metrics["log_loss"],
        "loss": loss,
        **decided,
    }


__all__ = ["NewUnitBoost", "Protection", "RunResult", "Session", "run_sessions", "session_plan"]
