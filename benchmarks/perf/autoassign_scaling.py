"""Cost of AutoAssign+: the agent's time per event beside the base model's, and scaling to
millions of IDs.

Two measurements, one torch thread, timed in CPU seconds of the process (the cores are shared
with other jobs; wall seconds are kept beside):

1. **Cost split** (``cost_*`` keys). On one stream (ML-1M-partial in time order by default),
   all-unique, the fixed-threshold hierarchy and AutoAssign+ (methods ``autoassign`` and
   ``autoassign_leanrec``) run **in lockstep**: chunk by chunk, every method predicts and learns
   the same chunk before the next chunk is read (the order of the methods rotates per chunk),
   so a change of the machine's load hits every method alike. Each method's time per event is
   split into

   - *base model*: ``StreamTrainer.predict`` and ``StreamTrainer.learn`` (the model's
     forward passes, the tables' ``observe``, the optimiser steps);
   - *agent*: everything the assigner adds (``AssigningTrainer`` around the base model): the
     per-event losses, the assigner's ``extend`` and ``assign`` (observe, critic and actor
     updates, decide, move), itemised by the agent's methods.

   The goal is an agent at most 1x the base model's time per event (at most 2x in all), and
   the ratio is given two ways: agent / own base model, and AutoAssign+'s total / all-unique's.
   The evaluator's bookkeeping (counters, records) is the same for every method and is left
   out. Prequential AUC per method is printed as a check that every method learns.
2. **Scaling** (``scale_*`` keys). A power-law stream from
   :func:`~leanrec.data.synthetic_stream.make_synthetic_stream` (linear in events) with more
   than a million distinct users and as many items, run by
   :func:`~leanrec.train.stream.run_stream` (the experiment's driver) once per method, each in
   a fresh child process so its peak RSS is its own. At every checkpoint (every 500,000
   events): distinct IDs so far, embedding bytes (and per distinct ID), time per event over the
   last segment (base model and agent apart), current and peak RSS. The tables of these runs
   have sparse gradients: the tables' Adagrad makes the same updates, but with the trainer's
   default dense gradients every step walks the whole table, so time per event grows with the
   IDs held; a run named ``<method>_dense`` (by default all-unique over the first 200,000
   events) measures that.

Long runs survive a kill: each child writes its checkpoints to ``--work-dir`` as it goes, the
cost split is kept there too (``cost-<dataset>.json``), and what a work dir already holds is
not measured again (``--fresh`` measures it anew).

Base model and training are the shared-embedding experiment's (DeepFM, ``d = 16``, its default
trainer: Adagrad on the tables, Adam on the dense part, batches of 64, one pass, chunks of 1,000
events); the hierarchy has ``k = 3`` levels, the fixed thresholds ``t_k = 10`` events.

Writes ``results/autoassign_scaling.json`` and ``results/autoassign_scaling.png`` (``--tag T``:
``autoassign_scaling--T``). Run from the repository root:

    python -m benchmarks.perf.autoassign_scaling [--quick] [--scale-events 3000000]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    add_tag_argument,
    data_dir,
    print_table,
    results_path,
    write_results,
)
from leanrec.data.events import Chunk, EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.data.vocab_stream import StreamCounters
from leanrec.evaluate.prequential import Prediction, PrequentialRecord, StreamChunk, event_metrics
from leanrec.models.stream import build_stream_model
from leanrec.search.shared_embedding.baselines import METHODS, BuildContext
from leanrec.search.shared_embedding.config import AutoAssignConfig, default_trainer
from leanrec.search.shared_embedding.trainer import AssigningTrainer
from leanrec.train.stream import StreamTrainer, run_stream

SCRIPT = "autoassign_scaling"
FIELDS = ("user", "item")
METHOD_KNOBS: dict[str, float] = {
    "all_unique": 0.0,
    "threshold_hierarchy": 10.0,
    "autoassign": 3.0,
    "autoassign_leanrec": 3.0,
}
"""The methods measured and their knob (``t_k`` events of the hierarchy, ``k`` levels of
AutoAssign+): the cost hardly depends on it, so it is fixed rather than chosen."""
AGENTS = ("autoassign", "autoassign_leanrec")
AGENT_PARTS: tuple[tuple[str, str], ...] = (
    ("agent", "observe"),
    ("agent", "update"),
    ("agent", "decide"),
    ("agent", "idle_round"),
    ("networks", "update_critic"),
    ("networks", "update_actor"),
    ("networks", "act"),
    ("replay", "add_with_behaviour"),
    ("replay", "sample_with_behaviour"),
    ("assigner", "extend"),
    ("assigner", "assign"),
    ("assigner", "enforce_cap"),
    ("main", "move"),
    ("hierarchy", "apply"),
)
"""The agent's methods timed one by one (``owner.method``; a part the code does not have reads
0): where the agent's time goes."""


# ---------------------------------------------------------------------------------- timing
CLOCK = time.process_time
"""Every split is in CPU seconds of this process: the cores are shared with other jobs, and
CPU time, unlike wall time, does not count the time another process held the core."""


class _BaseModelTimer(StreamTrainer):
    """Times :class:`StreamTrainer`'s own ``predict`` and ``learn``: placed after
    :class:`AssigningTrainer` in the method resolution order, so its ``super()`` calls land
    here and everything around them is the assigner's."""

    base_seconds: float = 0.0

    def predict(self, batch: StreamChunk) -> Prediction:
        began = CLOCK()
        try:
            return super().predict(batch)
        finally:
            self.base_seconds += CLOCK() - began

    def learn(self, batch: StreamChunk) -> None:
        began = CLOCK()
        try:
            super().learn(batch)
        finally:
            self.base_seconds += CLOCK() - began


class TimedTrainer(AssigningTrainer, _BaseModelTimer):
    """An :class:`AssigningTrainer` that knows how much of its CPU time is the base model's
    (:attr:`base_seconds`) and, per agent method, how much is the agent's (:attr:`parts`);
    :attr:`wall_seconds` is the wall time of the same calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_seconds = 0.0
        self.total_seconds = 0.0
        self.wall_seconds = 0.0
        self.parts: dict[str, float] = {}
        self.ids_known: dict[str, int] = {}
        """Distinct IDs per field so far (the counters' vocabulary sizes after the last chunk
        learnt)."""
        self._wrap_agent()

    def predict(self, batch: StreamChunk) -> Prediction:
        began, wall = CLOCK(), time.perf_counter()
        try:
            return super().predict(batch)
        finally:
            self.total_seconds += CLOCK() - began
            self.wall_seconds += time.perf_counter() - wall

    def learn(self, batch: StreamChunk) -> None:
        self.ids_known = dict(batch.observed.sizes)
        began, wall = CLOCK(), time.perf_counter()
        try:
            super().learn(batch)
        finally:
            self.total_seconds += CLOCK() - began
            self.wall_seconds += time.perf_counter() - wall

    @property
    def agent_seconds(self) -> float:
        """Time spent around the base model: the assigner's whole cost."""
        return self.total_seconds - self.base_seconds

    def _wrap_agent(self) -> None:
        assigner = self.assigner
        if assigner is None:
            return
        self.parts.update({f"{owner}.{method}": 0.0 for owner, method in AGENT_PARTS})
        agent = getattr(assigner, "agent", None)
        hierarchies = getattr(assigner, "hierarchies", [])
        owners: dict[str, list[Any]] = {
            "assigner": [assigner],
            "agent": [agent] if agent is not None else [],
            "networks": [getattr(agent, "networks", None)],
            "replay": [getattr(agent, "replay", None)],
            "main": [h.main for h in hierarchies],
            "hierarchy": list(hierarchies),
        }
        for owner_name, method in AGENT_PARTS:
            for owner in owners[owner_name]:
                if owner is not None and callable(getattr(owner, method, None)):
                    self._timed(owner, method, f"{owner_name}.{method}")

    def _timed(self, owner: Any, method: str, part: str) -> None:
        inner: Callable[..., Any] = getattr(owner, method)
        parts = self.parts
        parts.setdefault(part, 0.0)

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = CLOCK()
            try:
                return inner(*args, **kwargs)
            finally:
                parts[part] += CLOCK() - began

        object.__setattr__(owner, method, timed)  # an instance attribute, also on nn.Module


def build_trainer(
    method: str, stream: EventStream, seed: int = 0, sparse_grad: bool = False
) -> TimedTrainer:
    """The experiment's model for ``method`` (knob :data:`METHOD_KNOBS`), with timing.

    ``sparse_grad``: the tables' rows get sparse gradients, so a step of the tables' Adagrad
    touches only the rows of its batch. The updates are Adagrad's either way (a row with a zero
    gradient keeps its value and its sum of squares), but a dense gradient makes every step
    walk the whole table: time per event then grows with the IDs held."""
    spec = METHODS[method]
    knob = METHOD_KNOBS[method]
    warmup_ids = {f: stream.ids[f].n_ids for f in FIELDS}  # sizes no method measured here reads
    generator = torch.Generator().manual_seed(seed)
    context = BuildContext(FIELDS, warmup_ids, 0.01, seed, generator, AutoAssignConfig())
    model = build_stream_model(
        "deepfm", FIELDS, embedding_dim=16, seed=seed, table_factory=spec.tables(knob, context)
    )
    model.generator = generator
    config = dataclasses.replace(
        default_trainer(), objective="bce", seed=seed, sparse_rows=sparse_grad
    )
    return TimedTrainer(model, config, spec.assigner(knob, context, model))


# ---------------------------------------------------------------------------------- 1. cost
def measure_cost(
    stream: EventStream,
    methods: Sequence[str],
    chunk_size: int = 1000,
    warmup_fraction: float = 0.2,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Run ``methods`` in lockstep over ``stream`` (module docstring, 1.); per method: events,
    seconds (total, base model, agent, agent parts), per-event microseconds and AUC."""
    trainers = {m: build_trainer(m, stream, seed) for m in methods}
    counters = StreamCounters(FIELDS)
    plan = stream.plan(size=chunk_size, warmup_fraction=warmup_fraction)
    predictions: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    labels: list[np.ndarray] = []
    order = list(methods)
    began = time.perf_counter()
    for chunk in plan:
        events = stream[chunk]
        batch = StreamChunk(chunk, events, counters.observe(events))
        if not chunk.warmup:
            labels.append(events.label)
        for method in order:
            trainer = trainers[method]
            if not chunk.warmup:
                prediction = trainer.predict(batch)
                assert prediction.probability is not None
                predictions[method].append(prediction.probability)
            trainer.learn(batch)
        order = order[1:] + order[:1]
        if (chunk.index + 1) % 100 == 0:
            log(f"cost: chunk {chunk.index + 1}/{len(plan)}, {time.perf_counter() - began:.0f} s")
    n = len(stream)
    label = np.concatenate(labels)
    out: dict[str, dict[str, Any]] = {}
    for method, trainer in trainers.items():
        probability = np.concatenate(predictions[method])
        nan = np.full(len(label), np.nan)
        metrics = event_metrics(label, probability, nan.astype(np.float32), nan)
        out[method] = {
            "events": n,
            "seconds": trainer.total_seconds,
            "base_seconds": trainer.base_seconds,
            "agent_seconds": trainer.agent_seconds,
            "us_per_event": 1e6 * trainer.total_seconds / n,
            "wall_us_per_event": 1e6 * trainer.wall_seconds / n,
            "base_us_per_event": 1e6 * trainer.base_seconds / n,
            "agent_us_per_event": 1e6 * trainer.agent_seconds / n,
            "agent_over_base": trainer.agent_seconds / trainer.base_seconds,
            "parts_us_per_event": {k: 1e6 * v / n for k, v in trainer.parts.items()},
            "auc": metrics["auc"],
            "embedding_bytes": trainer.memory(),
        }
    return out


# ---------------------------------------------------------------------------------- 2. scaling
@dataclasses.dataclass(frozen=True)
class ScalingStream:
    """The synthetic stream of the scaling run (arguments of ``make_synthetic_stream``)."""

    events: int = 3_000_000
    ids: int = 6_000_000
    """ID space of users and of items each (growing population: new IDs all along)."""
    exponent: float = 0.8
    """Power-law exponent of user and item popularity. With 3M events over a 6M space it gives
    about 1.10M distinct users and as many items (the top 1% of users hold about a third of
    the events); at 1.1 over a 1M space, 10M events would meet only about 408k users."""
    seed: int = 0

    def build(self) -> EventStream:
        return make_synthetic_stream(
            self.events, n_users=self.ids, n_items=self.ids, user_exponent=self.exponent,
            item_exponent=self.exponent, seed=self.seed, name="synthetic-power-law",
        )  # fmt: skip


def _rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process in bytes: ``VmRSS`` and ``VmHWM``
    of ``/proc/self/status`` (Linux; ``getrusage``'s peak elsewhere)."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return fields.get("VmRSS", 0), peak


DENSE = "_dense"
"""Suffix of a scaling run with dense table gradients (the trainer's default), which stops at
``--dense-events``; a run without it has sparse table gradients (:func:`build_trainer`)."""


def scaling_marks(checkpoints: Sequence[int], events: int) -> list[int]:
    """The checkpoints of a run over ``events`` events: those within it, and its end."""
    return sorted({c for c in checkpoints if c < events} | {events})


def run_scaling_method(
    name: str,
    spec: ScalingStream,
    checkpoints: Sequence[int],
    out: Path,
    stop_events: int | None = None,
    chunk_size: int = 1000,
    warmup_fraction: float = 0.05,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """One run (a method, with ``_dense`` table gradients or sparse ones) over the synthetic
    stream (module docstring, 2.), up to ``stop_events`` events (default: all); writes ``out``
    (JSON) at every checkpoint and returns the same record (``done`` True at the end)."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    dense = name.endswith(DENSE)
    method = name.removesuffix(DENSE)
    began = time.perf_counter()
    stream = spec.build()
    generate_seconds = time.perf_counter() - began
    rss_stream, _ = _rss_bytes()
    trainer = build_trainer(method, stream, sparse_grad=not dense)
    plan = stream.plan(size=chunk_size, warmup_fraction=warmup_fraction)
    stop = len(stream) if stop_events is None else min(stop_events, len(stream))
    marks = scaling_marks(checkpoints, stop)
    stop_chunk = next(c.index + 1 for c in plan if c.stop >= stop)
    rows: list[dict[str, Any]] = []
    last = {
        "events": 0,
        "total": 0.0,
        "base": 0.0,
        "agent": 0.0,
        "wall": time.perf_counter(),
        "process": CLOCK(),
    }
    result: dict[str, Any] = {
        "method": method,
        "table_gradients": "dense" if dense else "sparse",
        "source_commit": source_commit(),
        "stream": dataclasses.asdict(spec),
        "distinct_users": stream.ids["user"].n_ids,
        "distinct_items": stream.ids["item"].n_ids,
        "generate_seconds": generate_seconds,
        "rss_after_stream": rss_stream,
        "marks": marks,
        "checkpoints": rows,
        "done": False,
    }

    def chunk_end(chunk: Chunk, record: PrequentialRecord) -> None:
        if len(rows) == len(marks) or chunk.stop < marks[len(rows)]:
            return  # a checkpoint is the end of the first chunk at or after its mark
        now, process = time.perf_counter(), CLOCK()
        events = chunk.stop - last["events"]
        total, base = trainer.total_seconds, trainer.base_seconds
        agent = total - base
        current, peak = _rss_bytes()
        distinct = {f: trainer.ids_known[f] for f in FIELDS}
        report = trainer.bytes_report()
        embedding = trainer.memory()
        rows.append(
            {
                "events": chunk.stop,
                "distinct_ids": sum(distinct.values()),
                "distinct_users": distinct["user"],
                "distinct_items": distinct["item"],
                "embedding_bytes": embedding,
                "bytes_per_id": embedding / max(1, sum(distinct.values())),
                "us_per_event": 1e6 * (total - last["total"]) / events,
                "base_us_per_event": 1e6 * (base - last["base"]) / events,
                "agent_us_per_event": 1e6 * (agent - last["agent"]) / events,
                "with_evaluator_us_per_event": 1e6 * (process - last["process"]) / events,
                "wall_us_per_event": 1e6 * (now - last["wall"]) / events,
                "rss": current,
                "peak_rss": peak,
                **{f"{k}_bytes": v for k, v in report.items() if k != "embedding"},
                "parts_us_per_event": {k: 1e6 * v / chunk.stop for k, v in trainer.parts.items()},
            }
        )
        last.update(
            events=chunk.stop, total=total, base=base, agent=agent, wall=now, process=process
        )
        row = rows[-1]
        log(f"{name}: {chunk.stop:,} events, {row['distinct_ids']:,} IDs, "
            f"{embedding / 2**20:.1f} MiB embedding, {row['us_per_event']:.1f} us/event "
            f"(agent {row['agent_us_per_event']:.1f}), RSS {current / 2**20:.0f} MiB")  # fmt: skip
        _write_json(out, result)

    record = run_stream(stream, plan, trainer, stop_chunk=stop_chunk, on_chunk_end=chunk_end)
    result["auc"] = record.metrics()["auc"]
    result["done"] = True
    _write_json(out, result)
    return result


def source_commit() -> str:
    """The commit the measured code comes from: ``LEANREC_SOURCE_COMMIT`` (set when running
    from an exported snapshot), else this checkout's ``HEAD``, marked when ``src/`` differs
    from it."""
    if os.environ.get("LEANREC_SOURCE_COMMIT"):
        return os.environ["LEANREC_SOURCE_COMMIT"]
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with local changes in src/" if dirty else head


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, path)


def run_scaling(
    names: Sequence[str],
    spec: ScalingStream,
    checkpoints: Sequence[int],
    work_dir: Path,
    dense_events: int,
    fresh: bool = False,
    keep_partial: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Each run in a child process, one after the other; the records the children wrote. A
    finished run in ``work_dir`` is kept unless ``fresh`` (an unfinished one too with
    ``keep_partial``); a child that fails or is stopped keeps the checkpoints it wrote, and the
    next run starts. A ``_dense`` run stops at ``dense_events``, with four checkpoints."""
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        stop, marks = spec.events, list(checkpoints)
        if name.endswith(DENSE):
            stop = min(dense_events, spec.events)
            marks = [stop * i // 4 for i in range(1, 5)]
        path = work_dir / f"scale-{name}.json"
        previous = json.loads(path.read_text()) if path.is_file() else None
        reusable = (
            previous is not None and (previous["done"] or keep_partial)
            and previous["stream"] == dataclasses.asdict(spec)
            and previous["marks"] == scaling_marks(marks, stop)
        )  # fmt: skip
        if fresh or not reusable:
            command = [
                sys.executable, "-m", f"benchmarks.perf.{SCRIPT}", "--scale-child", name,
                "--scale-events", str(spec.events), "--scale-ids", str(spec.ids),
                "--scale-exponent", str(spec.exponent),
                "--scale-checkpoints", ",".join(str(c) for c in marks),
                "--scale-stop", str(stop), "--work-dir", str(work_dir),
            ]  # fmt: skip
            log(f"scaling: {name} in a child process")
            if subprocess.run(command, check=False).returncode != 0:
                log(f"scaling: {name} stopped early; the checkpoints it wrote are kept")
        if path.is_file():
            out[name] = json.loads(path.read_text())
    return out


# ---------------------------------------------------------------------------------- report
def _flat(cost: Mapping[str, Mapping[str, Any]], scaling: Mapping[str, Mapping[str, Any]]
          ) -> dict[str, Any]:  # fmt: skip
    """The flat results record (``cost_<method>_<key>``, ``scale_<method>_<events>_<key>``)."""
    flat: dict[str, Any] = {}
    for method, row in cost.items():
        for key, value in row.items():
            if key == "parts_us_per_event":
                for part, us in value.items():
                    flat[f"cost_{method}_part_{part}_us_per_event"] = us
            else:
                flat[f"cost_{method}_{key}"] = value
    reference = cost.get("all_unique")
    for method in AGENTS:
        if method in cost and reference is not None:
            flat[f"cost_{method}_total_over_all_unique"] = (
                cost[method]["us_per_event"] / reference["us_per_event"]
            )
            flat[f"cost_{method}_goal_met"] = cost[method]["agent_over_base"] <= 1.0
    for method, result in scaling.items():
        flat[f"scale_{method}_done"] = result["done"]
        flat[f"scale_{method}_source_commit"] = result.get("source_commit", "unknown")
        flat[f"scale_{method}_table_gradients"] = result.get("table_gradients")
        flat[f"scale_{method}_auc"] = result.get("auc")
        flat[f"scale_{method}_rss_after_stream"] = result["rss_after_stream"]
        rows = result["checkpoints"]
        flat[f"scale_{method}_checkpoints"] = ",".join(str(r["events"]) for r in rows)
        for row in rows:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "events":
                    flat[f"scale_{method}_{row['events']}_{key}"] = value
        for mark in result["marks"][len(rows) :]:  # not reached: the run was stopped
            for key, value in (rows[0] if rows else {}).items():
                if isinstance(value, (int, float)) and key != "events":
                    flat[f"scale_{method}_{mark}_{key}"] = None
        if rows:
            flat[f"scale_{method}_peak_rss"] = rows[-1]["peak_rss"]
            flat[f"scale_{method}_end_embedding_bytes"] = rows[-1]["embedding_bytes"]
            flat[f"scale_{method}_end_distinct_ids"] = rows[-1]["distinct_ids"]
            flat[f"scale_{method}_end_events"] = rows[-1]["events"]
            flat[f"scale_{method}_end_agent_over_base"] = (
                rows[-1]["agent_us_per_event"] / rows[-1]["base_us_per_event"]
            )
            times = [r["us_per_event"] for r in rows]
            flat[f"scale_{method}_us_per_event_last_over_first"] = times[-1] / times[0]
            flat[f"scale_{method}_us_per_event_max_over_min"] = max(times) / min(times)
    return flat


def _plot(scaling: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    for method, result in scaling.items():
        rows = result["checkpoints"]
        ids = [r["distinct_ids"] / 1e6 for r in rows]
        left.plot(ids, [r["embedding_bytes"] / 2**20 for r in rows], marker="o", label=method)
        right.plot(ids, [r["us_per_event"] for r in rows], marker="o", label=method)
    left.set_xlabel("distinct IDs so far (millions, users + items)")
    left.set_ylabel("embedding bytes (MiB)")
    right.set_xlabel("distinct IDs so far (millions, users + items)")
    right.set_ylabel("CPU time per event over the segment (µs)")
    right.set_yscale("log")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _print(cost: Mapping[str, Mapping[str, Any]], scaling: Mapping[str, Mapping[str, Any]]
           ) -> None:  # fmt: skip
    reference = cost.get("all_unique", {}).get("us_per_event")
    print_table(
        ["method", "µs/event", "base model", "agent", "agent / base", "vs all-unique", "AUC"],
        [
            [m, r["us_per_event"], r["base_us_per_event"], r["agent_us_per_event"],
             r["agent_over_base"], r["us_per_event"] / reference if reference else float("nan"),
             r["auc"] if r["auc"] is not None else float("nan")]
            for m, r in cost.items()
        ],
    )  # fmt: skip
    for method in AGENTS:
        if method in cost:
            parts = sorted(cost[method]["parts_us_per_event"].items(), key=lambda kv: -kv[1])
            print(f"{method} agent parts (µs/event): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in parts))  # fmt: skip
    for method, result in scaling.items():
        print(f"\nscaling, {method}:")
        print_table(
            ["events", "IDs", "embedding MiB", "bytes/ID", "µs/event", "agent µs", "RSS MiB",
             "peak RSS MiB"],
            [
                [r["events"], r["distinct_ids"], r["embedding_bytes"] / 2**20, r["bytes_per_id"],
                 r["us_per_event"], r["agent_us_per_event"], r["rss"] / 2**20,
                 r["peak_rss"] / 2**20]
                for r in result["checkpoints"]
            ],
        )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m-partial", help="stream of the cost split")
    parser.add_argument("--methods", default=",".join(METHOD_KNOBS))
    parser.add_argument(
        "--scale-methods",
        default="all_unique_dense,all_unique,autoassign_leanrec,autoassign,threshold_hierarchy",
        help="scaling runs, in order: methods (sparse table gradients), or method_dense",
    )
    parser.add_argument("--scale-events", type=int, default=ScalingStream.events)
    parser.add_argument("--scale-ids", type=int, default=ScalingStream.ids)
    parser.add_argument("--scale-exponent", type=float, default=ScalingStream.exponent)
    parser.add_argument(
        "--scale-checkpoints", default="500000,1000000,1500000,2000000,2500000,3000000"
    )
    parser.add_argument("--skip-cost", action="store_true", help="scaling run only")
    parser.add_argument("--skip-scaling", action="store_true", help="cost split only")
    parser.add_argument("--work-dir", default="runs/autoassign-scaling")
    parser.add_argument(
        "--fresh", action="store_true", help="rerun what --work-dir holds (cost split, scaling)"
    )
    parser.add_argument(
        "--keep-partial", action="store_true",
        help="keep the checkpoints of a scaling run that was stopped, instead of rerunning it",
    )  # fmt: skip
    parser.add_argument("--scale-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scale-stop", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--dense-events", type=int, default=200_000,
        help="events of the runs with dense table gradients (scale methods ending in _dense)",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true",
        help="a small synthetic stream for both parts (a check that the script runs)",
    )  # fmt: skip
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    checkpoints = [int(c) for c in args.scale_checkpoints.split(",")]
    spec = ScalingStream(args.scale_events, args.scale_ids, args.scale_exponent)
    work_dir = Path(args.work_dir)
    dense_events = args.dense_events
    if args.scale_child:
        out = work_dir / f"scale-{args.scale_child}.json"
        run_scaling_method(args.scale_child, spec, checkpoints, out, stop_events=args.scale_stop)
        return
    if args.quick:
        spec = ScalingStream(events=10_000, ids=10_000, exponent=0.8)
        checkpoints = [5_000, 10_000]
        dense_events = 4_000
    dataset = "synthetic (quick)" if args.quick else args.dataset
    methods = args.methods.split(",")
    cost: dict[str, dict[str, Any]] = {}
    cost_path = work_dir / f"cost-{'quick' if args.quick else args.dataset}.json"
    if not args.skip_cost:
        stored = json.loads(cost_path.read_text()) if cost_path.is_file() else None
        if stored is not None and stored["methods"] == methods and not args.fresh:
            cost = stored["cost"]  # measured by an earlier run in this work dir
        else:
            if args.quick:
                stream = make_synthetic_stream(10_000, n_users=1_000, n_items=500, seed=1)
            else:
                stream = EventStream.from_dataset(args.dataset, data_dir())
            cost = measure_cost(stream, methods)
            record = {"methods": methods, "source_commit": source_commit(), "cost": cost}
            _write_json(cost_path, record)
    scaling: dict[str, dict[str, Any]] = {}
    if not args.skip_scaling:
        scaling = run_scaling(
            args.scale_methods.split(","),
            spec,
            checkpoints,
            work_dir,
            dense_events,
            fresh=args.fresh,
            keep_partial=args.keep_partial,
        )
    _print(cost, scaling)
    flat = {"cost_dataset": dataset, "cost_methods": ",".join(cost), **_flat(cost, scaling)}
    flat.update({f"scale_stream_{k}": v for k, v in dataclasses.asdict(spec).items()})
    flat["scale_methods"] = ",".join(scaling)
    flat["source_commit"] = source_commit()
    if scaling:
        _plot(scaling, results_path(SCRIPT, args.tag, ".png"))
    path = write_results(SCRIPT, flat, args.tag)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
