"""AMEIR Table 2 layout on Amazon Beauty: next-item retrieval, hand-designed vs searched.

``leanrec experiment architecture --dataset beauty`` (through
:func:`~leanrec.search.architecture.experiment.run_experiment`). For every seed: GRU4Rec and
SASRec are trained with early stopping on validation NDCG@5 (100 sampled negatives), then
AMEIR's Step 1 search (:func:`~leanrec.search.architecture.retrieval.search_retrieval`)
derives and retrains a behaviour model. Every model is scored once on test, inside
:func:`~leanrec.runner.final.final_evaluation`: HR@5 / NDCG@5 against the split's 100
negatives (uniform by default, the SASRec protocol, where AMEIR's Table 2 figures live), against
100 popularity-drawn negatives (the BERT4Rec protocol) and by full ranking (HR@10 / NDCG@10).

Finished rows are stored in ``rows.json`` as they complete (a killed run resumes after the last
finished model; a search resumes inside itself too). Outputs: ``rows.json``, ``results.json``
(mean ± std per method), ``table.md`` and ``ndcg.png``; each search's chosen blocks in
``architecture_seed<k>.json`` and its retrained model in ``ameir_seed<k>/retrained.pt``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch

from leanrec.data.registry import load_dataset
from leanrec.data.sequential import NegativeSampling, NextItemEvalSet, NextItemSplit
from leanrec.evaluate.full_ranking import RankingResult
from leanrec.models.seq.base import NextItemModel
from leanrec.runner.final import final_evaluation
from leanrec.runner.resume import check_resumable
from leanrec.runner.rundir import Log, RunDirectory, jsonable
from leanrec.search.architecture.baselines import (
    NEXT_ITEM_METHODS,
    FittedModel,
    NextItemCell,
    resolve_methods,
)
from leanrec.search.architecture.config import RetrievalExperiment, preset_label
from leanrec.search.architecture.results import (
    RESUMABLE_CHANGES,
    ROW_KEY,
    artifacts_of,
    bar_plot,
    summarise,
)
from leanrec.search.base import ExperimentResult
from leanrec.train.sequential import evaluate_next_item

METRICS = (
    "test_hit@5",
    "test_ndcg@5",
    "test_other_hit@5",
    "test_other_ndcg@5",
    "test_full_hit@10",
    "test_full_ndcg@10",
    "valid_ndcg@5",
    "parameters",
    "encoder_parameters",
    "inference_users_per_second",
    "search_seconds",
    "train_seconds",
)
"""The row fields ``results.json`` averages per method."""

SplitPair = tuple[NextItemSplit, NextItemSplit]
"""The split of the report protocol and the same split with the other kind of negatives."""


def run_retrieval_experiment(
    experiment: RetrievalExperiment,
    log: Log = print,
    splits: Callable[[int], SplitPair] | None = None,
) -> ExperimentResult:
    """Run (or resume) every row; ``splits(seed)`` replaces the registry dataset (e.g.
    synthetic data in tests). A seed whose rows are all finished loads no data."""
    methods = [
        *resolve_methods(NEXT_ITEM_METHODS, experiment.baselines, searches=False),
        *resolve_methods(NEXT_ITEM_METHODS, experiment.methods, searches=True),
    ]
    check_resumable(experiment, experiment.out_dir, RetrievalExperiment(), RESUMABLE_CHANGES, None)
    run = RunDirectory(experiment.out_dir, config=experiment, log=log)
    rows = run.rows(key=ROW_KEY)
    if experiment.config.num_threads:
        torch.set_num_threads(experiment.config.num_threads)
    for seed in experiment.seeds:
        todo = [m for m in methods if not rows.has(method=m.name, seed=seed)]
        if not todo:
            continue
        split, other = splits(seed) if splits is not None else registry_splits(experiment, seed)
        run.log(f"{experiment.dataset} seed {seed}: {selection_parts(split)}")
        config = dataclasses.replace(experiment.config, seed=seed)
        for method in todo:
            fitted = method.fit(NextItemCell(experiment, split, config, run, run.log))
            valid = evaluate_next_item(fitted.model, split.valid, "sampled", (5, 10))
            with final_evaluation():
                row = next_item_row(method.name, seed, fitted, valid, split.test, other.test)
            rows.add(row)
            for path in fitted.scratch:
                path.unlink(missing_ok=True)
            run.log(_row_line(row, method.searches))
    names = [*experiment.baselines, *experiment.methods]
    summary = summarise(rows.rows, names, experiment.seeds, METRICS)
    summary["preset"] = preset_label(experiment.config)
    summary["config"] = jsonable(experiment)
    run.write_results(summary)
    run.write_table(markdown_table(summary, experiment.negative_sampling))
    bar_plot(
        run,
        "ndcg.png",
        summary,
        "test_ndcg@5",
        ylabel="test NDCG@5, 100 negatives (mean ± std)",
        title=f"{experiment.dataset}: hand-designed sequence models vs AMEIR Step 1",
        width_per_method=1.2,
        margins=(0.01, 0.01),
        top_with_std=False,
    )
    artifacts = artifacts_of(methods, run, experiment.seeds)
    return ExperimentResult("architecture", run, rows.rows, summary, artifacts)


def registry_splits(experiment: RetrievalExperiment, seed: int) -> SplitPair:
    """The registry dataset's split with ``experiment.negative_sampling`` and the same split
    with the other kind of negatives, both drawn from ``seed``."""
    data = load_dataset(experiment.dataset, experiment.data_dir)
    if isinstance(data, tuple):
        raise ValueError(f"{experiment.dataset!r} is a train/test pair, not per-user sequences")
    other: NegativeSampling = (
        "popularity" if experiment.negative_sampling == "uniform" else "uniform"
    )
    return tuple(  # type: ignore[return-value]
        NextItemSplit.from_interactions(
            data, experiment.max_length, negative_sampling=negatives, seed=seed
        )
        for negatives in (experiment.negative_sampling, other)
    )


def selection_parts(split: NextItemSplit) -> dict[str, int | str]:
    """Sizes of the parts that train and select (for the log; the test part is read in the
    final evaluation only)."""
    return {
        "items": split.n_items,
        "max_length": split.max_length,
        "train_rows": len(split.train_users),
        "valid_users": len(split.valid),
        "n_negatives": split.n_negatives,
        "negative_sampling": split.negative_sampling,
    }


def _row_line(row: dict[str, Any], searched: bool) -> str:
    line = (
        f"{row['method']} seed {row['seed']}: valid NDCG@5 {row['valid_ndcg@5']:.4f}, test HR@5 "
        f"{row['test_hit@5']:.4f} NDCG@5 {row['test_ndcg@5']:.4f}"
    )
    if not searched:
        return line + f" ({row['train_seconds']:.0f} s)"
    return line + (f", search {row['search_seconds']:.0f} s + retrain {row['train_seconds']:.0f} s")


def next_item_row(
    method: str,
    seed: int,
    fitted: FittedModel[NextItemModel],
    valid: RankingResult,
    test: NextItemEvalSet,
    other_test: NextItemEvalSet,
) -> dict[str, Any]:
    """The row of a finished model: validation HR/NDCG@5, test HR/NDCG@5 and @10 against the
    split's negatives, @5 against the other kind, full-ranking HR/NDCG@10, parameter counts and
    inference speed (call inside :func:`~leanrec.runner.final.final_evaluation`)."""
    model = fitted.model
    sampled = evaluate_next_item(model, test, "sampled", (5, 10))
    sampled_other = evaluate_next_item(model, other_test, "sampled", (5, 10))
    full = evaluate_next_item(model, test, "full", (10,))
    counts = model.num_parameters()
    return {
        "method": method,
        "seed": seed,
        "valid_hit@5": valid["hit@5"],
        "valid_ndcg@5": valid["ndcg@5"],
        "test_hit@5": sampled["hit@5"],
        "test_ndcg@5": sampled["ndcg@5"],
        "test_hit@10": sampled["hit@10"],
        "test_ndcg@10": sampled["ndcg@10"],
        "test_other_hit@5": sampled_other["hit@5"],
        "test_other_ndcg@5": sampled_other["ndcg@5"],
        "test_full_hit@10": full["hit@10"],
        "test_full_ndcg@10": full["ndcg@10"],
        "parameters": int(sum(counts.values())),
        "encoder_parameters": int(counts["encoder"]),
        "inference_users_per_second": inference_users_per_second(model, test),
        "train_seconds": float(fitted.train_seconds),
        "search_seconds": float(fitted.search_seconds),
        **fitted.extra,
    }


def inference_users_per_second(model: NextItemModel, test: NextItemEvalSet) -> float:
    """Test users scored per second against their 101 candidates (no gradients)."""
    began = time.perf_counter()
    evaluate_next_item(model, test, "sampled", (5,))
    return len(test) / (time.perf_counter() - began)


def markdown_table(summary: dict[str, Any], negatives: str = "uniform") -> str:
    """Table 2 layout plus the other protocols, parameters, speed and search cost."""
    other = "popularity" if negatives == "uniform" else "uniform"

    def cell(entry: dict[str, Any], key: str) -> str:
        return f"{entry[key]['mean']:.4f} ± {entry[key]['std']:.4f}"

    lines = [
        f"| model | HR@5 ({negatives}) | NDCG@5 ({negatives}) | HR@5 ({other}) | "
        f"NDCG@5 ({other}) | full HR@10 | parameters | users/s | search CPU-h |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, entry in summary["methods"].items():
        lines.append(
            f"| {method} | {cell(entry, 'test_hit@5')} | {cell(entry, 'test_ndcg@5')} | "
            f"{cell(entry, 'test_other_hit@5')} | {cell(entry, 'test_other_ndcg@5')} | "
            f"{cell(entry, 'test_full_hit@10')} | {entry['parameters']['mean']:,.0f} | "
            f"{entry['inference_users_per_second']['mean']:,.0f} | "
            f"{entry['search_cpu_hours']['mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"
