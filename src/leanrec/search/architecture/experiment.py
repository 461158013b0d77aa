"""AMEIR Tables 1 and 4 layout on ML-1M CTR: hand-designed baselines, NAS baselines, AMEIR.

``leanrec experiment architecture --dataset ml-1m-ctr``. For every seed: each hand-designed
baseline is trained (early stopping on validation AUC); AMEIR's three-step search runs with
``max_parameters`` set to the parameter count of the best baseline (by mean validation AUC), so
the searched model is never larger; the NAS baselines run on the same space: single-stage
one-shot random search (same one-shot epochs and scored children) and random search from
scratch (same wall-clock search budget as AMEIR's search of that seed). Test samples are scored
once per finished model and never used for selection.

Finished rows are stored in ``rows.json`` as they complete (a killed run resumes after the last
finished model). Outputs: ``rows.json``, ``results.json`` (mean ± std per method), ``table.md``
and ``auc.png``; AMEIR's architectures as ``architecture_seed<k>.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from leanrec.data.behavior import BehaviorSamples, BehaviorSplit
from leanrec.data.registry import load_behavior_dataset
from leanrec.models.ctr import build_ctr_model
from leanrec.models.ctr.base import CTRModel
from leanrec.options import check_literals
from leanrec.search.architecture.baselines import (
    random_search_from_scratch,
    single_stage_one_shot,
)
from leanrec.search.architecture.config import ArchitectureSearchConfig
from leanrec.search.architecture.policy import SearchResult, one_shot_samples, search_architecture
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr, predict_ctr

HAND_DESIGNED: tuple[str, ...] = ("dnn", "wide_deep", "deepfm", "xdeepfm", "din")
NAS_METHODS: tuple[str, ...] = ("ameir", "one_shot", "random")
"""``ameir``: three-step search; ``one_shot``: single-stage one-shot random search;
``random``: random search with training from scratch."""


@dataclass
class ArchitectureExperiment:
    """One paper-style table."""

    dataset: str = "ml-1m-ctr"
    data_dir: str | None = None
    out_dir: str = "runs/architecture-ml-1m-ctr"
    baselines: tuple[str, ...] = HAND_DESIGNED
    methods: tuple[str, ...] = NAS_METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    baseline_epochs: int = 8
    """Maximum epochs of a hand-designed baseline (early stopping, patience 2)."""
    parameter_budget: bool = True
    """Cap the searched models at the best baseline's parameter count."""
    random_budget: Literal["seconds", "samples"] = "seconds"
    """What random search from scratch gets of AMEIR's search at the same seed: ``"seconds"``,
    its wall time (depends on how busy the machine is), or ``"samples"``, as many training
    samples as AMEIR's one-shot models saw (:func:`one_shot_samples`; the same on any
    machine)."""
    config: ArchitectureSearchConfig = field(default_factory=ArchitectureSearchConfig)

    def __post_init__(self) -> None:
        check_literals(self)


class RowStore:
    """Finished rows by ``(method, seed)``, written atomically to ``rows.json`` as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []

    def get(self, method: str, seed: int) -> dict[str, Any] | None:
        for row in self.rows:
            if row["method"] == method and row["seed"] == seed:
                return row
        return None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.rows, indent=2))
        tmp.replace(self.path)


def baseline_seeds(rows: RowStore, baselines: tuple[str, ...]) -> tuple[int, ...]:
    """Seeds of ``rows`` that hold a row of every baseline in ``baselines``, sorted."""
    seeds = {row["seed"] for row in rows.rows}
    return tuple(sorted(s for s in seeds if all(rows.get(n, s) is not None for n in baselines)))


def inference_samples_per_second(
    model: CTRModel, samples: BehaviorSamples, repeats: int = 1, batch_size: int = 8192
) -> float:
    """Scored samples per second (batches of ``batch_size``, no gradients)."""
    model.eval()
    began = time.perf_counter()
    for _ in range(repeats):
        predict_ctr(model, samples, batch_size)
    return repeats * len(samples) / (time.perf_counter() - began)


def _row(
    method: str,
    seed: int,
    model: CTRModel,
    split: BehaviorSplit,
    valid: dict[str, float],
    train_seconds: float,
    search_seconds: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    test = evaluate_ctr(model, split.test)
    counts = model.parameter_counts()
    return {
        "method": method,
        "seed": seed,
        "valid_auc": float(valid["auc"]),
        "valid_logloss": float(valid["logloss"]),
        "test_auc": float(test["auc"]),
        "test_logloss": float(test["logloss"]),
        "parameters": int(sum(counts.values())),
        "dense_parameters": int(counts["dense"]),
        "inference_samples_per_second": inference_samples_per_second(model, split.test),
        "train_seconds": float(train_seconds),
        "search_seconds": float(search_seconds),
        **(extra or {}),
    }


def run_architecture_experiment(
    exp: ArchitectureExperiment,
    log: Callable[[str], None] = print,
    split: BehaviorSplit | None = None,
) -> dict[str, Any]:
    """Run (or resume) every row; returns the summary written to ``results.json``.

    ``split`` replaces the registry dataset (e.g. synthetic samples in tests).
    """
    out = Path(exp.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(experiment_json(exp), indent=2))
    if split is None:
        split = load_behavior_dataset(exp.dataset, exp.data_dir)
    log(f"{exp.dataset}: {split.describe()}")
    rows = RowStore(out / "rows.json")
    cfg = exp.config
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    # hand-designed baselines ---------------------------------------------------------------
    for seed in exp.seeds:
        for name in exp.baselines:
            if rows.get(name, seed) is not None:
                continue
            model = build_ctr_model(name, split.feature_map, seed=seed)
            trainer = CTRTrainer(
                CTRTrainerConfig(
                    learning_rate=cfg.learning_rate,
                    batch_size=cfg.batch_size,
                    max_epochs=exp.baseline_epochs,
                    patience=cfg.retrain_patience,
                    seed=seed,
                    num_threads=cfg.num_threads,
                    progress=cfg.progress,
                )
            )
            trained = trainer.fit(model, split.train, split.valid)
            row = _row(
                name,
                seed,
                model,
                split,
                trained.best_valid,
                trained.train_seconds,
                extra={"best_epoch": trained.best_epoch},
            )
            rows.add(row)
            log(
                f"{name} seed {seed}: valid AUC {row['valid_auc']:.4f}, test AUC "
                f"{row['test_auc']:.4f} ({row['train_seconds']:.0f} s)"
            )
    budget = None
    best_baseline = None
    if exp.baselines:
        # every seed with all baseline rows, not only this run's: a run of one seed caps its
        # searches by the same baseline as the whole table
        seeds = baseline_seeds(rows, exp.baselines)
        best_baseline = max(
            exp.baselines,
            key=lambda n: np.mean([rows.get(n, s)["valid_auc"] for s in seeds]),  # type: ignore[index]
        )
        if exp.parameter_budget:
            budget = int(min(rows.get(best_baseline, s)["parameters"] for s in seeds))  # type: ignore[index]
        log(
            f"best hand-designed baseline on validation (seeds {list(seeds)}): {best_baseline}"
            + (f" ({budget} parameters)" if budget else "")
        )
    # searches -------------------------------------------------------------------------------
    for seed in exp.seeds:
        config = dataclasses.replace(cfg, seed=seed, max_parameters=budget)
        for method in exp.methods:
            if rows.get(method, seed) is not None:
                continue
            log(f"{method} seed {seed}")
            result = _search(method, split, config, out, rows, seed, log, exp.random_budget)
            row = _row(
                method,
                seed,
                result.model,
                split,
                result.valid,
                result.retrain_seconds,
                result.search_seconds,
                extra={"architecture": result.architecture.to_dict()},
            )
            rows.add(row)
            if method == "ameir":
                result.architecture.save(out / f"architecture_seed{seed}.json")
            log(
                f"{method} seed {seed}: valid AUC {row['valid_auc']:.4f}, test AUC "
                f"{row['test_auc']:.4f}, {row['parameters']} parameters, search "
                f"{row['search_seconds']:.0f} s + retrain {row['train_seconds']:.0f} s"
            )
    summary = summarise(rows.rows, [*exp.baselines, *exp.methods], exp.seeds)
    summary["best_baseline"] = best_baseline
    summary["parameter_budget"] = budget
    summary["config"] = experiment_json(exp)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "table.md").write_text(markdown_table(summary))
    _plot(out / "auc.png", summary)
    return summary


def _search(
    method: str,
    split: BehaviorSplit,
    config: ArchitectureSearchConfig,
    out: Path,
    rows: RowStore,
    seed: int,
    log: Callable[[str], None],
    budget: str = "seconds",
) -> SearchResult:
    if method == "ameir":
        return search_architecture(split, config, out / f"ameir_seed{seed}", log)
    if method == "one_shot":
        return single_stage_one_shot(split, config, log)
    if method == "random":
        if budget == "samples":
            samples = one_shot_samples(config, len(split.train))
            return random_search_from_scratch(split, config, budget_samples=samples, log=log)
        ameir = rows.get("ameir", seed)
        if ameir is None:
            raise ValueError(
                "random search needs AMEIR's search time of the same seed first "
                "(list 'ameir' before 'random' in methods, or use random_budget='samples')"
            )
        return random_search_from_scratch(split, config, ameir["search_seconds"], log=log)
    raise ValueError(f"unknown search method {method!r}; known: {', '.join(NAS_METHODS)}")


METRICS = (
    "test_auc",
    "test_logloss",
    "valid_auc",
    "parameters",
    "inference_samples_per_second",
    "search_seconds",
    "train_seconds",
)


def summarise(
    rows: list[dict[str, Any]],
    methods: list[str],
    seeds: tuple[int, ...],
    metrics: tuple[str, ...] = METRICS,
) -> dict[str, Any]:
    """Mean ± std over seeds of every metric in ``metrics``, per method (only methods with
    rows), plus the search cost in CPU-hours."""
    table: dict[str, Any] = {}
    for method in methods:
        found = [r for r in rows if r["method"] == method and r["seed"] in seeds]
        if not found:
            continue
        entry: dict[str, Any] = {"seeds": len(found)}
        for metric in metrics:
            values = np.array([r[metric] for r in found], dtype=float)
            entry[metric] = {"mean": float(values.mean()), "std": float(values.std())}
        entry["search_cpu_hours"] = {
            "mean": float(np.mean([r["search_seconds"] for r in found]) / 3600.0),
            "std": 0.0,
        }
        table[method] = entry
    return {"methods": table}


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


def _plot(path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary["methods"])
    means = [summary["methods"][m]["test_auc"]["mean"] for m in methods]
    stds = [summary["methods"][m]["test_auc"]["std"] for m in methods]
    fig, ax = plt.subplots(figsize=(1.1 * len(methods) + 2, 3.5))
    ax.bar(methods, means, yerr=stds, color=["#999"] * len(methods))
    low = min(m - s for m, s in zip(means, stds))
    high = max(m + s for m, s in zip(means, stds))
    ax.set_ylim(low - 0.003, high + 0.002)
    ax.set_ylabel("test AUC (mean ± std over seeds)")
    ax.set_title("ML-1M CTR: hand-designed models vs architecture search")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def experiment_json(exp: Any) -> dict[str, Any]:
    """A dataclass experiment as plain JSON data (paths and tuples as strings and lists)."""
    return json.loads(json.dumps(dataclasses.asdict(exp), default=str))
