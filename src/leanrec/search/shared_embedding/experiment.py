"""AutoAssign+ against its baselines on one event stream, prequentially.

``leanrec experiment shared-embedding --dataset ml-1m-partial``. For every objective, seed and
method:

1. **Warm-up only.** Every knob of the method's grid is scored on the warm-up: the warm-up is
   cut into a training prefix and a validation suffix, the suffix scored prequentially (predict
   a chunk, then learn it), exactly as the evaluated stream will be. The best knob (validation
   AUC for ``bce``, minus validation MSE for ``mse``) is the method's choice. Grids that are
   sizes are shares of the IDs each field has by the end of the warm-up. Nothing after the
   warm-up is read here (``warmup_scores.json``).
2. **The evaluated stream**, inside :func:`~leanrec.runner.final.final_evaluation`: a fresh model
   runs the whole stream, warm-up chunks learnt only, then every later chunk predicted once
   before it is learnt (test-then-train). The guard's point on a stream: no knob and no
   learning rate is chosen on the evaluated part, which is only touched in this block. With
   ``curves`` every knob of the grid gets this run (bytes/quality curves), otherwise only the
   chosen one.

Every warm-up score and every row is an independent job of the experiment's executor
(``executor``: ``"serial"`` in this process, or ``"ray"``, one job per row; the stream and the
warm-up go to the jobs by reference, stored once): the rows are the same either way. All warm-up
scores run first, then the rows.

A run is resumable: rows (``rows.json``, keyed by objective / method / knob / seed) are written
as they finish, and the row being run checkpoints through
:func:`~leanrec.train.stream.run_stream` every ``checkpoint_every`` chunks under
``checkpoints/``, so a killed run continues mid-stream and ends with the same rows.

Nothing is written before the inputs are checked (:func:`check_inputs`: the methods, the
stream, the warm-up, ratings for ``mse``, and every method's model built once), and a run
directory holding rows of an experiment with other settings is refused
(:func:`check_resumable`): a bad invocation never touches what an earlier run wrote.

Base models: the CTR models (``deepfm``, ``dnn``, ...) and ``neumf``. The default trainer
(``torch.optim`` Adagrad on the tables) trains every one of them on every method's tables; the
row-wise table optimisers (``row_adagrad``, ...) need a CTR model on
:class:`~leanrec.embeddings.GrowingEmbedding` tables, and asking for one with NeuMF or with a
method whose tables are no growing table is refused before the run starts, with the message
naming the optimiser that works, rather than silently switched (the trainer is one setting
shared by every method of the table).

Outputs: ``config.json``, ``warmup_scores.json``, ``rows.json``, ``results.json``, ``table.md``,
``auc_vs_bytes.png`` (AUC against end-of-stream embedding bytes, one curve per method over its
knob) and ``bucket_auc.png`` (AUC per frequency bucket of the colder of user and item, chosen
knobs); artefact: ``model_autoassign_<objective>.pt``, the first seed's AutoAssign+ model with
its assignment (:func:`leanrec.models.load_model`, family ``"stream"``; ``leanrec predict
--model model_autoassign_bce.pt --pairs pairs.csv`` scores ID pairs with it, unseen IDs
through level 1).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.errors import DataError
from leanrec.data.events import Chunk, EventStream
from leanrec.evaluate.prequential import BUCKETS, PrequentialRecord, event_metrics
from leanrec.models.stream import build_stream_model
from leanrec.runner import resume
from leanrec.runner.aggregate import format_mean_sd, mean_sd
from leanrec.runner.executors import Shared, search_executor
from leanrec.runner.final import final_evaluation
from leanrec.runner.rundir import Log, RowStore, RunDirectory, file_in, jsonable
from leanrec.runner.stream_rows import (
    SharedStreamRunner,
    StreamRow,
    StreamRowRunner,
    remove_empty_checkpoints,
    row_key,
    row_tag,
)
from leanrec.search.base import ExperimentResult
from leanrec.search.shared_embedding.artifact import save_stream_model
from leanrec.search.shared_embedding.baselines import (
    METHODS,
    BuildContext,
    SharedEmbeddingMethod,
    warmup_ids,
)
from leanrec.search.shared_embedding.config import SharedEmbeddingExperiment
from leanrec.search.shared_embedding.side import SideGroups, load_side_groups, with_side_groups
from leanrec.search.shared_embedding.trainer import AssigningTrainer
from leanrec.search.streams import DATASETS, load_events
from leanrec.train.stream import run_stream

ROW_KEY = ("objective", "method", "knob", "seed")
FIELDS = ("user", "item")
COLD_BELOW = 2
"""Buckets ``0`` and ``1-4`` of the colder of user and item: fewer than 5 earlier events."""
TRACE_POINTS = 100


RESUMABLE_CHANGES = (
    "out_dir",
    "data_dir",
    "methods",
    "seeds",
    "objectives",
    "curves",
    "checkpoint_every",
    "log_every",
    "num_threads",
    "executor",
    "executor_cpus_per_job",
)
"""Settings a rerun in an existing run directory may change: where things are, which rows to
run (a rerun adds rows) and how often to checkpoint and log. Any other setting changes what a
stored row means, so a run directory holding rows refuses it."""


def load_stream(experiment: SharedEmbeddingExperiment) -> EventStream:
    """The dataset's events in the experiment's order (``ml-1m`` reads the timestamped
    ``ml-1m-partial``), cut to the first ``max_events`` when it is set; where the dataset has
    side files, each event carries its user's and item's side-feature group (:mod:`.side`:
    value columns the base model does not read)."""
    stream = load_events(
        experiment.dataset, experiment.data_dir, experiment.order, experiment.max_events
    )
    side = side_groups(experiment)
    return stream if side is None else with_side_groups(stream, side)


def side_groups(experiment: SharedEmbeddingExperiment) -> SideGroups | None:
    """The side-feature groups of the experiment's dataset, None where it has none."""
    if not isinstance(experiment.dataset, str):
        return None
    return load_side_groups(experiment.dataset, experiment.data_dir)


def run_experiment(
    experiment: SharedEmbeddingExperiment,
    log: Log = print,
    stream: EventStream | None = None,
    warmup: EventStream | None = None,
) -> ExperimentResult:
    """Run (or resume) every row of ``experiment`` in ``experiment.out_dir``.

    Args:
        stream: replaces the registry dataset (e.g. a synthetic stream in tests).
        warmup: the warm-up prefix ``stream[0:W]`` (default: cut from ``stream``). Give it
            when ``stream`` is behind :func:`~leanrec.runner.final.guard_test_data`: every
            choice reads the warm-up alone, the whole stream is read only in the final
            evaluation.

    Returns:
        The rows, the summary (``results.json``) and the saved AutoAssign+ models.
    """
    if experiment.num_threads:
        torch.set_num_threads(experiment.num_threads)
    methods = METHODS.resolve(experiment.methods)
    check_resumable(experiment)
    if stream is None:
        stream = load_stream(experiment)
    if warmup is None:
        warmup = stream[0 : stream.warmup_size(experiment.warmup_fraction)]
    distinct = check_inputs(experiment, methods, warmup)
    run = RunDirectory(experiment.out_dir, config=experiment, log=log)
    run.log(f"{experiment.dataset}: warm-up of {len(warmup)} events, IDs {distinct}")
    rows = run.rows(ROW_KEY)
    scores = run.rows(ROW_KEY, name="warmup_scores.json")
    with search_executor(
        experiment.executor, experiment.executor_cpus_per_job, desc="shared-embedding rows"
    ) as executor:
        here = executor.in_process
        # 1. every knob's warm-up score (the cached ones are not run again)
        scoring = [
            WarmupJob(objective, method.name, knob, seed)
            for objective in experiment.objectives
            for seed in experiment.seeds
            for method in methods
            for knob in method.knobs(dataclasses.asdict(experiment))
            if scores.get(objective=objective, method=method.name, knob=knob, seed=seed) is None
        ]
        if scoring:
            shared_warmup = executor.share(warmup)
            if not here:
                run.log(f"{len(scoring)} warm-up scores on {executor!r}")

            def scored(index: int, row: dict[str, Any]) -> None:
                job = scoring[index]
                scores.add(row)
                run.log(f"warm-up {job.objective} {job.method} "
                        f"{METHODS[job.method].knob_name}={job.knob:g} seed {job.seed}: "
                        f"score {row['score']:.4f}")  # fmt: skip

            executor.map(WarmupScorer(experiment, shared_warmup, distinct), scoring,
                         on_result=scored)  # fmt: skip
        # 2. the rows over the whole stream: the chosen knob (every knob with curves)
        streaming = []
        for objective in experiment.objectives:
            for seed in experiment.seeds:
                for method in methods:
                    knobs = method.knobs(dataclasses.asdict(experiment))
                    chosen = _choose(scores, method.name, knobs, seed, objective)
                    for knob in knobs if experiment.curves else (chosen,):
                        key: dict[str, Any] = {"objective": objective, "method": method.name,
                                               "knob": knob, "seed": seed}  # fmt: skip
                        if rows.has(**key):
                            continue
                        warm = scores.get(**key)
                        score = None if warm is None else warm["score"]
                        streaming.append(RowJob(**key, chosen=knob == chosen, warmup_score=score))
        if streaming:
            shared_stream = executor.share(stream)
            if not here:
                run.log(f"{len(streaming)} rows on {executor!r}")

            def streamed(index: int, row: dict[str, Any]) -> None:
                rows.add(row)
                metric = "auc" if row["objective"] == "bce" else "mse"
                value = row["total"][metric]
                shown = value if value is None else round(value, 4)
                run.log(f"{streaming[index].tag}: {metric.upper()} {shown}, "
                        f"{row['bytes']['embedding']} bytes")  # fmt: skip

            runner = RowRunner(experiment, shared_stream, str(run.path),
                               run.log if here else None, distinct=distinct)  # fmt: skip
            executor.map(runner, streaming, on_result=streamed)
    remove_empty_checkpoints(run.path)
    summary = summarise(rows.rows, experiment)
    run.write_results(summary)
    run.write_table(markdown_table(summary, experiment))
    _plot(run, summary, experiment)
    artifacts = {p.stem: p for p in sorted(run.path.glob("model_*.pt"))}
    return ExperimentResult("shared_embedding", run, rows.rows, summary, artifacts)


# ---------------------------------------------------------------------------------- checks
def check_inputs(
    experiment: SharedEmbeddingExperiment,
    methods: list[SharedEmbeddingMethod],
    warmup: EventStream,
) -> dict[str, int]:
    """Everything that would stop the run part-way, checked before anything is written.

    Reads the warm-up only (the stream may be behind the test-data guard): a warm-up too short
    for a validation suffix, ``mse`` on a stream without ratings, a method without knobs, and
    every method's model and trainer built once (an unknown base model, a model option it does
    not have, a table optimiser the model or the method's tables cannot use).

    Returns:
        Distinct IDs per field in the warm-up (what size grids are shares of).

    Raises:
        DataError: the stream cannot serve the experiment (too short, no ratings).
        ValueError: a setting no method or model can run with (the method is named).
    """
    plan = warmup.plan(
        size=experiment.chunk_size, warmup_fraction=1 - experiment.validation_fraction
    )
    if not any(not c.warmup for c in plan) or not any(c.warmup for c in plan):
        raise DataError(
            f"{warmup.name!r}: the warm-up ({len(warmup)} events, warmup_fraction "
            f"{experiment.warmup_fraction:g}) is too short to split into a training prefix and "
            f"a validation suffix (validation_fraction {experiment.validation_fraction:g}) of "
            f"chunks of {experiment.chunk_size} events; use a longer stream (max_events), a "
            "larger warmup_fraction or a smaller chunk_size"
        )
    if "mse" in experiment.objectives and warmup.rating is None:
        raise DataError(
            f"{warmup.name!r} has no ratings, so objective 'mse' has no target; its events "
            "have labels only: use objective 'bce' (CLI: --objectives bce)"
        )
    distinct = warmup_ids(FIELDS, {f: warmup.ids[f].codes for f in FIELDS})
    seed = experiment.seeds[0] if experiment.seeds else 0
    for method in methods:
        knobs = method.knobs(dataclasses.asdict(experiment))
        if not knobs:
            raise ValueError(f"method {method.name!r} has an empty knob grid")
        try:
            for objective in experiment.objectives:
                _build(experiment, distinct, method, knobs[0], seed, objective)
        except (ValueError, TypeError, KeyError) as error:
            message = str(error.args[0] if error.args else repr(error))
            if "row optimisers" in message:  # NeuMF, or tables that are no GrowingEmbedding
                message += (
                    "; the table optimisers 'adagrad' (the default) and 'adam' work with every "
                    "base model and table (--trainer_table_optimizer adagrad)"
                )
            raise ValueError(
                f"method {method.name!r} on base model {experiment.model!r}: {message}"
            ) from error
    return distinct


def check_resumable(experiment: SharedEmbeddingExperiment) -> None:
    """Refuse to resume in a run directory whose rows were run with other settings.

    A rerun may only change :data:`RESUMABLE_CHANGES`; a stored row with another stream,
    model, grid, agent or trainer would be skipped as done and mixed into the new table.
    Reads ``config.json``, ``rows.json`` and ``warmup_scores.json``; writes nothing
    (:func:`leanrec.runner.resume.check_resumable`).

    Raises:
        ValueError: the directory holds rows and its ``config.json`` differs (the settings and
            both values are named), or that file cannot be read.
    """
    resume.check_resumable(
        experiment,
        experiment.out_dir,
        defaults=SharedEmbeddingExperiment(),
        resumable=RESUMABLE_CHANGES + _grown_grids(experiment),
        row_files=("rows.json", "warmup_scores.json"),
    )


GROWABLE_GRIDS = ("threshold_grid", "hierarchy_grid", "size_grid", "levels_grid")
"""Knob grids a rerun may extend: rows and warm-up scores are keyed by knob, so a stored row of
a knob still in the grid is the same row; a grid that drops or changes a knob is refused."""


def _grown_grids(experiment: SharedEmbeddingExperiment) -> tuple[str, ...]:
    """The grids of :data:`GROWABLE_GRIDS` that ``experiment`` extends (every stored knob kept,
    in order, new knobs after them) over the run directory's ``config.json``."""
    path = Path(experiment.out_dir) / "config.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return ()  # no readable settings: resume.check_resumable says so, or nothing is stored
    grown = []
    for name in GROWABLE_GRIDS:
        before, now = stored.get(name), list(getattr(experiment, name))
        if isinstance(before, list) and len(now) > len(before) and now[: len(before)] == before:
            grown.append(name)
    return tuple(grown)


# ---------------------------------------------------------------------------------- one model
def _build(
    experiment: SharedEmbeddingExperiment,
    distinct: dict[str, int],
    method: SharedEmbeddingMethod,
    knob: float,
    seed: int,
    objective: str,
) -> AssigningTrainer:
    """A fresh stream model with the method's tables and assigner, and its trainer."""
    generator = torch.Generator().manual_seed(seed)
    side = side_groups(experiment)
    context = BuildContext(
        FIELDS, distinct, experiment.init_std, seed, generator, experiment.agent,
        groups={} if side is None else side.sizes,
    )  # fmt: skip
    model = build_stream_model(
        experiment.model,
        FIELDS,
        embedding_dim=experiment.embedding_dim,
        seed=seed,
        table_factory=method.tables(knob, context),
        **experiment.model_options,
    )
    model.generator = generator  # the tables' generator: its state travels in checkpoints
    config = dataclasses.replace(experiment.trainer, objective=objective, seed=seed)  # type: ignore[arg-type]
    return AssigningTrainer(model, config, method.assigner(knob, context, model))


def _choose(
    scores: RowStore, method: str, knobs: tuple[float, ...], seed: int, objective: str
) -> float:
    """The knob with the best warm-up score (every knob is scored by then); ties: the first."""
    best: tuple[float, float] | None = None
    for knob in knobs:
        row = scores.get(objective=objective, method=method, knob=knob, seed=seed)
        assert row is not None, f"no warm-up score for {method} {knob:g} seed {seed}"
        if best is None or row["score"] > best[1]:
            best = (knob, row["score"])
    assert best is not None
    return best[0]


# ---------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class WarmupJob:
    """One knob scored on the warm-up's validation suffix (its ``warmup_scores.json`` row)."""

    objective: str
    method: str
    knob: float
    seed: int


@dataclass(frozen=True)
class RowJob:
    """One row: a fresh model of (objective, method, knob, seed) over the whole stream."""

    objective: str
    method: str
    knob: float
    seed: int
    chosen: bool
    """Whether the knob is the method's warm-up choice for this seed and objective."""
    warmup_score: float | None
    """The knob's warm-up score, recorded in the row."""

    @property
    def tag(self) -> str:
        """``<objective>-<method>-<knob>-seed<seed>``: the row's log prefix and checkpoint
        folder."""
        return row_tag(self, ROW_KEY)


class WarmupScorer(SharedStreamRunner[SharedEmbeddingExperiment]):
    """Scores :class:`WarmupJob` s: train on the warm-up's prefix, score its suffix
    prequentially. Picklable (an executor job): it carries the experiment, the warm-up by
    reference (:class:`~leanrec.runner.executors.Shared`) and the warm-up's ID counts."""

    def __init__(
        self, experiment: SharedEmbeddingExperiment, warmup: Shared[EventStream],
        distinct: dict[str, int],
    ) -> None:  # fmt: skip
        super().__init__(experiment, warmup)
        self.distinct = distinct

    def __call__(self, job: WarmupJob) -> dict[str, Any]:
        experiment = self.experiment
        warmup = self.open_stream()
        plan = warmup.plan(
            size=experiment.chunk_size, warmup_fraction=1 - experiment.validation_fraction
        )
        method = METHODS[job.method]
        trainer = _build(experiment, self.distinct, method, job.knob, job.seed, job.objective)
        total = run_stream(warmup, plan, trainer).summary()["total"]
        value = total["auc"] if job.objective == "bce" else total["mse"]
        score = -math.inf if value is None else (value if job.objective == "bce" else -value)
        return {**row_key(job, ROW_KEY), "score": score, "validation": total}


class RowRunner(StreamRowRunner[SharedEmbeddingExperiment, RowJob, SharedEmbeddingMethod]):
    """Runs :class:`RowJob` s: the whole stream, test-then-train, checkpointing under the run
    directory so that a killed job resumes mid-stream (:class:`StreamRowRunner`); returns the
    row. The first seed's chosen ``autoassign`` model is saved there too.

    Args:
        distinct: distinct IDs per field in the warm-up (what size knobs are shares of).
    """

    methods = METHODS

    def __init__(
        self, experiment: SharedEmbeddingExperiment, stream: Shared[EventStream], run_path: str,
        log: Log | None, distinct: dict[str, int],
    ) -> None:  # fmt: skip
        super().__init__(experiment, stream, run_path, log)
        self.distinct = distinct

    def stream_row(
        self, job: RowJob, method: SharedEmbeddingMethod, stream: EventStream, row: StreamRow
    ) -> dict[str, Any]:
        experiment = self.experiment
        trainer = _build(experiment, self.distinct, method, job.knob, job.seed, job.objective)

        def progress(chunk: Chunk, record: PrequentialRecord) -> None:
            if row.due(chunk.index):
                row.log(f"chunk {chunk.index + 1}, {record.memory_bytes[-1]} embedding bytes")

        with final_evaluation():
            plan = stream.plan(
                size=experiment.chunk_size, warmup_fraction=experiment.warmup_fraction
            )
            record = run_stream(
                stream, plan, trainer, checkpoint_dir=row.checkpoints,
                checkpoint_every=experiment.checkpoint_every, on_chunk_end=progress,
            )  # fmt: skip
            summary = record.summary()
            cold = _cold_metrics(record)
            raw_ids = {f: stream.ids[f].raw_ids for f in FIELDS}
        report = trainer.bytes_report()
        if method.name == "autoassign" and job.chosen and job.seed == experiment.seeds[0]:
            sizes = {f: trainer.model.id_tables()[f].num_embeddings for f in FIELDS}
            save_stream_model(
                trainer.model, file_in(self.run_path, f"model_autoassign_{job.objective}.pt"),
                name=experiment.model, embedding_dim=experiment.embedding_dim,
                options=experiment.model_options, objective=job.objective,
                rating_offset=trainer.rating_offset,
                raw_ids={f: raw_ids[f][: sizes[f]].tolist() for f in FIELDS},
            )  # fmt: skip
        trace = summary["memory"]
        step = max(1, len(trace["bytes"]) // TRACE_POINTS)
        return {
            **row_key(job, ROW_KEY),
            "knob_name": method.knob_name,
            "chosen": job.chosen,
            "warmup_score": job.warmup_score,
            "max_bytes": (
                experiment.agent.max_bytes if method.name.startswith("autoassign") else None
            ),
            "total": summary["total"],
            "cold": cold,
            "buckets": summary["buckets"]["either"],
            "buckets_by_view": summary["buckets"],
            "bytes": report,
            "max_embedding_bytes": max(b for b in trace["bytes"] if b is not None),
            "bytes_trace": {"events": trace["events"][::step], "bytes": trace["bytes"][::step]},
            "positions": _positions(trainer),
            "evaluated_events": summary["evaluated_events"],
            "events_per_second": summary["timing"]["events_per_second"],
        }


def _cold_metrics(record: PrequentialRecord) -> dict[str, Any]:
    """Metrics over events whose user or item had fewer than 5 earlier events."""
    data = record.arrays()
    cold = data["either"] < COLD_BELOW
    return event_metrics(
        data["label"][cold], data["probability"][cold], data["rating"][cold],
        data["rating_prediction"][cold],
    )  # fmt: skip


def _positions(trainer: AssigningTrainer) -> dict[str, list[int]]:
    """IDs per position (0 unseen, levels, unique) of each hierarchical ``d``-wide table."""
    out = {}
    for name, table in trainer.model.id_tables().items():
        counts = getattr(table, "position_counts", None)
        if counts is not None and "." not in name:
            out[name] = counts().tolist()
    return out


# ---------------------------------------------------------------------------------- summary
METRICS = ("auc", "log_loss", "accuracy", "mse")


def _aggregate(members: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **{m: mean_sd([r["total"][m] for r in members]) for m in METRICS},
        "cold_auc": mean_sd([r["cold"]["auc"] for r in members]),
        "end_bytes": mean_sd([r["bytes"]["embedding"] for r in members]),
        "agent_bytes": mean_sd([r["bytes"].get("agent", 0) for r in members]),
        "events_per_second": mean_sd([r["events_per_second"] for r in members]),
        "bucket_auc": {b: mean_sd([r["buckets"][b]["auc"] for r in members]) for b in BUCKETS},
        "bucket_events": {b: members[0]["buckets"][b]["n"] for b in BUCKETS},
        "cold_events": members[0]["cold"]["n"],
        "seeds": sorted(r["seed"] for r in members),
    }


def summarise(rows: list[dict[str, Any]], experiment: SharedEmbeddingExperiment) -> dict[str, Any]:
    """Mean ± sd over seeds per (objective, method, knob) — the curves — and per (objective,
    method) over the rows of the knob chosen on each seed's warm-up — the table."""
    curves: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    chosen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        curves.setdefault((row["objective"], row["method"], row["knob"]), []).append(row)
        if row["chosen"]:
            chosen.setdefault((row["objective"], row["method"]), []).append(row)
    return {
        "dataset": experiment.dataset,
        "model": experiment.model,
        "chosen": [
            {
                "objective": o,
                "method": m,
                "knobs": sorted({r["knob"] for r in members}),
                "knob_name": members[0]["knob_name"],
                **_aggregate(members),
            }
            for (o, m), members in chosen.items()
        ],
        "curves": [
            {"objective": o, "method": m, "knob": k, **_aggregate(members)}
            for (o, m, k), members in sorted(curves.items())
        ],
        "rows": len(rows),
        "config": jsonable(experiment),
    }


def markdown_table(summary: dict[str, Any], experiment: SharedEmbeddingExperiment) -> str:
    """One table per objective, one line per method at its warm-up-chosen knob."""
    lines = [f"{summary['dataset']}, {summary['model']} d = {experiment.embedding_dim}: "
             "prequential figures over the evaluated stream (after the warm-up)\n"]  # fmt: skip
    for objective in experiment.objectives:
        cells = [c for c in summary["chosen"] if c["objective"] == objective]
        reference = next((c for c in cells if c["method"] == "all_unique"), None)
        lines.append(f"**objective {objective}**\n")
        lines.append("| method | knob | AUC | log loss | accuracy | MSE | AUC, < 5 events | "
                     "end embedding bytes | vs all-unique | agent bytes | events/s |")  # fmt: skip
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for cell in cells:
            knob = ", ".join(f"{k:g}" for k in cell["knobs"]) if cell["knob_name"] else "–"
            end = cell["end_bytes"]["mean"]
            ratio = (
                f"{end / reference['end_bytes']['mean']:.2f}x"
                if reference is not None and end is not None and reference["end_bytes"]["mean"]
                else "–"
            )
            figures = [format_mean_sd(cell[m]) for m in (*METRICS, "cold_auc")]
            costs = [format_mean_sd(cell["end_bytes"], 0), ratio,
                     format_mean_sd(cell["agent_bytes"], 0),
                     format_mean_sd(cell["events_per_second"], 0)]  # fmt: skip
            row = [cell["method"], f"{cell['knob_name'] or ''} {knob}", *figures, *costs]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)


def _plot(
    run: RunDirectory, summary: dict[str, Any], experiment: SharedEmbeddingExperiment
) -> None:
    objective = "bce" if "bce" in experiment.objectives else experiment.objectives[0]
    metric = "auc"
    curves = [c for c in summary["curves"] if c["objective"] == objective]
    if not curves:
        return
    with run.figure("auc_vs_bytes.png", size=(6.0, 4.5)) as (_fig, axes):
        axis = axes[0, 0]
        for method in experiment.methods:
            points = sorted(
                (c["end_bytes"]["mean"], c[metric]["mean"])
                for c in curves
                if c["method"] == method and c[metric]["mean"] is not None
            )
            if points:
                axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        axis.set_xscale("log")
        axis.set_xlabel("end-of-stream embedding bytes")
        axis.set_ylabel(f"prequential {metric.upper()} ({objective})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    chosen = [c for c in summary["chosen"] if c["objective"] == objective]
    with run.figure("bucket_auc.png", size=(6.0, 4.5)) as (_fig, axes):
        axis = axes[0, 0]
        for cell in chosen:
            values = [cell["bucket_auc"][b]["mean"] for b in BUCKETS]
            axis.plot(range(len(BUCKETS)), [np.nan if v is None else v for v in values],
                      marker="o", label=cell["method"])  # fmt: skip
        axis.set_xticks(range(len(BUCKETS)), [f"{b}" for b in BUCKETS])
        axis.set_xlabel("earlier events of the colder of user and item")
        axis.set_ylabel(f"AUC ({objective})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)


__all__ = [
    "DATASETS",
    "RESUMABLE_CHANGES",
    "ROW_KEY",
    "check_inputs",
    "check_resumable",
    "load_stream",
    "markdown_table",
    "run_experiment",
    "summarise",
]
