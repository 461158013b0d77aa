"""The adaptive architecture against its baselines on one stream cut into sessions.

``leanrec experiment adaptive --dataset ml-1m-partial``. For every seed:

1. **Warm-up only: the headline λ.** Fixed-large and the controller at every ``λ`` of
   ``lambda_grid`` run over the warm-up's sessions alone (the first only learnt, the others
   scored prequentially; ``warmup_scores.json``). The headline ``λ`` is the largest whose
   warm-up AUC is within ``auc_tolerance`` (relative) of fixed-large's: the most frugal
   controller that keeps fixed-large's accuracy where it can be checked without the evaluated
   stream. When none is, the ``λ`` of the best warm-up AUC.
2. **The evaluated stream**, inside :func:`~leanrec.runner.final.final_evaluation`: every
   method runs the whole stream, warm-up sessions first (the controller acts and learns there:
   its pretraining), then the evaluated sessions, each decided at its start and scored
   prequentially. With ``sweep`` the controller also runs at every other ``λ`` of the grid
   (the accuracy-size curve; it chooses nothing).

Rows (``rows.json``) are keyed ``(method, penalty, seed)`` (``penalty`` is ``λ``; None for the
methods it does not change) and hold per evaluated session the AUC, log loss, the tower's
widths and parameter count, the whole model's bytes, the decision and its seconds. A running
row checkpoints after every session under ``checkpoints/``; a killed run resumes there and ends
with the same rows. A rerun with other settings than the stored rows' (beyond
:data:`RESUMABLE_CHANGES`) is refused before anything is written.

Outputs: ``config.json``, ``warmup_scores.json``, ``rows.json``, ``results.json``,
``table.md``, ``auc_vs_parameters.png`` (the accuracy-size plane: every method, the ``λ``
sweep, the line through fixed-small and fixed-large), ``sessions.png`` (AUC and parameters per
session of each method), ``choices.png`` (the controller's widths per session); artefact:
``model_adaptive.pt``, the first seed's adaptive model at its headline ``λ`` after the last
session (:func:`leanrec.models.load_model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.events import EventStream
from leanrec.evaluate.prequential import event_metrics
from leanrec.models.stream_io import save_stream_model
from leanrec.runner.aggregate import format_mean_sd, mean_sd
from leanrec.runner.executors import Shared, search_executor
from leanrec.runner.final import final_evaluation
from leanrec.runner.resume import check_resumable
from leanrec.runner.rundir import Log, RowStore, RunDirectory, file_in, jsonable
from leanrec.runner.stream_rows import (
    SharedStreamRunner,
    StreamRow,
    StreamRowRunner,
    remove_empty_checkpoints,
    row_key,
    row_tag,
)
from leanrec.search.adaptive.baselines import METHODS, AdaptiveMethod
from leanrec.search.adaptive.config import AdaptiveExperiment
from leanrec.search.adaptive.session import RunResult, run_sessions, session_plan
from leanrec.search.adaptive.tower import (
    FIELDS,
    reference_parameters,
    tower_options,
    widths_of,
)
from leanrec.search.base import ExperimentResult
from leanrec.search.streams import DATASETS, load_events

ROW_KEY = ("method", "penalty", "seed")
RESUMABLE_CHANGES = (
    "out_dir", "data_dir", "methods", "seeds", "sweep", "log_every", "num_threads", "executor",
    "executor_cpus_per_job",
)  # fmt: skip
"""Settings a rerun in an existing run directory may change: they add rows (methods, seeds,
the λ sweep) or change nothing in them; any other change is refused before anything is
written (:func:`~leanrec.runner.resume.check_resumable`)."""
MODEL_ARTIFACT = "model_adaptive.pt"


def load_stream(experiment: AdaptiveExperiment) -> EventStream:
    """The dataset's events in time order (``ml-1m`` reads the timestamped copy)."""
    return load_events(experiment.dataset, experiment.data_dir)


def run_experiment(
    experiment: AdaptiveExperiment,
    log: Log = print,
    stream: EventStream | None = None,
    warmup: EventStream | None = None,
) -> ExperimentResult:
    """Run (or resume) every row of ``experiment`` in ``experiment.out_dir``.

    Args:
        stream: replaces the registry dataset (e.g. a synthetic stream in tests).
        warmup: the warm-up prefix ``stream[0:W]`` (default: cut from ``stream``). Give it
            when ``stream`` is behind :func:`~leanrec.runner.final.guard_test_data`: every
            choice reads the warm-up alone; the whole stream is read only in the final
            evaluation.

    Returns:
        The rows, the summary (``results.json``) and the adaptive model as artefact.
    """
    if experiment.num_threads:
        torch.set_num_threads(experiment.num_threads)
    methods = METHODS.resolve(experiment.methods)
    check_resumable(experiment, experiment.out_dir, AdaptiveExperiment(), RESUMABLE_CHANGES,
                    ("rows.json", "warmup_scores.json"))  # fmt: skip
    run = RunDirectory(experiment.out_dir, config=experiment, log=log)
    if stream is None:
        stream = load_stream(experiment)
    if warmup is None:
        warmup = stream[0 : stream.warmup_size(experiment.warmup_fraction)]
    reference = reference_parameters(experiment)
    run.log(f"{experiment.dataset}: warm-up of {len(warmup)} events in "
            f"{experiment.warmup_sessions} sessions; fixed-large tower {reference} "
            "parameters")  # fmt: skip
    rows = run.rows(ROW_KEY)
    scores = run.rows(ROW_KEY, name="warmup_scores.json")
    bases = list(dict.fromkeys(m.penalty_from for m in methods if m.uses_penalty))
    with search_executor(
        experiment.executor, experiment.executor_cpus_per_job, desc="adaptive rows"
    ) as executor:
        here = executor.in_process
        # 1. every warm-up run the λ choices read (the cached ones are not run again)
        needed = list(dict.fromkeys(
            WarmupJob(name, penalty, seed)
            for seed in experiment.seeds
            for base in bases
            for name, penalty in [("fixed_large", None)]
            + [(base, p) for p in METHODS[base].lambda_grid(experiment)]
            if scores.get(method=name, penalty=penalty, seed=seed) is None
        ))  # fmt: skip
        if needed:
            shared_warmup = executor.share(warmup)
            if not here:
                run.log(f"{len(needed)} warm-up runs on {executor!r}")

            def scored(index: int, row: dict[str, Any]) -> None:
                scores.add(row)
                share = _round(row["parameter_share"])
                run.log(f"warm-up {row['method']} λ={row['penalty']} seed {row['seed']}: "
                        f"AUC {_round(row['auc'])}, parameter share {share}")  # fmt: skip

            executor.map(WarmupRunner(experiment, shared_warmup, reference), needed,
                         on_result=scored)  # fmt: skip
        # 2. the rows over the whole stream
        jobs: list[RowJob] = []
        for seed in experiment.seeds:
            chosen = {base: _choose_penalty(experiment, run, scores, seed, METHODS[base])
                      for base in bases}  # fmt: skip
            for method in methods:
                penalties: tuple[float | None, ...] = (None,)
                headline = chosen.get(method.penalty_from)
                if method.uses_penalty:
                    own = method.penalty_from == method.name
                    penalties = (method.lambda_grid(experiment) if experiment.sweep and own
                                 else (headline,))  # fmt: skip
                for penalty in penalties:
                    if not rows.has(method=method.name, penalty=penalty, seed=seed):
                        jobs.append(RowJob(method.name, penalty, seed, headline))
        if jobs:
            shared_stream = executor.share(stream)
            if not here:
                run.log(f"{len(jobs)} rows on {executor!r}")

            def streamed(index: int, row: dict[str, Any]) -> None:
                rows.add(row)
                run.log(f"{jobs[index].tag}: AUC {_round(row['total']['auc'])}, mean "
                        f"parameters {row['mean_parameters']:.0f}, end widths "
                        f"{row['end_widths']}")  # fmt: skip

            runner = RowRunner(experiment, shared_stream, str(run.path), run.log if here else None,
                               warmup_size=len(warmup), reference=reference)  # fmt: skip
            executor.map(runner, jobs, on_result=streamed)
    remove_empty_checkpoints(run.path)
    summary = summarise(rows.rows, experiment)
    run.write_results(summary)
    run.write_table(markdown_table(summary))
    _plot(run, summary, rows.rows, experiment)
    artifacts = {p.stem: p for p in sorted(run.path.glob("model_*.pt"))}
    return ExperimentResult("adaptive", run, rows.rows, summary, artifacts)


# ---------------------------------------------------------------------------------- warm-up
@dataclass(frozen=True)
class WarmupJob:
    """One warm-up run: a method at one ``λ`` (None: no penalty) and seed."""

    method: str
    penalty: float | None
    seed: int


class WarmupRunner(SharedStreamRunner[AdaptiveExperiment]):
    """Runs :class:`WarmupJob` s over the warm-up sessions; returns the warm-up score row
    (pooled AUC over the scored warm-up sessions, the mean parameter share). Picklable (an
    executor job): the warm-up travels by reference; ``reference`` is fixed-large's tower
    parameters."""

    def __init__(
        self, experiment: AdaptiveExperiment, warmup: Shared[EventStream], reference: int
    ) -> None:
        super().__init__(experiment, warmup)
        self.reference = reference

    def __call__(self, job: WarmupJob) -> dict[str, Any]:
        experiment = self.experiment
        warmup = self.open_stream()
        sessions, plan = session_plan(experiment, warmup, len(warmup), evaluated=False)
        result = run_sessions(experiment, warmup, sessions, plan, METHODS[job.method],
                              job.penalty or 0.0, job.seed, self.reference)  # fmt: skip
        total = result.record.metrics()
        scored = [r for r in result.sessions if r["auc"] is not None]
        return {
            **row_key(job, ROW_KEY),
            "auc": total["auc"],
            "log_loss": total["log_loss"],
            "parameter_share": float(np.mean([r["parameter_share"] for r in scored]))
            if scored else None,
            "widths": [r["widths"] for r in result.sessions],
        }  # fmt: skip


def _choose_penalty(
    experiment: AdaptiveExperiment,
    run: RunDirectory,
    scores: RowStore,
    seed: int,
    adaptive: AdaptiveMethod,
) -> float:
    """The headline ``λ`` of ``adaptive`` on ``seed`` (see the module docstring), from the
    warm-up runs alone (already in ``scores``), over the method's own grid."""
    large = scores.get(method="fixed_large", penalty=None, seed=seed)
    assert large is not None
    tried = []
    for penalty in adaptive.lambda_grid(experiment):
        score = scores.get(method=adaptive.name, penalty=penalty, seed=seed)
        assert score is not None
        tried.append((penalty, score["auc"] or 0.0))
    chosen = headline_penalty(large["auc"] or 0.0, tried, experiment.auc_tolerance)
    run.log(f"seed {seed}: headline λ of {adaptive.name} = {chosen:g} (fixed-large warm-up AUC "
            f"{_round(large['auc'])}, tolerance {experiment.auc_tolerance:g})")  # fmt: skip
    return chosen


def headline_penalty(large_auc: float, tried: list[tuple[float, float]], tolerance: float) -> float:
    """The largest ``λ`` of ``tried`` (``(λ, warm-up AUC)`` pairs) whose AUC is at least
    ``(1 − tolerance)`` times fixed-large's; when none is, the ``λ`` of the best AUC (ties:
    the first)."""
    floor = (1.0 - tolerance) * large_auc
    keeping = [penalty for penalty, auc in tried if auc >= floor]
    if keeping:
        return max(keeping)
    return max(tried, key=lambda pair: pair[1])[0]


# ---------------------------------------------------------------------------------- one row
@dataclass(frozen=True)
class RowJob:
    """One row: a method at one ``λ`` (None: no penalty) and seed; ``chosen`` is the headline
    ``λ`` of the method's preset on that seed."""

    method: str
    penalty: float | None
    seed: int
    chosen: float | None

    @property
    def tag(self) -> str:
        """``<method>-<λ or none>-seed<seed>``: the row's log prefix and checkpoint folder."""
        return row_tag(self, ROW_KEY)


class RowRunner(StreamRowRunner[AdaptiveExperiment, RowJob, AdaptiveMethod]):
    """Runs :class:`RowJob` s: the whole stream, session by session, checkpointing under the
    run directory so that a killed job resumes mid-stream (:class:`StreamRowRunner`); returns
    the row. The first seed's headline model of each controller preset is saved there too.

    Args:
        warmup_size: events of the warm-up sessions (the stream's first).
        reference: fixed-large's tower parameters (what parameter shares are of).
    """

    methods = METHODS

    def __init__(
        self, experiment: AdaptiveExperiment, stream: Shared[EventStream], run_path: str,
        log: Log | None, warmup_size: int, reference: int,
    ) -> None:  # fmt: skip
        super().__init__(experiment, stream, run_path, log)
        self.warmup_size = warmup_size
        self.reference = reference

    def stream_row(
        self, job: RowJob, method: AdaptiveMethod, stream: EventStream, row: StreamRow
    ) -> dict[str, Any]:
        experiment = self.experiment

        def progress(session: dict[str, Any]) -> None:
            if row.due(session["session"]):
                row.log(f"session {session['session']}, widths {session['widths']}, "
                        f"AUC {_round(session['auc'])}")  # fmt: skip

        with final_evaluation():
            sessions, plan = session_plan(experiment, stream, self.warmup_size, evaluated=True)
            result = run_sessions(
                experiment, stream, sessions, plan, method, job.penalty or 0.0, job.seed,
                self.reference, checkpoint_dir=row.checkpoints, on_session_end=progress,
            )  # fmt: skip
            evaluated = len(stream) - self.warmup_size
            data = result.record.arrays()
            total = event_metrics(
                data["label"][-evaluated:], data["probability"][-evaluated:],
                data["rating"][-evaluated:], data["rating_prediction"][-evaluated:],
            )  # fmt: skip
            is_chosen = job.penalty == job.chosen or not method.uses_penalty
            own = method.uses_penalty and method.penalty_from == method.name
            if own and is_chosen and job.seed == experiment.seeds[0]:
                path = file_in(self.run_path, f"model_{method.name}.pt")
                _save_model(experiment, path, result, stream)
        return _row(job, is_chosen, result, total)


def _row(job: RowJob, chosen: bool, result: RunResult, total: dict[str, Any]) -> dict[str, Any]:
    evaluated = [r for r in result.sessions if not r["warmup"]]
    aucs = [r["auc"] for r in evaluated if r["auc"] is not None]
    return {
        **row_key(job, ROW_KEY),
        "chosen": chosen,
        "total": total,
        "mean_session_auc": float(np.mean(aucs)) if aucs else None,
        "mean_parameters": float(np.mean([r["parameters"] for r in evaluated])),
        "mean_parameter_share": float(np.mean([r["parameter_share"] for r in evaluated])),
        "end_parameters": evaluated[-1]["parameters"],
        "end_widths": evaluated[-1]["widths"],
        "mean_model_bytes": float(np.mean([r["model_bytes"] for r in evaluated])),
        "end_model_bytes": evaluated[-1]["model_bytes"],
        "session_seconds": [r["seconds"] for r in evaluated],
        "session_cpu_seconds": [r["cpu_seconds"] for r in evaluated],
        "sessions": evaluated,
        "warmup_sessions": [r for r in result.sessions if r["warmup"]],
    }


def _save_model(
    experiment: AdaptiveExperiment, path: Path, result: RunResult, stream: EventStream
) -> None:
    """``model_<method>.pt``: the model after the last session, with its raw IDs and its
    tower's spec, loadable by :func:`leanrec.models.load_model`."""
    model = result.model
    sizes = {f: stream.ids[f].n_ids for f in FIELDS}
    options = {k: list(v) for k, v in tower_options(experiment.model, widths_of(model)).items()}
    save_stream_model(
        model, path, name=experiment.model,
        embedding_dim=experiment.embedding_dim, options=options, objective="bce",
        rating_offset=None,
        raw_ids={f: stream.ids[f].raw_ids[: sizes[f]].tolist() for f in FIELDS},
    )  # fmt: skip


# ---------------------------------------------------------------------------------- summary
def _aggregate(members: list[dict[str, Any]], medium: dict[int, float]) -> dict[str, Any]:
    cost = [
        float(np.mean(r["session_cpu_seconds"])) / medium[r["seed"]]
        for r in members
        if r["seed"] in medium and medium[r["seed"]] > 0
    ]
    return {
        "auc": mean_sd([r["total"]["auc"] for r in members]),
        "log_loss": mean_sd([r["total"]["log_loss"] for r in members]),
        "mean_session_auc": mean_sd([r["mean_session_auc"] for r in members]),
        "mean_parameters": mean_sd([r["mean_parameters"] for r in members]),
        "mean_parameter_share": mean_sd([r["mean_parameter_share"] for r in members]),
        "end_parameters": mean_sd([r["end_parameters"] for r in members]),
        "mean_model_bytes": mean_sd([r["mean_model_bytes"] for r in members]),
        "session_seconds": mean_sd([float(np.mean(r["session_seconds"])) for r in members]),
        "session_cpu_seconds": mean_sd([float(np.mean(r["session_cpu_seconds"])) for r in members]),
        "cpu_time_vs_medium": mean_sd(list(cost)),
        "end_widths": [r["end_widths"] for r in members],
        "seeds": sorted(r["seed"] for r in members),
        "penalties": sorted({r["penalty"] for r in members if r["penalty"] is not None}),
    }


def summarise(rows: list[dict[str, Any]], experiment: AdaptiveExperiment) -> dict[str, Any]:
    """Mean ± sd over seeds per method at its chosen ``λ`` (the table), per (method, λ) (the
    sweep), and the comparison of the adaptive model with fixed-large."""
    medium = {
        r["seed"]: float(np.mean(r["session_cpu_seconds"]))
        for r in rows
        if r["method"] == "fixed_medium"
    }
    chosen: dict[str, list[dict[str, Any]]] = {}
    sweep: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        if row["chosen"]:
            chosen.setdefault(row["method"], []).append(row)
        if row["penalty"] is not None:
            sweep.setdefault((row["method"], row["penalty"]), []).append(row)
    order = [m for m in experiment.methods if m in chosen]
    table = [{"method": m, **_aggregate(chosen[m], medium)} for m in order]
    summary: dict[str, Any] = {
        "dataset": experiment.dataset,
        "model": experiment.model,
        "chosen": table,
        "sweep": [
            {"method": m, "penalty": p, **_aggregate(members, medium)}
            for (m, p), members in sorted(sweep.items())
        ],
        "rows": len(rows),
        "config": jsonable(experiment),
    }
    cells = {c["method"]: c for c in table}
    if "adaptive" in cells and "fixed_large" in cells:
        adaptive, large = cells["adaptive"], cells["fixed_large"]
        if adaptive["auc"]["mean"] is not None and large["auc"]["mean"]:
            summary["adaptive_vs_large"] = {
                "relative_auc_gap": 1.0 - adaptive["auc"]["mean"] / large["auc"]["mean"],
                "parameter_ratio": adaptive["mean_parameters"]["mean"]
                / large["mean_parameters"]["mean"],
            }
    return summary


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def markdown_table(summary: dict[str, Any]) -> str:
    """One line per method at its warm-up-chosen ``λ``."""
    lines = [
        f"{summary['dataset']}, {summary['model']}: prequential figures over the evaluated "
        "sessions (after the warm-up); parameters of the shaped tower, bytes of the whole "
        "model\n",
        "| method | λ | AUC | log loss | mean session AUC | mean tower parameters | "
        "share of fixed-large | mean model bytes | end widths | CPU s/session | CPU vs medium |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in summary["chosen"]:
        penalty = ", ".join(f"{p:g}" for p in cell["penalties"]) or "–"
        figures = [
            format_mean_sd(cell["auc"]),
            format_mean_sd(cell["log_loss"]),
            format_mean_sd(cell["mean_session_auc"]),
            format_mean_sd(cell["mean_parameters"], 0),
            format_mean_sd(cell["mean_parameter_share"], 3),
            format_mean_sd(cell["mean_model_bytes"], 0),
            str(cell["end_widths"][0]),
            format_mean_sd(cell["session_cpu_seconds"], 2),
            format_mean_sd(cell["cpu_time_vs_medium"], 2),
        ]
        lines.append(f"| {cell['method']} | {penalty} | " + " | ".join(figures) + " |")
    versus = summary.get("adaptive_vs_large")
    if versus is not None:
        lines.append(
            f"\nadaptive vs fixed-large: AUC {100 * versus['relative_auc_gap']:.2f}% lower "
            f"(relative), {100 * versus['parameter_ratio']:.1f}% of its mean tower parameters"
        )
    return "\n".join(lines) + "\n"


def _plot(
    run: RunDirectory,
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    experiment: AdaptiveExperiment,
) -> None:
    cells = [c for c in summary["chosen"] if c["auc"]["mean"] is not None]
    if not cells:
        return
    with run.figure("auc_vs_parameters.png", size=(6.0, 4.5)) as (_fig, axes):
        axis = axes[0, 0]
        for cell in cells:
            axis.scatter(cell["mean_parameters"]["mean"], cell["auc"]["mean"], label=cell["method"])
        curve = sorted(
            (c["mean_parameters"]["mean"], c["auc"]["mean"], c["penalty"])
            for c in summary["sweep"]
            if c["method"] == "adaptive" and c["auc"]["mean"] is not None
        )
        if curve:
            axis.plot([c[0] for c in curve], [c[1] for c in curve], "k:", label="adaptive λ sweep")
            for x, y, penalty in curve:
                axis.annotate(f"λ={penalty:g}", (x, y), fontsize=6)
        ends = {c["method"]: c for c in cells}
        if "fixed_small" in ends and "fixed_large" in ends:
            small, large = ends["fixed_small"], ends["fixed_large"]
            axis.plot(
                [small["mean_parameters"]["mean"], large["mean_parameters"]["mean"]],
                [small["auc"]["mean"], large["auc"]["mean"]], "--", color="grey", lw=0.8,
            )  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel("mean tower parameters over the sessions")
        axis.set_ylabel("prequential AUC")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    first = experiment.seeds[0]
    shown = [r for r in rows if r["chosen"] and r["seed"] == first]
    with run.figure("sessions.png", ncols=2, size=(6.0, 4.0)) as (_fig, axes):
        for row in shown:
            sessions = [s["session"] for s in row["sessions"]]
            axes[0, 0].plot(sessions, [math.nan if s["auc"] is None else s["auc"]
                                       for s in row["sessions"]], label=row["method"])  # fmt: skip
            axes[0, 1].plot(sessions, [s["parameters"] for s in row["sessions"]],
                            label=row["method"])  # fmt: skip
        axes[0, 0].set_ylabel("session AUC")
        axes[0, 1].set_ylabel("tower parameters")
        axes[0, 1].set_yscale("log")
        for axis in axes[0]:
            axis.set_xlabel("session")
            axis.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=7)
    adaptive = [r for r in shown if r["method"] == "adaptive"]
    if adaptive:
        with run.figure("choices.png", size=(6.0, 4.0)) as (_fig, axes):
            axis = axes[0, 0]
            sessions = adaptive[0]["warmup_sessions"] + adaptive[0]["sessions"]
            for layer in range(experiment.controller.max_depth):
                axis.step(
                    [s["session"] for s in sessions],
                    [s["widths"][layer] if layer < len(s["widths"]) else 0 for s in sessions],
                    where="post", label=f"layer {layer + 1}",
                )  # fmt: skip
            axis.axvline(len(adaptive[0]["warmup_sessions"]) - 0.5, color="grey", lw=0.8)
            axis.set_xlabel("session (left of the line: warm-up)")
            axis.set_ylabel("width (0: no layer)")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)


__all__ = [
    "DATASETS",
    "ROW_KEY",
    "headline_penalty",
    "load_stream",
    "markdown_table",
    "run_experiment",
    "summarise",
]
