"""What both AMEIR tables are made of: finished rows, mean ± std per method, a bar plot.

The CTR table (:mod:`.experiment`, Tables 1 and 4) and the next-item table
(:mod:`.retrieval_experiment`, Table 2) store one row per ``(method, seed)`` in ``rows.json``;
:func:`summarise` turns them into ``results.json``'s ``methods`` entry, and :func:`bar_plot`
draws one metric of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from leanrec.runner.rundir import RowStore, RunDirectory

ROW_KEY = ("method", "seed")
"""The fields that name a row of either table."""
RESUMABLE_CHANGES = (
    "out_dir", "data_dir", "baselines", "methods", "seeds", "config.num_threads",
    "config.progress", "config.executor", "config.executor_cpus_per_job",
)  # fmt: skip
"""Settings a rerun in an existing run directory may change: where it writes and reads, which
baselines, methods or seeds are added (they add rows without changing the stored ones) and how
the work is run; any other change is refused before anything is written
(:func:`~leanrec.runner.resume.check_resumable`)."""


def completed_seeds(rows: RowStore, methods: Sequence[str]) -> tuple[int, ...]:
    """Seeds of ``rows`` that hold a row of every method in ``methods``, sorted."""
    seeds = {row["seed"] for row in rows}
    return tuple(sorted(s for s in seeds if all(rows.has(method=m, seed=s) for m in methods)))


def artifacts_of(
    methods: Iterable[Any], run: RunDirectory, seeds: Sequence[int]
) -> dict[str, Path]:
    """The take-away files of every method and seed (``method.artifacts(run, seed)``)."""
    return {
        name: path
        for seed in seeds
        for method in methods
        for name, path in method.artifacts(run, seed).items()
    }


def summarise(
    rows: list[dict[str, Any]],
    methods: Sequence[str],
    seeds: Sequence[int],
    metrics: Sequence[str],
) -> dict[str, Any]:
    """Mean ± std over ``seeds`` of every metric in ``metrics``, per method (only methods with
    rows), plus the search cost in CPU-hours (``search_seconds`` / 3600)."""
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


def bar_plot(
    run: RunDirectory,
    name: str,
    summary: dict[str, Any],
    metric: str,
    ylabel: str,
    title: str,
    width_per_method: float,
    margins: tuple[float, float],
    top_with_std: bool = True,
) -> None:
    """One bar (mean, std error bar) of ``metric`` per method of ``summary``, saved as
    ``name``. The y axis runs from the lowest ``mean - std`` less ``margins[0]`` to the highest
    ``mean + std`` (``mean`` alone without ``top_with_std``) plus ``margins[1]``. Nothing is
    drawn for an empty summary."""
    methods = list(summary["methods"])
    if not methods:
        return
    means = [summary["methods"][m][metric]["mean"] for m in methods]
    stds = [summary["methods"][m][metric]["std"] for m in methods]
    tops = [m + s for m, s in zip(means, stds)] if top_with_std else means
    size = (width_per_method * len(methods) + 2, 3.5)
    with run.figure(name, size=size) as (_, axes):
        ax = axes[0, 0]
        ax.bar(methods, means, yerr=stds, color=["#999"] * len(methods))
        low = min(m - s for m, s in zip(means, stds))
        ax.set_ylim(low - margins[0], max(tops) + margins[1])
        ax.set_ylabel(ylabel)
        ax.set_title(title)
