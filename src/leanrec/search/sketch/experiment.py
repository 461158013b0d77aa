"""DiPS Tables 2-3 layout: every method x K x τ, mean ± std over user splits.

``leanrec experiment sketch --dataset ml-1m`` (explicit, RMSE) or ``--dataset beauty``
(implicit, Recall@20 / MRR@20). For every (seed, τ, K, method) the base model is trained on the
seed's training users with that method's policy in the loop (learned policies are trained
jointly), the epoch is chosen on the validation users, and then, in the final evaluation, the
test users are streamed once. Finished cells are stored in ``rows.json`` as they complete, so a
killed run resumes where it stopped; the cell being trained resumes from its per-epoch
checkpoint under ``cells/``.

The cells are independent jobs of a :class:`~leanrec.runner.Executor` (``executor``:
serial, or one Ray task per cell), each seed's user split stored once for all of its cells.

Outputs in the run directory: ``config.json``, ``rows.json`` (one row per cell), ``results.json``
(mean ± std per method x K x τ, plus the run's configuration), ``table.md`` and
``metric_vs_k.png``; the learned policies of the first seed are saved as
``policy_<method>_K<K>_tau<τ>.pt`` (the result's artefacts).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.own import DataFile
from leanrec.data.registry import load_dataset
from leanrec.data.streams import StreamSplit, UserStreams, user_split
from leanrec.runner.executors import Shared, search_executor
from leanrec.runner.final import final_evaluation
from leanrec.runner.resume import check_resumable
from leanrec.runner.rundir import Log, RowStore, RunDirectory, jsonable
from leanrec.search.base import ExperimentResult
from leanrec.search.sketch.baselines import METHODS
from leanrec.search.sketch.config import SketchExperiment, preset_label
from leanrec.search.sketch.policy_io import save_policy
from leanrec.search.sketch.trainer import evaluate_sketch, train_sketch

DATASETS = {
    # the sketching experiment needs time order: ML-1M's timestamped copy (users 1-2999)
    "ml-1m": "ml-1m-partial",
    "ml-1m-partial": "ml-1m-partial",
    "beauty": "beauty",
    "beauty-s3rec": "beauty-s3rec",
}

ROW_KEY = ("method", "K", "tau", "seed")
"""The fields that identify a cell (a row of ``rows.json``)."""
RESUMABLE_CHANGES = (
    "out_dir", "data_dir", "methods", "seeds", "sketch_sizes", "update_periods", "executor",
    "executor_cpus_per_job", "config.num_threads", "config.progress",
)  # fmt: skip
"""Settings a rerun in an existing run directory may change: where it writes and reads, which
methods, seeds, sketch sizes or update periods are added (they add rows without changing the
stored ones) and how the work is run; any other change is refused before anything is written
(:func:`~leanrec.runner.resume.check_resumable`)."""


def load_streams(dataset: str | DataFile, data_dir: str | None, min_length: int = 2) -> UserStreams:
    """The dataset's per-user streams (``ml-1m`` reads the timestamped ``ml-1m-partial``; a
    file of one's own is read by its own settings)."""
    name = dataset if isinstance(dataset, DataFile) else DATASETS.get(dataset, dataset)
    data = load_dataset(name, data_dir)
    if isinstance(data, tuple):  # a fixed train/test pair: its time order is lost
        raise DataError(
            f"dataset {name!r} comes as a fixed train/test split without time order; "
            f"sketching needs per-user streams (known: {', '.join(sorted(DATASETS))})"
        )
    return UserStreams.from_interactions(data, min_length=min_length)


def run_experiment(
    experiment: SketchExperiment,
    log: Log = print,
    streams: UserStreams | None = None,
    splits: Mapping[int, StreamSplit] | None = None,
) -> ExperimentResult:
    """Run (or resume) every cell of the table in ``experiment.out_dir``.

    Args:
        streams: replaces the registry dataset (e.g. synthetic streams in tests); each seed's
            user split is drawn from it.
        splits: the user split of every seed, replacing both (e.g. with its test users behind
            :func:`~leanrec.runner.final.guard_test_data`).

    Returns:
        The rows, the summary of ``results.json`` and the saved policies as artefacts.
    """
    methods = METHODS.resolve(experiment.methods)
    check_resumable(experiment, experiment.out_dir, SketchExperiment(), RESUMABLE_CHANGES, None)
    run = RunDirectory(experiment.out_dir, config=experiment, log=log)
    split_of, explicit = _user_splits(experiment, run, streams, splits)
    rows = run.rows(ROW_KEY)
    cells = [
        CellJob(method.name, k, tau, seed, run.file(f"cells/{_tag(method.name, k, tau, seed)}.pt"))
        for seed in experiment.seeds
        for tau in experiment.update_periods
        for k in experiment.sketch_sizes
        for method in methods
        if not rows.has(method=method.name, K=k, tau=tau, seed=seed)
    ]
    if cells:
        _run_cells(experiment, run, rows, split_of, cells)
    summary = summarise(rows.rows, explicit)
    summary["preset"] = preset_label(experiment.config)
    summary["config"] = jsonable(experiment)
    run.write_results(summary)
    run.write_table(markdown_table(summary, experiment))
    _plot(run, summary, experiment)
    return ExperimentResult("sketch", run, rows.rows, summary, _saved_policies(run, experiment))


def _user_splits(
    experiment: SketchExperiment,
    run: RunDirectory,
    streams: UserStreams | None,
    splits: Mapping[int, StreamSplit] | None,
) -> tuple[Callable[[int], StreamSplit], bool]:
    """The user split of a seed (given, or drawn from the streams when it is asked for), and
    whether the feedback is explicit."""
    if splits is not None:
        missing = [seed for seed in experiment.seeds if seed not in splits]
        if missing:
            raise ValueError(f"no user split given for seed(s) {missing}")
        first = next(iter(splits.values()))
        # not first.describe(): it counts the test users, read only in the final evaluation
        run.log(
            f"{experiment.dataset}: given user splits, {len(first.train)} training and "
            f"{len(first.valid)} validation users"
        )
        return splits.__getitem__, first.train.explicit
    if streams is None:
        streams = load_streams(experiment.dataset, experiment.data_dir, experiment.min_length)
    run.log(f"{experiment.dataset}: {streams.describe()}")
    whole = streams

    def split_of(seed: int) -> StreamSplit:
        return user_split(whole, experiment.split_ratios, seed=seed)

    return split_of, streams.explicit


@dataclass(frozen=True)
class CellJob:
    """One cell of the table: a method at ``K`` and ``τ`` on one seed's user split."""

    method: str
    k: int
    tau: int
    seed: int
    checkpoint: Path
    """Per-epoch checkpoint of its training (on a cluster: resumable where the run directory
    is on a file system every node sees)."""

    @property
    def tag(self) -> str:
        return _tag(self.method, self.k, self.tau, self.seed)


@dataclass
class CellOutcome:
    """A finished cell: its row of ``rows.json``, and its learned policy (None for a fixed
    one)."""

    row: dict[str, Any]
    scorer: Any | None


class CellTrainer:
    """Job of the experiment: train one :class:`CellJob` on its seed's training users (epoch
    chosen on validation), then stream its test users in the final evaluation.

    Picklable: a Ray task carries the handles of the shared user splits, not the streams.

    Args:
        experiment: the table's settings (the cell's ``K``, ``τ`` and seed replace the config's).
        splits: each seed's user split, by seed.
        log: where a job run in this process writes its lines (the run's log); None: none.
    """

    def __init__(
        self,
        experiment: SketchExperiment,
        splits: Mapping[int, Shared[StreamSplit]],
        log: Log | None = None,
    ) -> None:
        self.experiment = experiment
        self.splits = dict(splits)
        self.log = log

    def __call__(self, cell: CellJob) -> CellOutcome:
        split = self.splits[cell.seed].get()
        config = dataclasses.replace(
            self.experiment.config, sketch_size=cell.k, update_period=cell.tau, seed=cell.seed
        )
        if self.log is not None:
            self.log(f"{cell.tag}: training on {len(split.train)} users")
        began = time.perf_counter()
        method = METHODS[cell.method]
        result = train_sketch(split.train, split.valid, method, config, cell.checkpoint, self.log)
        with final_evaluation():
            test = evaluate_sketch(
                result.model, result.decider(cell.tau == 1), split.test, config, seed=cell.seed
            )
        row = {
            "method": cell.method,
            "K": cell.k,
            "tau": cell.tau,
            "seed": cell.seed,
            "test": test.values,
            "test_events": test.events,
            "max_sketch_length": test.max_sketch_length,
            "valid": result.best_valid,
            "best_epoch": result.best_epoch,
            "history": result.history,
            "seconds": time.perf_counter() - began,
        }
        return CellOutcome(row, result.scorer)


def _run_cells(
    experiment: SketchExperiment,
    run: RunDirectory,
    rows: RowStore,
    split_of: Callable[[int], StreamSplit],
    cells: list[CellJob],
) -> None:
    """Run the cells as jobs of the experiment's executor; store each row (and the first
    seed's learned policies) in cell order as the cells finish."""
    with search_executor(
        experiment.executor, experiment.executor_cpus_per_job, desc="cells"
    ) as executor:
        here = executor.in_process
        seeds = sorted({cell.seed for cell in cells})
        # each seed's split is drawn once and, on Ray, stored once for all of its cells
        splits = {seed: executor.share(split_of(seed)) for seed in seeds}
        if not here:
            run.log(f"{len(cells)} cells on {executor!r}")

        def finished(index: int, outcome: CellOutcome) -> None:
            cell, row = cells[index], outcome.row
            if outcome.scorer is not None and cell.seed == experiment.seeds[0]:
                config = dataclasses.replace(
                    experiment.config, sketch_size=cell.k, update_period=cell.tau, seed=cell.seed
                )
                save_policy(
                    outcome.scorer,
                    config,
                    cell.method,
                    run.file(_policy_name(cell.method, cell.k, cell.tau)),
                )
            shown = ", ".join(f"{name} {value:.4f}" for name, value in row["test"].items())
            run.log(f"{cell.tag}: test {shown} ({row['seconds']:.0f} s)")
            rows.add(row)
            cell.checkpoint.unlink(missing_ok=True)

        trainer = CellTrainer(experiment, splits, run.log if here else None)
        executor.map(trainer, cells, on_result=finished)


def _tag(method: str, k: int, tau: int, seed: int) -> str:
    return f"{method}_K{k}_tau{tau}_seed{seed}"


def _policy_name(method: str, k: int, tau: int) -> str:
    return f"policy_{method}_K{k}_tau{tau}.pt"


def _saved_policies(run: RunDirectory, experiment: SketchExperiment) -> dict[str, Path]:
    """The learned policies the run saved (first seed), by file stem."""
    found = {}
    for method in experiment.methods:
        for tau in experiment.update_periods:
            for k in experiment.sketch_sizes:
                path = run.path / _policy_name(method, k, tau)
                if path.exists():
                    found[path.stem] = path
    return found


def summarise(rows: list[dict[str, Any]], explicit: bool) -> dict[str, Any]:
    """Mean and standard deviation (``ddof = 1``; 0 for one seed) over seeds of every metric,
    per method x K x τ."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["K"], row["tau"]), []).append(row)
    cells = []
    for (method, k, tau), members in sorted(groups.items()):
        metrics = {}
        for name in members[0]["test"]:
            values = np.array([m["test"][name] for m in members])
            metrics[name] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            }
        cells.append(
            {
                "method": method,
                "K": k,
                "tau": tau,
                "seeds": sorted(m["seed"] for m in members),
                "metrics": metrics,
                "seconds_mean": float(np.mean([m["seconds"] for m in members])),
            }
        )
    return {"metric": "rmse" if explicit else "recall@20", "cells": cells, "rows": len(rows)}


def markdown_table(summary: dict[str, Any], exp: SketchExperiment) -> str:
    """Paper layout: one row per (τ, K), one column per method, ``mean ± std``."""
    metric = summary["metric"]
    names = list(summary["cells"][0]["metrics"]) if summary["cells"] else [metric]
    lines = []
    by_key = {(c["method"], c["K"], c["tau"]): c for c in summary["cells"]}
    for name in names:
        best_is_low = name == "rmse"
        lines.append(f"**{name}** (test users; mean ± std over seeds)\n")
        lines.append("| setting | K | " + " | ".join(exp.methods) + " |")
        lines.append("|---|---|" + "---|" * len(exp.methods))
        for tau in exp.update_periods:
            setting = "online (τ = 1)" if tau == 1 else f"batch (τ = {tau})"
            for k in exp.sketch_sizes:
                present = [by_key.get((m, k, tau)) for m in exp.methods]
                means = [c["metrics"][name]["mean"] for c in present if c is not None]
                if not means:
                    continue
                best = min(means) if best_is_low else max(means)
                cells = []
                for cell in present:
                    if cell is None:
                        cells.append("—")
                        continue
                    mean, std = cell["metrics"][name]["mean"], cell["metrics"][name]["std"]
                    text = f"{mean:.4f} ± {std:.4f}"
                    cells.append(f"**{text}**" if math.isclose(mean, best) else text)
                lines.append(f"| {setting} | {k} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _plot(run: RunDirectory, summary: dict[str, Any], exp: SketchExperiment) -> None:
    metric = summary["metric"]
    cells = {
        (c["method"], c["K"], c["tau"]): (c["metrics"][metric]["mean"], c["metrics"][metric]["std"])
        for c in summary["cells"]
    }
    label = str(exp.dataset)
    plot_metric_vs_k(run.path / "metric_vs_k.png", cells, metric, label, list(exp.methods))


def plot_metric_vs_k(
    path: Path,
    cells: dict[tuple[str, int, int], tuple[float, float]],
    metric: str,
    dataset: str,
    methods: list[str] | None = None,
) -> None:
    """Test metric against ``K``, one panel per ``τ``, one line per policy (mean ± std), saved
    as ``path`` (through :meth:`~leanrec.runner.rundir.RunDirectory.figure`).

    Args:
        cells: ``(method, K, τ) -> (mean, std)`` over the user splits.
        methods: line order (None: sorted); methods without cells are skipped.
    """
    taus = sorted({tau for _, _, tau in cells})
    ks = sorted({k for _, k, _ in cells})
    figures = RunDirectory(Path(path).parent, log=None)
    with figures.figure(Path(path).name, ncols=max(1, len(taus))) as (fig, axes):
        for axis, tau in zip(axes[0], taus, strict=False):
            for method in methods or sorted({m for m, _, _ in cells}):
                points = sorted(
                    (k, v) for (m, k, t), v in cells.items() if m == method and t == tau
                )
                if not points:
                    continue
                axis.errorbar(
                    [k for k, _ in points],
                    [v[0] for _, v in points],
                    yerr=[v[1] for _, v in points],
                    marker="o",
                    capsize=3,
                    label=method,
                )
            axis.set_xscale("log", base=2)
            axis.set_xticks(ks, [str(k) for k in ks])
            axis.set_xlabel("sketch size K")
            axis.set_ylabel(f"test {metric}")
            axis.set_title("online (τ = 1)" if tau == 1 else f"batch (τ = {tau})")
            axis.grid(alpha=0.3)
            axis.legend()
        fig.suptitle(f"{dataset}: next-event quality from a K-item sketch")


__all__ = [
    "DATASETS",
    "ROW_KEY",
    "load_streams",
    "markdown_table",
    "plot_metric_vs_k",
    "run_experiment",
    "summarise",
]
