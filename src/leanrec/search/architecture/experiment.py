"""AMEIR's experiments: one entry point, :func:`run_experiment`, for both of its tables.

* :class:`~leanrec.search.architecture.config.ArchitectureExperiment`: Tables 1 and 4 on
  ML-1M CTR (``leanrec experiment architecture --dataset ml-1m-ctr``), run here;
* :class:`~leanrec.search.architecture.config.RetrievalExperiment`: Table 2 on Amazon Beauty
  next-item retrieval (``--dataset beauty``), run by :mod:`.retrieval_experiment`.

The CTR table: for every seed, each hand-designed baseline is trained (early stopping on
validation AUC). The best baseline by mean validation AUC, over every seed with all baseline
rows (not only this run's: a run of one seed is capped by the same baseline as the whole
table), gives the parameter budget, its smallest parameter count. Every search then runs with
``max_parameters`` set to that budget, so a searched model is never larger: AMEIR's three-step
search, single-stage one-shot random search (the same one-shot epochs and scored children) and
random search from scratch (AMEIR's wall time or one-shot samples of that seed). Each finished
model is scored on test once, inside :func:`~leanrec.runner.final.final_evaluation`: test
samples never choose anything.

Every finished ``(method, seed)`` row is stored in ``rows.json`` at once (a killed run resumes
after the last finished model; AMEIR's search resumes inside itself too). Outputs:
``rows.json``, ``results.json`` (mean ± std per method, the best baseline and the budget),
``table.md``, ``auc.png``, and AMEIR's ``architecture_seed<k>.json`` and
``ameir_seed<k>/model.pt``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from leanrec.data.behavior import BehaviorSamples, BehaviorSplit
from leanrec.data.registry import load_behavior_dataset
from leanrec.data.sequential import NextItemSplit
from leanrec.models.ctr.base import CTRModel
from leanrec.runner.final import final_evaluation
from leanrec.runner.resume import check_resumable
from leanrec.runner.rundir import Log, RowStore, RunDirectory, jsonable
from leanrec.search.architecture.baselines import (
    METHODS,
    CTRCell,
    CTRMethod,
    FittedModel,
    resolve_methods,
)
from leanrec.search.architecture.config import (
    ArchitectureExperiment,
    RetrievalExperiment,
    preset_label,
)
from leanrec.search.architecture.results import (
    RESUMABLE_CHANGES,
    ROW_KEY,
    artifacts_of,
    bar_plot,
    completed_seeds,
    summarise,
)
from leanrec.search.architecture.retrieval_experiment import run_retrieval_experiment
from leanrec.search.base import ExperimentResult
from leanrec.train.pointwise import evaluate_ctr, predict_ctr

METRICS = (
    "test_auc",
    "test_logloss",
    "valid_auc",
    "parameters",
    "inference_samples_per_second",
    "search_seconds",
    "train_seconds",
)
"""The row fields ``results.json`` averages per method."""


def run_experiment(
    experiment: ArchitectureExperiment | RetrievalExperiment,
    log: Log = print,
    split: BehaviorSplit | None = None,
    splits: Callable[[int], tuple[NextItemSplit, NextItemSplit]] | None = None,
) -> ExperimentResult:
    """Run (or resume) every row of ``experiment``'s table; see the module docstring.

    Args:
        experiment: the CTR table (Tables 1 and 4) or the next-item table (Table 2).
        log: where stage lines go (besides the run's ``run.log``).
        split: CTR only: behaviour samples replacing the registry dataset (e.g. in tests).
        splits: next-item only: ``splits(seed)`` gives the split of the report protocol and
            the same split with the other kind of negatives, replacing the registry dataset.
    """
    if isinstance(experiment, RetrievalExperiment):
        if split is not None:
            raise TypeError("a next-item experiment takes splits=, not split=")
        return run_retrieval_experiment(experiment, log, splits)
    if splits is not None:
        raise TypeError("a CTR experiment takes split=, not splits=")
    return run_architecture_experiment(experiment, log, split)


def run_architecture_experiment(
    experiment: ArchitectureExperiment,
    log: Log = print,
    split: BehaviorSplit | None = None,
) -> ExperimentResult:
    """The CTR table (see the module docstring); ``split`` replaces the registry dataset."""
    baselines = resolve_methods(METHODS, experiment.baselines, searches=False)
    searches = resolve_methods(METHODS, experiment.methods, searches=True)
    check_resumable(
        experiment, experiment.out_dir, ArchitectureExperiment(), RESUMABLE_CHANGES, None
    )
    run = RunDirectory(experiment.out_dir, config=experiment, log=log)
    if split is None:
        split = load_behavior_dataset(experiment.dataset, experiment.data_dir)
    run.log(f"{experiment.dataset}: {selection_parts(split)}")
    rows = run.rows(key=ROW_KEY)
    if experiment.config.num_threads:
        torch.set_num_threads(experiment.config.num_threads)
    _fit_rows(experiment, split, baselines, None, run, rows)
    best_baseline, budget = parameter_budget(rows, experiment, run.log)
    _fit_rows(experiment, split, searches, budget, run, rows)
    methods = [*experiment.baselines, *experiment.methods]
    summary = summarise(rows.rows, methods, experiment.seeds, METRICS)
    summary["best_baseline"] = best_baseline
    summary["parameter_budget"] = budget
    summary["preset"] = preset_label(experiment.config)
    summary["config"] = jsonable(experiment)
    run.write_results(summary)
    run.write_table(markdown_table(summary))
    bar_plot(
        run,
        "auc.png",
        summary,
        "test_auc",
        ylabel="test AUC (mean ± std over seeds)",
        title="ML-1M CTR: hand-designed models vs architecture search",
        width_per_method=1.1,
        margins=(0.003, 0.002),
    )
    artifacts = artifacts_of(searches, run, experiment.seeds)
    return ExperimentResult("architecture", run, rows.rows, summary, artifacts)


def selection_parts(split: BehaviorSplit) -> dict[str, float | int]:
    """Sample counts and positive rates of the parts that train and select (for the log; the
    test part is read in the final evaluation only)."""
    out: dict[str, float | int] = {}
    for part, samples in (("train", split.train), ("valid", split.valid)):
        out[f"{part}_samples"] = len(samples)
        out[f"{part}_positive_rate"] = float(samples.labels.mean()) if len(samples) else 0.0
    return out


def _fit_rows(
    experiment: ArchitectureExperiment,
    split: BehaviorSplit,
    methods: list[CTRMethod],
    budget: int | None,
    run: RunDirectory,
    rows: RowStore,
) -> None:
    """Every unfinished row of ``methods`` x seeds: fit, score on test once, store, log.
    Searches get ``max_parameters = budget`` (without baselines, ``budget`` is ``None`` and they
    keep the config's, e.g. ``--max_parameters``); hand-designed baselines keep the config's."""
    for seed in experiment.seeds:
        for method in methods:
            if rows.has(method=method.name, seed=seed):
                continue
            config = dataclasses.replace(experiment.config, seed=seed)
            if method.searches:
                if budget is not None:
                    config = dataclasses.replace(config, max_parameters=budget)
                run.log(f"{method.name} seed {seed}")
            fitted = method.fit(CTRCell(experiment, split, config, run, rows, run.log))
            with final_evaluation():
                row = ctr_row(method.name, seed, fitted, split.test)
            rows.add(row)
            for path in fitted.scratch:
                path.unlink(missing_ok=True)
            run.log(_row_line(row, method.searches))


def _row_line(row: dict[str, Any], searched: bool) -> str:
    head = f"{row['method']} seed {row['seed']}: valid AUC {row['valid_auc']:.4f}, test AUC "
    if not searched:
        return head + f"{row['test_auc']:.4f} ({row['train_seconds']:.0f} s)"
    return head + (
        f"{row['test_auc']:.4f}, {row['parameters']} parameters, search "
        f"{row['search_seconds']:.0f} s + retrain {row['train_seconds']:.0f} s"
    )


def parameter_budget(
    rows: RowStore, experiment: ArchitectureExperiment, log: Log
) -> tuple[str | None, int | None]:
    """The best hand-designed baseline (highest mean validation AUC over every seed with a
    row of each baseline) and, with ``experiment.parameter_budget``, its smallest parameter
    count over those seeds: the searches' ``max_parameters``. ``(None, None)`` without
    baselines."""
    if not experiment.baselines:
        return None, None
    seeds = completed_seeds(rows, experiment.baselines)

    def row(name: str, seed: int) -> dict[str, Any]:
        found = rows.get(method=name, seed=seed)
        assert found is not None  # completed_seeds holds only seeds with every baseline
        return found

    best = max(
        experiment.baselines, key=lambda name: np.mean([row(name, s)["valid_auc"] for s in seeds])
    )
    budget = None
    if experiment.parameter_budget:
        budget = int(min(row(best, s)["parameters"] for s in seeds))
    log(
        f"best hand-designed baseline on validation (seeds {list(seeds)}): {best}"
        + (f" ({budget} parameters)" if budget else "")
    )
    return best, budget


def ctr_row(
    method: str, seed: int, fitted: FittedModel[CTRModel], test: BehaviorSamples
) -> dict[str, Any]:
    """The row of a finished model: validation metrics from its selection, test AUC and log
    loss, parameter counts and inference speed on ``test`` (call inside
    :func:`~leanrec.runner.final.final_evaluation`)."""
    model = fitted.model
    scores = evaluate_ctr(model, test)
    counts = model.parameter_counts()
    return {
        "method": method,
        "seed": seed,
        "valid_auc": float(fitted.valid["auc"]),
        "valid_logloss": float(fitted.valid["logloss"]),
        "test_auc": float(scores["auc"]),
        "test_logloss": float(scores["logloss"]),
        "parameters": int(sum(counts.values())),
        "dense_parameters": int(counts["dense"]),
        "inference_samples_per_second": inference_samples_per_second(model, test),
        "train_seconds": float(fitted.train_seconds),
        "search_seconds": float(fitted.search_seconds),
        **fitted.extra,
    }


def inference_samples_per_second(
    model: CTRModel, samples: BehaviorSamples, repeats: int = 1, batch_size: int = 8192
) -> float:
    """Scored samples per second (batches of ``batch_size``, no gradients)."""
    model.eval()
    began = time.perf_counter()
    for _ in range(repeats):
        predict_ctr(model, samples, batch_size)
    return repeats * len(samples) / (time.perf_counter() - began)


def markdown_table(summary: dict[str, Any]) -> str:
    """Table 1 / Table 4 layout: AUC, log loss, parameters, samples/s, search cost."""
    lines = [
        "| model | test AUC | test log loss | parameters | inference samples/s | search CPU-h |",
        "|---|---|---|---|---|---|",
    ]
    for method, entry in summary["methods"].items():
        auc, loss = entry["test_auc"], entry["test_logloss"]
        lines.append(
            f"| {method} | {auc['mean']:.4f} ± {auc['std']:.4f} | "
            f"{loss['mean']:.4f} ± {loss['std']:.4f} | {entry['parameters']['mean']:,.0f} | "
            f"{entry['inference_samples_per_second']['mean']:,.0f} | "
            f"{entry['search_cpu_hours']['mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"
