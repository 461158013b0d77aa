"""AMEIR Table 2 layout on Amazon Beauty: next-item retrieval, hand-designed vs searched.

``leanrec experiment architecture --dataset beauty``. For every seed: GRU4Rec and SASRec are
trained with early stopping on validation NDCG@5 (100 sampled negatives), then AMEIR's Step 1
search (:func:`~leanrec.search.architecture.retrieval.search_retrieval`) derives and retrains a
behaviour model. Every model is scored once on test: HR@5 / NDCG@5 against the split's 100
negatives (uniform by default, the SASRec protocol, where AMEIR's Table 2 figures live), against
100 popularity-drawn negatives (the BERT4Rec protocol) and by full ranking (HR@10 / NDCG@10).

Finished rows are stored in ``rows.json`` as they complete (a killed run resumes after the last
finished model; a search resumes inside itself too). Outputs: ``rows.json``, ``results.json``
(mean ± std per method), ``table.md`` and ``ndcg.png``; each search's chosen blocks in
``architecture_seed<k>.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from leanrec.data.registry import load_dataset
from leanrec.data.sequential import NegativeSampling, NextItemSplit
from leanrec.models.seq import build_next_item_model
from leanrec.models.seq.base import NextItemModel
from leanrec.options import check_literals
from leanrec.search.architecture.experiment import RowStore, experiment_json, summarise
from leanrec.search.architecture.retrieval import RetrievalSearchConfig, search_retrieval
from leanrec.train.sequential import (
    SequentialTrainer,
    SequentialTrainerConfig,
    evaluate_next_item,
)

RETRIEVAL_BASELINES: tuple[str, ...] = ("gru4rec", "sasrec")
RETRIEVAL_METHODS: tuple[str, ...] = ("ameir",)


@dataclass
class RetrievalExperiment:
    """One Table 2 style table."""

    dataset: str = "beauty"
    data_dir: str | None = None
    out_dir: str = "runs/architecture-beauty"
    baselines: tuple[str, ...] = RETRIEVAL_BASELINES
    methods: tuple[str, ...] = RETRIEVAL_METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    max_length: int = 50
    negative_sampling: NegativeSampling = "uniform"
    """Negatives of the selection/report protocol; the other kind is scored on test too."""
    baseline_epochs: int = 200
    baseline_seconds: float | None = None
    """Wall-clock budget per baseline (None: none)."""
    config: RetrievalSearchConfig = field(default_factory=RetrievalSearchConfig)

    def __post_init__(self) -> None:
        check_literals(self)


def inference_users_per_second(model: NextItemModel, split: NextItemSplit) -> float:
    """Test users scored per second against their 101 candidates (no gradients)."""
    began = time.perf_counter()
    evaluate_next_item(model, split.test, "sampled", (5,))
    return len(split.test) / (time.perf_counter() - began)


def _row(
    method: str,
    seed: int,
    model: NextItemModel,
    split: NextItemSplit,
    other: NextItemSplit,
    train_seconds: float,
    search_seconds: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    valid = evaluate_next_item(model, split.valid, "sampled", (5, 10))
    test = evaluate_next_item(model, split.test, "sampled", (5, 10))
    test_other = evaluate_next_item(model, other.test, "sampled", (5, 10))
    full = evaluate_next_item(model, split.test, "full", (10,))
    counts = model.num_parameters()
    return {
        "method": method,
        "seed": seed,
        "valid_hit@5": valid["hit@5"],
        "valid_ndcg@5": valid["ndcg@5"],
        "test_hit@5": test["hit@5"],
        "test_ndcg@5": test["ndcg@5"],
        "test_hit@10": test["hit@10"],
        "test_ndcg@10": test["ndcg@10"],
        "test_other_hit@5": test_other["hit@5"],
        "test_other_ndcg@5": test_other["ndcg@5"],
        "test_full_hit@10": full["hit@10"],
        "test_full_ndcg@10": full["ndcg@10"],
        "parameters": int(sum(counts.values())),
        "encoder_parameters": int(counts["encoder"]),
        "inference_users_per_second": inference_users_per_second(model, split),
        "train_seconds": float(train_seconds),
        "search_seconds": float(search_seconds),
        **(extra or {}),
    }


def _splits(exp: RetrievalExperiment, seed: int) -> tuple[NextItemSplit, NextItemSplit]:
    data = load_dataset(exp.dataset, exp.data_dir)
    if isinstance(data, tuple):
        raise ValueError(f"{exp.dataset!r} is a train/test pair, not per-user sequences")
    other: NegativeSampling = "popularity" if exp.negative_sampling == "uniform" else "uniform"
    make = NextItemSplit.from_interactions
    return (
        make(data, exp.max_length, negative_sampling=exp.negative_sampling, seed=seed),
        make(data, exp.max_length, negative_sampling=other, seed=seed),
    )


def run_retrieval_experiment(
    exp: RetrievalExperiment,
    log: Callable[[str], None] = print,
    splits: Callable[[int], tuple[NextItemSplit, NextItemSplit]] | None = None,
) -> dict[str, Any]:
    """Run (or resume) every row; returns the summary written to ``results.json``.

    ``splits(seed)`` replaces the registry dataset (e.g. synthetic data in tests): the split
    of the report protocol and the same split with the other kind of negatives.
    """
    out = Path(exp.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(experiment_json(exp), indent=2))
    rows = RowStore(out / "rows.json")
    cfg = exp.config
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    for seed in exp.seeds:
        todo = [m for m in (*exp.baselines, *exp.methods) if rows.get(m, seed) is None]
        if not todo:
            continue
        split, other = splits(seed) if splits is not None else _splits(exp, seed)
        log(f"{exp.dataset} seed {seed}: {split.describe()}")
        for name in exp.baselines:
            if rows.get(name, seed) is not None:
                continue
            options: dict[str, Any] = {"embedding_dim": cfg.embedding_dim}
            if name == "sasrec":
                options["max_length"] = exp.max_length
            model = build_next_item_model(name, split.n_items, options, seed=seed)
            trainer = SequentialTrainer(
                model,
                split,
                SequentialTrainerConfig(
                    max_epochs=exp.baseline_epochs,
                    batch_size=cfg.batch_size,
                    learning_rate=cfg.learning_rate,
                    eval_every=cfg.eval_every,
                    patience=cfg.retrain_patience,
                    max_seconds=exp.baseline_seconds,
                    seed=seed,
                    num_threads=cfg.num_threads,
                ),
                out / f"{name}_seed{seed}.pt",
            )
            began = time.perf_counter()
            trained = trainer.fit(resume=True)
            row = _row(
                name,
                seed,
                model,
                split,
                other,
                time.perf_counter() - began,
                extra={"best_epoch": trained.best_epoch},
            )
            rows.add(row)
            (out / f"{name}_seed{seed}.pt").unlink(missing_ok=True)
            log(
                f"{name} seed {seed}: valid NDCG@5 {row['valid_ndcg@5']:.4f}, test HR@5 "
                f"{row['test_hit@5']:.4f} NDCG@5 {row['test_ndcg@5']:.4f} "
                f"({row['train_seconds']:.0f} s)"
            )
        for method in exp.methods:
            if rows.get(method, seed) is not None:
                continue
            if method != "ameir":
                raise ValueError(f"unknown retrieval search {method!r}; known: ameir")
            config = dataclasses.replace(cfg, seed=seed)
            result = search_retrieval(split, config, out / f"ameir_seed{seed}", log)
            architecture = result.architecture_json(config)
            (out / f"architecture_seed{seed}.json").write_text(json.dumps(architecture, indent=2))
            row = _row(
                method,
                seed,
                result.model,
                split,
                other,
                result.retrain_seconds,
                result.search_seconds,
                extra={"best_epoch": result.best_epoch, "architecture": architecture},
            )
            rows.add(row)
            log(
                f"{method} seed {seed}: valid NDCG@5 {row['valid_ndcg@5']:.4f}, test HR@5 "
                f"{row['test_hit@5']:.4f} NDCG@5 {row['test_ndcg@5']:.4f}, search "
                f"{row['search_seconds']:.0f} s + retrain {row['train_seconds']:.0f} s"
            )
    summary = summarise(rows.rows, [*exp.baselines, *exp.methods], exp.seeds, METRICS)
    summary["config"] = experiment_json(exp)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "table.md").write_text(markdown_table(summary, exp.negative_sampling))
    _plot(out / "ndcg.png", summary, exp.dataset)
    return summary


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


def _plot(path: Path, summary: dict[str, Any], dataset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary["methods"])
    if not methods:
        return
    means = [summary["methods"][m]["test_ndcg@5"]["mean"] for m in methods]
    stds = [summary["methods"][m]["test_ndcg@5"]["std"] for m in methods]
    fig, ax = plt.subplots(figsize=(1.2 * len(methods) + 2, 3.5))
    ax.bar(methods, means, yerr=stds, color=["#999"] * len(methods))
    ax.set_ylim(min(m - s for m, s in zip(means, stds)) - 0.01, max(means) + 0.01)
    ax.set_ylabel("test NDCG@5, 100 negatives (mean ± std)")
    ax.set_title(f"{dataset}: hand-designed sequence models vs AMEIR Step 1")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
