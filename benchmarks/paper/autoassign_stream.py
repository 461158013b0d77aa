"""AutoAssign+ against every baseline on the ML-1M and ML-100K streams, prequentially.

What it must show (the shared-embedding goals 1-4), computed here from the rows:

1. AutoAssign+'s prequential AUC is at least all-unique's, with end-of-stream embedding bytes at
   most 0.8x all-unique's (mean over seeds).
2. For each byte-bounded baseline (frequency threshold, hashing, QR, LFU, LRU; and the
   fixed-threshold hierarchy beside them), a curve of AUC and of log loss against end-of-stream
   embedding bytes over its size knob; AutoAssign+ lies above every curve at its own bytes.
   "Above the curve" (:func:`against_curve`): the curve's points are the knob values, at their
   mean bytes and mean AUC over the seeds run, joined piecewise-linearly in bytes. Where
   AutoAssign+'s mean bytes fall inside the curve's byte range, it is above when its mean AUC
   is greater than the curve's interpolated AUC there (log loss: lower); knobs that end at the
   same bytes count with the best of them. Outside the range the
   curve says nothing at those bytes, and the row says so (``where``): with fewer bytes than
   every point, AutoAssign+ counts as above when its AUC beats the curve's smallest point; with
   more bytes than every point, only when it beats every point of the curve.
3. Cold IDs (events whose user or item had fewer than 5 earlier events): AutoAssign+'s AUC is
   above all-unique's.
4. The agent against the fixed-threshold hierarchy at its warm-up-chosen ``t_k``: AUC, cold AUC
   and bytes, stated whichever way they come out.

Each goal is computed for both agent presets: ``autoassign`` (the ``paper`` preset) and
``autoassign_leanrec`` (the ``leanrec`` preset).

Protocol (:mod:`leanrec.search.shared_embedding.experiment`): the stream in time order, chunks
of 1,000 events, the first 20% the warm-up (training and every choice only), the figures over
every later event; DeepFM with ``d = 16``, :func:`~leanrec.search.shared_embedding.config.\
default_trainer` for every method; objective ``bce`` (``--objectives bce mse`` adds the rating
model at the chosen knobs, no curves). Every method's knob is chosen on the warm-up, per seed;
AutoAssign+ chooses ``k`` in {1, 2, 3}; hashing, QR, LFU and LRU sizes go up to 4x the
warm-up's IDs (:data:`SIZE_GRID`). The byte-bounded baselines run every knob of their grid
over the whole stream (the curves; ``--curve-seeds`` on which seeds, default all), so no point
of a curve is chosen on the evaluated stream. One torch thread.

Runs go to resumable run directories outside git, one per dataset
(``--runs``, default ``runs/autoassign_stream[--TAG]/<dataset>``): killed and restarted, the
script continues mid-row, and a later call with other ``--methods`` adds their rows to the same
directory. Rows are keyed by objective, method, knob and seed, not by the code that ran them:
after a method's code changes, ``--redo METHOD`` drops its stored rows (kept aside in
``dropped-rows.json``) so that it runs again, while every other method's rows are reused. The
results file is assembled from every row the run directories hold.

Writes ``results/autoassign_stream.json`` (flat: every row, mean ± sd per knob and at the chosen
knob, the goals), ``autoassign_stream.png`` (AUC and log loss against end-of-stream bytes),
``autoassign_stream--buckets.png`` (AUC per frequency bucket of the user, of the item, and of
the colder of both, every method) and ``autoassign_stream--trace.png`` (embedding bytes over
the stream, every method); ``--tag T`` writes ``autoassign_stream--T*``. Run from the
repository root:

    python -m benchmarks.paper.autoassign_stream [--dataset ml-100k ml-1m-partial] \\
        [--seeds 0 1 2] [--curve-seeds 0] [--methods all_unique threshold ...] [--tag T]
    python -m benchmarks.paper.autoassign_stream --quick   # a synthetic stream, seconds
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_tag_argument, data_dir, print_table, results_path, write_results
from leanrec.data.events import EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.evaluate.prequential import BUCKETS
from leanrec.search.shared_embedding import SharedEmbeddingExperiment, run_experiment
from leanrec.search.shared_embedding.config import DEFAULT_METHODS

SCRIPT = "autoassign_stream"
DATASETS = ("ml-100k", "ml-1m-partial")
CURVE_METHODS = ("threshold", "hashing", "qr", "lfu", "lru", "threshold_hierarchy")
"""Byte-bounded baselines: every knob of their grid runs over the whole stream."""
BOUNDED = ("threshold", "hashing", "qr", "lfu", "lru")
"""The curves goal 2 is judged on (the fixed-threshold hierarchy's curve is shown beside)."""
PRESETS = {"autoassign": "paper", "autoassign_leanrec": "leanrec"}
"""AutoAssign+ methods and the agent preset each runs."""
LEVELS_GRID = (1, 2, 3)
"""AutoAssign+'s ``k`` tried on the warm-up."""
SIZE_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Hashing buckets, QR slots and LFU/LRU rows as shares of the warm-up's IDs per field: the
experiment's grid (1/8 to 1x) without 1/8 and with 2x and 4x, so that the curves reach
all-unique's bytes (a stream holds several times its warm-up's IDs); 1/8 is left out for time."""
THRESHOLD_GRID = (2, 5, 10, 20, 50, 100, 200)
"""The frequency threshold's ``n``: the experiment's grid (2 to 20) and 50, 100, 200 after it.
On ML-1M every ``n`` up to 20 ends at the same bytes (each field's rows at the same power-of-two
capacity), so the curve had one byte value; the larger ``n`` give it points at fewer bytes (the
grid was extended before any of them ran, continuing its steps)."""
VIEWS = ("user", "item", "either")
FIGURES = ("auc", "log_loss", "accuracy", "mse", "cold_auc", "embedding_bytes", "agent_bytes",
           "max_embedding_bytes", "events_per_second")  # fmt: skip
"""Per-row figures averaged over seeds (plus the per-bucket AUCs)."""
LABELS = {
    "all_unique": "all-unique",
    "threshold": "frequency threshold",
    "hashing": "hashing",
    "qr": "QR",
    "lfu": "LFU",
    "lru": "LRU",
    "threshold_hierarchy": "fixed-threshold hierarchy",
    "autoassign": "AutoAssign+, paper preset",
    "autoassign_leanrec": "AutoAssign+, leanrec preset",
}
GOAL1_BYTES = 0.8
"""Goal 1: at most this share of all-unique's end-of-stream embedding bytes."""


# ---------------------------------------------------------------------------------- running
def experiment_for(
    dataset: str, out_dir: Path, methods: Sequence[str], seeds: Sequence[int], curves: bool,
    objectives: Sequence[str], quick: bool,
) -> SharedEmbeddingExperiment:  # fmt: skip
    """The experiment of one method group on one dataset (the protocol constants above)."""
    options: dict[str, Any] = {
        "dataset": dataset,
        "data_dir": str(data_dir()),
        "out_dir": str(out_dir),
        "methods": tuple(methods),
        "seeds": tuple(seeds),
        "curves": curves,
        "objectives": tuple(objectives),
        "levels_grid": LEVELS_GRID,
        "size_grid": SIZE_GRID,
        "threshold_grid": THRESHOLD_GRID,
        "num_threads": 1,
    }
    if quick:  # a tiny synthetic stream: two points per curve, one small MLP
        options.update(
            chunk_size=200, model_options={"mlp_dims": (8,)}, threshold_grid=(2, 5),
            size_grid=(0.5, 1.0), hierarchy_grid=(3, 6), levels_grid=(1,),
            checkpoint_every=4, log_every=100,
        )  # fmt: skip
    return SharedEmbeddingExperiment(**options)


def quick_stream() -> EventStream:
    """The ``--quick`` stream: 2,400 synthetic events over 150 users and 100 items."""
    return make_synthetic_stream(
        2400, n_users=150, n_items=100, dim=4, rating_noise=0.3, seed=3, name="synthetic"
    )


def run_dataset(
    dataset: str, out_dir: Path, methods: Sequence[str], seeds: Sequence[int],
    curve_seeds: Sequence[int], objectives: Sequence[str], quick: bool,
) -> None:  # fmt: skip
    """Run (or resume) every selected method on one dataset, in groups sharing ``out_dir``:
    the byte-bounded baselines with curves on ``curve_seeds`` (and at their chosen knob only on
    the other seeds), every other method at its chosen knob. Rows are keyed by objective,
    method, knob and seed, so the groups add to one another."""
    stream = quick_stream() if quick else None
    curve = [m for m in methods if m in CURVE_METHODS]
    other = [m for m in methods if m not in CURVE_METHODS]
    rest = [s for s in seeds if s not in curve_seeds]
    groups = [
        (curve, [s for s in seeds if s in curve_seeds], True),
        (curve, rest, False),
        (other, list(seeds), False),
    ]
    for group_methods, group_seeds, curves in groups:
        if not group_methods or not group_seeds:
            continue
        bce_first = [o for o in objectives if o == "bce"]
        for objective_set, group_curves in ((bce_first, curves), ([o for o in objectives
                                             if o != "bce"], False)):  # fmt: skip
            if not objective_set:
                continue
            experiment = experiment_for(
                dataset, out_dir, group_methods, group_seeds, group_curves, objective_set, quick
            )
            run_experiment(experiment, stream=stream)


# ---------------------------------------------------------------------------------- summary
def _key(*parts: object) -> str:
    return "|".join(str(p) for p in parts)


def _knob(value: float) -> str:
    return f"{value:g}"


def _mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(present) == 0:
        return None, None
    return float(present.mean()), float(present.std(ddof=1)) if len(present) > 1 else 0.0


def row_figures(row: dict[str, Any]) -> dict[str, Any]:
    """One row's figures: totals, cold AUC, AUC per bucket of each view, bytes, speed."""
    total = row["total"]
    bytes_report = row["bytes"]
    out: dict[str, Any] = {
        "auc": total.get("auc"),
        "log_loss": total.get("log_loss"),
        "accuracy": total.get("accuracy"),
        "mse": total.get("mse"),
        "cold_auc": row["cold"]["auc"],
        "embedding_bytes": bytes_report["embedding"],
        "agent_bytes": bytes_report.get("agent", 0),
        "max_embedding_bytes": row["max_embedding_bytes"],
        "events_per_second": row["events_per_second"],
    }
    views = row.get("buckets_by_view", {"either": row["buckets"]})
    for view in VIEWS:
        for bucket in BUCKETS:
            cell = views.get(view, {}).get(bucket)
            out[f"auc_{view}_{bucket}"] = None if cell is None else cell["auc"]
    return out


def against_curve(
    curve: Sequence[tuple[float, float]], at_bytes: float, value: float, higher_is_better: bool
) -> dict[str, Any]:
    """Where ``value`` at ``at_bytes`` lies against a bytes/metric curve.

    Args:
        curve: ``(bytes, metric)`` points (any order), at least one.
        at_bytes: the end-of-stream bytes of the method judged.
        value: its metric (AUC: ``higher_is_better``; log loss: not).

    Returns:
        ``where``: ``inside`` the curve's byte range, ``fewer`` bytes than every point, or
        ``more``; ``reference``: the curve's metric compared with (inside: the piecewise-linear
        interpolation in bytes; fewer: the smallest point's; more: the best point's; where
        several knobs end at the same bytes, the curve takes the best of them there);
        ``better``: whether ``value`` beats it strictly.
    """
    xs = np.array([p[0] for p in curve], dtype=np.float64)
    ys = np.array([p[1] for p in curve], dtype=np.float64)
    # knobs that end at the same bytes: the curve is at its best of them there
    best = np.max if higher_is_better else np.min
    unique_x = np.unique(xs)
    unique_y = np.array([best(ys[xs == x]) for x in unique_x])
    if at_bytes < unique_x[0]:
        where, reference = "fewer", float(unique_y[0])
    elif at_bytes > unique_x[-1]:
        where, reference = "more", float(best(ys))
    else:
        where, reference = "inside", float(np.interp(at_bytes, unique_x, unique_y))
    better = value > reference if higher_is_better else value < reference
    return {"where": where, "reference": reference, "better": bool(better)}


def summarise_dataset(
    dataset: str, rows: list[dict[str, Any]], config: dict[str, Any]
) -> dict[str, Any]:
    """The flat results of one dataset: every row, mean ± sd per knob and at the chosen knob,
    and the goals per preset."""
    out: dict[str, Any] = {}
    by_point: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    by_chosen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["objective"], r["method"], r["knob"], r["seed"])):
        objective, method, knob, seed = row["objective"], row["method"], row["knob"], row["seed"]
        prefix = _key(dataset, objective, method, _knob(knob), f"seed{seed}")
        figures = row_figures(row)
        for name, value in figures.items():
            out[_key(prefix, name)] = value
        out[_key(prefix, "chosen")] = bool(row["chosen"])
        out[_key(prefix, "warmup_score")] = row["warmup_score"]
        out[_key(prefix, "seconds")] = round(row["seconds"], 1)
        trace = row["bytes_trace"]
        out[_key(prefix, "bytes_trace")] = json.dumps([trace["events"], trace["bytes"]])
        out[_key(prefix, "positions")] = json.dumps(row["positions"], sort_keys=True)
        row["_figures"] = figures
        by_point.setdefault((objective, method, knob), []).append(row)
        if row["chosen"]:
            by_chosen.setdefault((objective, method), []).append(row)
    first = rows[0]
    out[_key(dataset, "evaluated_events")] = first["evaluated_events"]
    out[_key(dataset, "cold_events")] = first["cold"]["n"]
    views = first.get("buckets_by_view", {"either": first["buckets"]})
    for view in VIEWS:
        for bucket in BUCKETS:
            cell = views.get(view, {}).get(bucket)
            out[_key(dataset, f"bucket_events_{view}_{bucket}")] = (
                None if cell is None else cell["n"]
            )

    def aggregate(prefix: str, members: list[dict[str, Any]]) -> None:
        members = sorted(members, key=lambda m: m["seed"])
        for name in members[0]["_figures"]:
            mean, sd = _mean_sd([m["_figures"][name] for m in members])
            out[_key(prefix, f"{name}_mean")] = mean
            out[_key(prefix, f"{name}_sd")] = sd
        out[_key(prefix, "seeds")] = ",".join(str(m["seed"]) for m in members)
        out[_key(prefix, "chosen_on_seeds")] = ",".join(
            str(m["seed"]) for m in members if m["chosen"]
        )

    for (objective, method, knob), members in by_point.items():
        aggregate(_key(dataset, objective, method, _knob(knob)), members)
    for (objective, method), members in by_chosen.items():
        prefix = _key(dataset, objective, method, "chosen")
        aggregate(prefix, members)
        out[_key(prefix, "knob_name")] = members[0]["knob_name"]
        out[_key(prefix, "knobs")] = " / ".join(
            _knob(m["knob"]) for m in sorted(members, key=lambda m: m["seed"])
        )
    objectives = sorted({o for o, _ in by_chosen})
    for objective in objectives:
        out.update(goals(dataset, objective, out, by_point))
    out[_key(dataset, "methods")] = ",".join(sorted({m for _, m in by_chosen}))
    out[_key(dataset, "config")] = json.dumps(config, sort_keys=True, default=str)
    return out


def goals(
    dataset: str,
    objective: str,
    flat: dict[str, Any],
    by_point: dict[tuple[str, str, float], list[dict[str, Any]]],
) -> dict[str, Any]:
    """Goals 1-4 per preset, from the chosen-knob means (``flat``) and the curves."""
    out: dict[str, Any] = {}

    def chosen(method: str, figure: str) -> Any:
        return flat.get(_key(dataset, objective, method, "chosen", f"{figure}_mean"))

    unique_auc, unique_bytes = chosen("all_unique", "auc"), chosen("all_unique", "embedding_bytes")
    unique_cold = chosen("all_unique", "cold_auc")
    hierarchy = {f: chosen("threshold_hierarchy", f) for f in ("auc", "cold_auc", "log_loss",
                                                               "embedding_bytes")}  # fmt: skip
    for method in PRESETS:
        auc, log_loss = chosen(method, "auc"), chosen(method, "log_loss")
        nbytes, cold = chosen(method, "embedding_bytes"), chosen(method, "cold_auc")
        if auc is None:
            continue
        prefix = _key(dataset, objective, method, "goal")
        if unique_auc is not None and unique_bytes:
            ratio = nbytes / unique_bytes
            out[_key(prefix, "1_auc_difference")] = auc - unique_auc
            out[_key(prefix, "1_bytes_ratio")] = ratio
            out[_key(prefix, "1_met")] = bool(auc >= unique_auc and ratio <= GOAL1_BYTES)
        met_all = True
        judged = 0
        for curve_method in CURVE_METHODS:
            for metric, higher in (("auc", True), ("log_loss", False)):
                points = [
                    (
                        float(np.mean([m["_figures"]["embedding_bytes"] for m in members])),
                        float(np.mean([m["_figures"][metric] for m in members])),
                    )
                    for (o, m_name, _k), members in by_point.items()
                    if o == objective and m_name == curve_method
                    and all(m["_figures"][metric] is not None for m in members)
                ]  # fmt: skip
                value = auc if metric == "auc" else log_loss
                if not points or value is None:
                    continue
                verdict = against_curve(points, nbytes, value, higher)
                stem = _key(prefix, "2", curve_method, metric)
                out[_key(stem, "where")] = verdict["where"]
                out[_key(stem, "reference")] = verdict["reference"]
                out[_key(stem, "better")] = verdict["better"]
                out[_key(stem, "points")] = len(points)
                if metric == "auc" and curve_method in BOUNDED:
                    judged += 1
                    met_all = met_all and verdict["better"]
        if judged:
            out[_key(prefix, "2_curves_judged")] = judged
            out[_key(prefix, "2_met")] = bool(met_all and judged == len(BOUNDED))
        if cold is not None and unique_cold is not None:
            out[_key(prefix, "3_cold_auc_difference")] = cold - unique_cold
            out[_key(prefix, "3_met")] = bool(cold > unique_cold)
        if hierarchy["auc"] is not None:
            out[_key(prefix, "4_auc_difference")] = auc - hierarchy["auc"]
            out[_key(prefix, "4_log_loss_difference")] = log_loss - hierarchy["log_loss"]
            out[_key(prefix, "4_cold_auc_difference")] = cold - hierarchy["cold_auc"]
            out[_key(prefix, "4_bytes_ratio")] = nbytes / hierarchy["embedding_bytes"]
            out[_key(prefix, "4_met")] = bool(auc > hierarchy["auc"])
    return out


def drop_rows(out_dir: Path, methods: Sequence[str]) -> int:
    """Take the rows and warm-up scores of ``methods`` out of a run directory (``--redo``:
    a method whose code changed runs again; its old rows go to ``dropped-rows.json`` and
    ``dropped-warmup_scores.json``, appended, so nothing is lost). Returns the rows taken."""
    taken = 0
    for name in ("rows.json", "warmup_scores.json"):
        path = out_dir / name
        if not path.is_file():
            continue
        rows = json.loads(path.read_text())
        keep = [r for r in rows if r["method"] not in methods]
        gone = [r for r in rows if r["method"] in methods]
        if not gone:
            continue
        archive = out_dir / f"dropped-{name}"
        old = json.loads(archive.read_text()) if archive.is_file() else []
        archive.write_text(json.dumps(old + gone, indent=1))
        path.write_text(json.dumps(keep, indent=1))
        taken += len(gone) if name == "rows.json" else 0
    for method in methods:
        for folder in (out_dir / "checkpoints").glob(f"*-{method}-*"):
            shutil.rmtree(folder, ignore_errors=True)
    return taken


def read_rows(out_dir: Path) -> list[dict[str, Any]]:
    """Every finished row of a run directory (none before its first row)."""
    path = out_dir / "rows.json"
    return json.loads(path.read_text()) if path.is_file() else []


# ---------------------------------------------------------------------------------- plots
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _chosen_methods(flat: dict[str, Any], dataset: str, objective: str) -> list[str]:
    return [m for m in DEFAULT_METHODS
            if _key(dataset, objective, m, "chosen", "auc_mean") in flat]  # fmt: skip


def _curve_stems(flat: dict[str, Any], dataset: str, objective: str, method: str) -> list[str]:
    """``dataset|objective|method|knob`` of every knob of a method that has a mean."""
    start = _key(dataset, objective, method, "")
    stems = {
        key.rsplit("|", 1)[0]
        for key in flat
        if key.startswith(start) and key.endswith("|auc_mean") and "|chosen|" not in key
    }
    return sorted(stems, key=lambda stem: float(stem.rsplit("|", 1)[1]))


def plot_bytes(flat: dict[str, Any], datasets: Sequence[str], path: Path, objective: str) -> None:
    """AUC and log loss against end-of-stream bytes: a curve per method over its knob, the
    presets and all-unique as points with sd bars over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), 2, figsize=(12, 4.6 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, metric in enumerate(("auc", "log_loss")):
            axis = axes[row, col]
            for method in _chosen_methods(flat, dataset, objective):
                label = LABELS[method]
                if method in CURVE_METHODS:
                    points = [  # in knob order
                        (flat[f"{s}|embedding_bytes_mean"], flat[f"{s}|{metric}_mean"])
                        for s in _curve_stems(flat, dataset, objective, method)
                        if flat[f"{s}|{metric}_mean"] is not None
                    ]
                    axis.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                              label=label, lw=1.2, ms=4)  # fmt: skip
                else:
                    stem = _key(dataset, objective, method, "chosen")
                    axis.errorbar(
                        flat[f"{stem}|embedding_bytes_mean"], flat[f"{stem}|{metric}_mean"],
                        xerr=flat[f"{stem}|embedding_bytes_sd"], yerr=flat[f"{stem}|{metric}_sd"],
                        marker="*" if method == "all_unique" else "D", capsize=3, ls="none",
                        ms=13 if method == "all_unique" else 8, alpha=0.85, label=label,
                        zorder=4 if method == "all_unique" else 3,
                    )  # fmt: skip
            axis.set_xscale("log")
            axis.set_xlabel("end-of-stream embedding bytes")
            axis.set_ylabel(f"prequential {'AUC' if metric == 'auc' else 'log loss'} ({objective})")
            seeds = flat.get(_key(dataset, "seeds"), "")
            curve_seeds = flat.get(_key(dataset, "curve_seeds"), "")
            axis.set_title(
                f"{dataset}, {objective}: means over seeds {seeds} (bars: sd)\n"
                f"curves in knob order, every knob on seeds {curve_seeds}",
                fontsize=10,
            )
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_buckets(flat: dict[str, Any], datasets: Sequence[str], path: Path, objective: str) -> None:
    """AUC per frequency bucket (user, item, the colder of both), every method at its knob."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), 3, figsize=(15, 4.2 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, view in enumerate(VIEWS):
            axis = axes[row, col]
            for method in _chosen_methods(flat, dataset, objective):
                stem = _key(dataset, objective, method, "chosen")
                values = [flat.get(f"{stem}|auc_{view}_{b}_mean") for b in BUCKETS]
                axis.plot(range(len(BUCKETS)), [np.nan if v is None else v for v in values],
                          marker="o", label=LABELS[method], lw=1)  # fmt: skip
            axis.set_xticks(range(len(BUCKETS)), list(BUCKETS))
            what = {"user": "the user", "item": "the item", "either": "the colder of both"}[view]
            axis.set_xlabel(f"earlier events of {what}")
            axis.set_ylabel(f"AUC ({objective}), mean over seeds")
            axis.set_title(dataset)
            axis.grid(alpha=0.3)
            if col == 0:
                axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_traces(flat: dict[str, Any], datasets: Sequence[str], path: Path, objective: str) -> None:
    """Embedding bytes over the stream, every method at its chosen knob (first seed)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.6), squeeze=False)
    for col, dataset in enumerate(datasets):
        axis = axes[0, col]
        for method in _chosen_methods(flat, dataset, objective):
            keys = sorted(k for k in flat if k.startswith(_key(dataset, objective, method, ""))
                          and k.endswith("|chosen") and flat[k] is True)  # fmt: skip
            if not keys:
                continue
            events, nbytes = json.loads(flat[keys[0].rsplit("|", 1)[0] + "|bytes_trace"])
            axis.plot(events, nbytes, label=LABELS[method], lw=1.2)
        axis.set_xlabel("events")
        axis.set_ylabel("embedding bytes (agent's per-ID state included)")
        axis.set_title(f"{dataset}, chosen knobs, first seed")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- main
def _print(flat: dict[str, Any], dataset: str, objective: str) -> None:
    lines = []
    for method in _chosen_methods(flat, dataset, objective):
        stem = _key(dataset, objective, method, "chosen")
        lines.append([
            LABELS[method], flat[f"{stem}|knobs"] if flat[f"{stem}|knob_name"] else "-",
            *(flat[f"{stem}|{f}_mean"] if flat[f"{stem}|{f}_mean"] is not None else "-"
              for f in ("auc", "log_loss", "cold_auc")),
            f"{flat[f'{stem}|embedding_bytes_mean']:,.0f}",
            f"{flat[f'{stem}|events_per_second_mean']:,.0f}", flat[f"{stem}|seeds"],
        ])  # fmt: skip
    print(f"\n{dataset}, objective {objective}: at the knob chosen on each seed's warm-up")
    print_table(["method", "knob", "AUC", "log loss", "cold AUC", "bytes", "events/s", "seeds"],
                lines)  # fmt: skip
    for method in PRESETS:
        prefix = _key(dataset, objective, method, "goal")
        met = [f"goal {g}: {flat.get(f'{prefix}|{g}_met', '-')}" for g in (1, 2, 3, 4)]
        if any(f"{prefix}|{g}_met" in flat for g in (1, 2, 3, 4)):
            print(f"{LABELS[method]}: " + ", ".join(met))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--curve-seeds", nargs="+", type=int, default=None,
        help="seeds on which the curves run every knob (default: every seed)",
    )  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        choices=DEFAULT_METHODS, help="methods to run (rows already in the run "
                        "directories are reported too)")  # fmt: skip
    parser.add_argument("--objectives", nargs="+", default=["bce"], choices=("bce", "mse"))
    parser.add_argument("--runs", default=None, help="root of the run directories")
    parser.add_argument(
        "--redo", nargs="+", default=[], choices=DEFAULT_METHODS,
        help="methods whose stored rows are dropped and run again (their code changed)",
    )  # fmt: skip
    parser.add_argument("--no-run", action="store_true",
                        help="only assemble the results from the run directories")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="a 2,400-event synthetic stream, small grids (seconds)")  # fmt: skip
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args(argv)
    stem = SCRIPT if not args.tag else f"{SCRIPT}--{args.tag}"
    root = Path(args.runs) if args.runs else Path("runs") / stem
    datasets = ["synthetic"] if args.quick else list(args.dataset)
    curve_seeds = args.curve_seeds if args.curve_seeds is not None else args.seeds
    began = time.perf_counter()
    flat: dict[str, Any] = {
        "datasets": ",".join(datasets),
        "quick": args.quick,
        "runs": str(root),
        "levels_grid": ",".join(str(k) for k in LEVELS_GRID),
        "size_grid": ",".join(f"{s:g}" for s in SIZE_GRID),
        "threshold_grid": ",".join(str(n) for n in THRESHOLD_GRID),
        "presets": json.dumps(PRESETS),
    }
    for dataset in datasets:
        out_dir = root / dataset
        if args.redo and not args.no_run:
            print(f"{dataset}: dropped {drop_rows(out_dir, args.redo)} rows of {args.redo}")
        if not args.no_run:
            run_dataset(dataset, out_dir, args.methods, args.seeds, curve_seeds,
                        args.objectives, args.quick)  # fmt: skip
        rows = read_rows(out_dir)
        if not rows:
            raise SystemExit(f"no rows in {out_dir}")
        config = json.loads((out_dir / "config.json").read_text())
        for name in ("methods", "seeds", "curves", "objectives"):
            config.pop(name, None)  # per method group: the rows say which
        flat.update(summarise_dataset(dataset, rows, config))
        curve_rows = {(r["seed"]) for r in rows if r["method"] in CURVE_METHODS and
                      not r["chosen"]}  # fmt: skip
        flat[_key(dataset, "curve_seeds")] = ",".join(str(s) for s in sorted(curve_rows))
        flat[_key(dataset, "seeds")] = ",".join(str(s) for s in sorted({r["seed"] for r in rows}))
        for objective in sorted({r["objective"] for r in rows}):
            _print(flat, dataset, objective)
    flat["assemble_seconds"] = round(time.perf_counter() - began, 1)
    path = write_results(SCRIPT, flat, args.tag)
    figures = []
    for suffix, plot in (("", plot_bytes), ("buckets", plot_buckets), ("trace", plot_traces)):
        tag = "--".join(t for t in (args.tag, suffix) if t) or None
        figure = results_path(SCRIPT, tag, ".png")
        plot(flat, datasets, figure, "bce")
        figures.append(figure)
    print(f"\nwrote {path}, " + ", ".join(str(f) for f in figures))


if __name__ == "__main__":
    main()
