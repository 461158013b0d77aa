"""DiPS Tables 2-3 layout: every policy x K x τ, mean ± std over user splits.

``leanrec experiment sketch --dataset ml-1m`` (explicit, RMSE) or ``--dataset beauty``
(implicit, Recall@20 / MRR@20). For every (seed, τ, K, method) the base model is trained on the
seed's training users with that policy in the loop (learned policies are trained jointly), the
epoch is chosen on the validation users, and the test users are streamed once. Finished cells
are stored in ``rows.json`` as they complete, so a killed run resumes where it stopped; the
cell being trained resumes from its per-epoch checkpoint.

Outputs in ``out_dir``: ``rows.json`` (one row per cell), ``results.json`` (mean ± std per
method x K x τ, plus the run's configuration), ``table.md`` and ``metric_vs_k.png``; the learned
policies of seed 0 are saved as ``policy_<method>_K<K>_tau<τ>.pt``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.registry import load_dataset
from leanrec.data.streams import StreamSplit, UserStreams, user_split
from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.policy_io import save_policy
from leanrec.search.sketch.trainer import METHODS, evaluate_sketch, train_sketch

DATASETS = {
    # the sketching experiment needs time order: ML-1M's timestamped copy (users 1-2999)
    "ml-1m": "ml-1m-partial",
    "ml-1m-partial": "ml-1m-partial",
    "beauty": "beauty",
    "beauty-s3rec": "beauty-s3rec",
}


@dataclass
class SketchExperiment:
    """One paper-style table."""

    dataset: str = "ml-1m"
    data_dir: str | None = None
    out_dir: str = "runs/sketch-ml-1m"
    methods: tuple[str, ...] = METHODS
    sketch_sizes: tuple[int, ...] = (2, 4, 8)
    """``K`` values (paper: 2, 4, 8)."""
    update_periods: tuple[int, ...] = (1, 4)
    """``τ`` values (paper: 1 online, 4 batch)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """User splits (and initialisations): one per seed (paper: 5)."""
    split_ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    min_length: int = 2
    """Users with fewer events are left out (one to sketch, one to predict)."""
    config: SketchConfig = field(default_factory=SketchConfig)


def load_streams(dataset: str, data_dir: str | None, min_length: int = 2) -> UserStreams:
    """The dataset's per-user streams (``ml-1m`` reads the timestamped ``ml-1m-partial``)."""
    name = DATASETS.get(dataset, dataset)
    data = load_dataset(name, data_dir)
    if isinstance(data, tuple):  # a fixed train/test pair: its time order is lost
        raise DataError(
            f"dataset {name!r} comes as a fixed train/test split without time order; "
            f"sketching needs per-user streams (known: {', '.join(sorted(DATASETS))})"
        )
    return UserStreams.from_interactions(data, min_length=min_length)


class _Rows:
    """Finished cells, persisted after each one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []

    @staticmethod
    def key(method: str, k: int, tau: int, seed: int) -> tuple[str, int, int, int]:
        return (method, k, tau, seed)

    def has(self, method: str, k: int, tau: int, seed: int) -> bool:
        return any(
            self.key(r["method"], r["K"], r["tau"], r["seed"]) == (method, k, tau, seed)
            for r in self.rows
        )

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.path.write_text(json.dumps(self.rows, indent=2))


def run_sketch_experiment(
    exp: SketchExperiment,
    log: Callable[[str], None] = print,
    streams: UserStreams | None = None,
) -> dict[str, Any]:
    """Run (or resume) every cell of the table; returns the summary written to results.json.

    ``streams`` replaces the registry dataset (e.g. synthetic streams in tests).
    """
    out = Path(exp.out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(_jsonable(exp), indent=2))
    if streams is None:
        streams = load_streams(exp.dataset, exp.data_dir, exp.min_length)
    log(f"{exp.dataset}: {streams.describe()}")
    rows = _Rows(out / "rows.json")
    for seed in exp.seeds:
        split = user_split(streams, exp.split_ratios, seed=seed)
        for tau in exp.update_periods:
            for k in exp.sketch_sizes:
                for method in exp.methods:
                    if rows.has(method, k, tau, seed):
                        continue
                    rows.add(_run_cell(exp, split, method, k, tau, seed, out, log))
    summary = summarise(rows.rows, streams.explicit)
    summary["config"] = _jsonable(exp)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "table.md").write_text(markdown_table(summary, exp))
    _plot(out / "metric_vs_k.png", summary, exp)
    return summary


def _run_cell(
    exp: SketchExperiment,
    split: StreamSplit,
    method: str,
    k: int,
    tau: int,
    seed: int,
    out: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    config = dataclasses.replace(exp.config, sketch_size=k, update_period=tau, seed=seed)
    tag = f"{method}_K{k}_tau{tau}_seed{seed}"
    log(f"{tag}: training on {len(split.train)} users")
    began = time.perf_counter()
    checkpoint = out / "cells" / f"{tag}.pt"
    result = train_sketch(split.train, split.valid, method, config, checkpoint, log)
    test = evaluate_sketch(result.model, result.decider(tau == 1), split.test, config, seed=seed)
    seconds = time.perf_counter() - began
    if result.scorer is not None and seed == exp.seeds[0]:
        save_policy(result.scorer, config, method, out / f"policy_{method}_K{k}_tau{tau}.pt")
    checkpoint.unlink(missing_ok=True)
    shown = ", ".join(f"{name} {value:.4f}" for name, value in test.values.items())
    log(f"{tag}: test {shown} ({seconds:.0f} s)")
    return {
        "method": method,
        "K": k,
        "tau": tau,
        "seed": seed,
        "test": test.values,
        "test_events": test.events,
        "valid": result.best_valid,
        "best_epoch": result.best_epoch,
        "history": result.history,
        "seconds": seconds,
    }


def summarise(rows: list[dict[str, Any]], explicit: bool) -> dict[str, Any]:
    """Mean and standard deviation over seeds of every metric, per method x K x τ."""
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


def _plot(path: Path, summary: dict[str, Any], exp: SketchExperiment) -> None:
    metric = summary["metric"]
    cells = {
        (c["method"], c["K"], c["tau"]): (c["metrics"][metric]["mean"], c["metrics"][metric]["std"])
        for c in summary["cells"]
    }
    plot_metric_vs_k(path, cells, metric, exp.dataset, list(exp.methods))


def plot_metric_vs_k(
    path: Path,
    cells: dict[tuple[str, int, int], tuple[float, float]],
    metric: str,
    dataset: str,
    methods: list[str] | None = None,
) -> None:
    """Test metric against ``K``, one panel per ``τ``, one line per policy (mean ± std).

    Args:
        cells: ``(method, K, τ) -> (mean, std)`` over the user splits.
        methods: line order (None: sorted); methods without cells are skipped.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = sorted({tau for _, _, tau in cells})
    ks = sorted({k for _, k, _ in cells})
    fig, axes = plt.subplots(1, len(taus), figsize=(5 * len(taus), 4), squeeze=False)
    for axis, tau in zip(axes[0], taus, strict=True):
        for method in methods or sorted({m for m, _, _ in cells}):
            points = sorted((k, v) for (m, k, t), v in cells.items() if m == method and t == tau)
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _jsonable(exp: SketchExperiment) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(exp), default=str))


__all__ = [
    "DATASETS",
    "SketchExperiment",
    "load_streams",
    "markdown_table",
    "plot_metric_vs_k",
    "run_sketch_experiment",
    "summarise",
]
