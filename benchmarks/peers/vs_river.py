"""leanrec's all-unique DeepFM and river on the same event stream, prequentially, in one run.

Goal: on the ML-1M stream, leanrec's all-unique baseline (every ID its own row on first sight,
unbounded; DeepFM, d = 16) is at least as accurate as river's best model (AUC, and MSE on the
ratings) and processes at least 2x more events per second.

Stream: ``ml-1m-partial`` in time order (ties in file order), label = rating >= 4, chunks of
``--chunk`` events, the first ``--warmup`` of the events for training and tuning only; the
figures are over every later event. ``--events N`` runs both sides on the first ``N`` events
(the same prefix for both).

leanrec: two models, each a :class:`~leanrec.models.stream.StreamModel` over DeepFM with
all-unique tables (:mod:`leanrec.train.stream`): one with BCE on the label (AUC, log loss,
accuracy), one with MSE on the rating. Per chunk: predict, then the tables give new IDs their
rows, then ``passes`` shuffled passes of mini-batches (Adam on the dense part, the chosen
optimiser on the tables). One torch thread (``--threads``).

river (0.26.1, in its own venv, ``river_env.py``; the loop in ``river_side.py``): learns one
event at a time, predict then learn, the warm-up included: ``facto.FMClassifier`` (16 factors)
on the one-hot user and item for the label, and ``reco.BiasedMF`` (16 factors) on the rating.
Both sides read the same fields (user and item) and nothing else.

Tuning (same effort on both sides): each model has a grid of 12 settings, and each setting is
scored on the warm-up only: trained on its first 75% and scored prequentially on its last 25%
(AUC for the label models, MSE for the rating models); the best setting then runs the whole
stream once. Both sides are scored by the same code (``leanrec.evaluate.prequential``) on the
same evaluated events, also per frequency bucket of the event's user and item (cold-ID view).
AUC is reported for the rating models too (the predicted rating as a score), so "river's
best AUC" is the better of its two models.

Events per second: events processed (warm-up included) over the seconds spent predicting and
learning; for leanrec the evaluator's own bookkeeping is excluded, for river the feature-dict
construction per event is included (ID strings are prepared before the clock starts).

Writes ``results/vs_river.json`` and ``results/vs_river.png`` (AUC per evaluated chunk for
every model, and rating MSE per chunk); ``--tag T`` writes ``vs_river--T.*``. Run from the
repository root:

    python -m benchmarks.peers.vs_river [--events N] [--chunk 1000] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import (
    add_tag_argument,
    data_dir,
    print_table,
    results_path,
    write_results,
)
from benchmarks.peers.river_env import RIVER_REQUIREMENT, ensure_river_venv
from leanrec.data.events import EventStream
from leanrec.evaluate.prequential import (
    BUCKETS,
    Prediction,
    PrequentialRecord,
    StreamChunk,
    event_metrics,
    run_prequential,
)
from leanrec.models.stream import build_stream_model
from leanrec.train.stream import (
    StreamTrainer,
    StreamTrainerConfig,
    expand_grid,
    run_stream,
    tune_on_warmup,
)

SCRIPT = "vs_river"
RIVER_SIDE = Path(__file__).resolve().parent / "river_side.py"
EMBEDDING_DIM = 16

# 12 settings per model on each side.
LEANREC_BASE = StreamTrainerConfig(table_optimizer="adagrad", learning_rate=3e-4)
LEANREC_INIT_STD = 0.01
"""Std of new rows (and of the fallback vector) of the all-unique tables."""
LEANREC_GRID: dict[str, list[Any]] = {
    "table_learning_rate": [0.03, 0.1, 0.3],
    "batch_size": [64, 256],
    "passes": [1, 2],
}
RIVER_FM_GRID: dict[str, list[Any]] = {
    "latent_lr": [0.01, 0.03, 0.1, 0.3],
    "weight_lr": [0.01, 0.03, 0.1],
}
RIVER_MF_GRID: dict[str, list[Any]] = {
    "latent_lr": [0.005, 0.01, 0.02, 0.05],
    "bias_lr": [0.005, 0.01, 0.03],
}
QUICK_GRIDS: dict[str, dict[str, list[Any]]] = {
    "leanrec": {"table_learning_rate": [0.1], "batch_size": [256], "passes": [1]},
    "fm": {"latent_lr": [0.1], "weight_lr": [0.03]},
    "mf": {"latent_lr": [0.02], "bias_lr": [0.01]},
}


def _grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, v, strict=True)) for v in itertools.product(*grid.values())]


# ---------------------------------------------------------------------------------- leanrec
def _leanrec_trainer(config: StreamTrainerConfig, seed: int) -> StreamTrainer:
    model = build_stream_model(
        "deepfm", embedding_dim=EMBEDDING_DIM, seed=seed, init_std=LEANREC_INIT_STD
    )
    return StreamTrainer(model, config)


def run_leanrec(
    stream: EventStream, args: argparse.Namespace, objective: str, grid: Mapping[str, Any]
) -> dict[str, Any]:
    """Tune one leanrec model on the warm-up, then run it over the whole stream."""
    base = dataclasses.replace(LEANREC_BASE, objective=objective, seed=args.seed)
    configs = expand_grid(base, grid)
    began = time.perf_counter()
    tuning = tune_on_warmup(
        stream,
        lambda c: _leanrec_trainer(c, args.seed),
        configs,
        warmup_fraction=args.warmup,
        validation_fraction=args.validation,
        chunk_size=args.chunk,
    )
    tuning_seconds = time.perf_counter() - began
    trainer = _leanrec_trainer(tuning.best, args.seed)
    plan = stream.plan(size=args.chunk, warmup_fraction=args.warmup)
    began = time.perf_counter()
    record = run_stream(stream, plan, trainer)
    wall = time.perf_counter() - began
    summary = record.summary()
    return {
        "record": record,
        "summary": summary,
        "config": dataclasses.asdict(tuning.best),
        "tuning": tuning.to_dict(),
        "tuning_seconds": tuning_seconds,
        "wall_seconds": wall,
        "events_per_second": summary["timing"]["events_per_second"],
        "bytes": trainer.bytes_report(),
    }


# ---------------------------------------------------------------------------------- river
def _river_jobs(python: Path, stream_file: Path, runs: list[dict[str, Any]], folder: Path) -> None:
    job = folder / f"job-{time.monotonic_ns()}.json"
    job.write_text(json.dumps({"stream": str(stream_file), "runs": runs}))
    subprocess.run([str(python), str(RIVER_SIDE), str(job)], check=True)


def run_river(
    python: Path,
    stream: EventStream,
    stream_file: Path,
    folder: Path,
    args: argparse.Namespace,
    model: str,
    grid: Mapping[str, Sequence[Any]],
) -> dict[str, Any]:
    """Tune one river model on the warm-up (same split as leanrec's), then run the stream."""
    warmup = stream.warmup_size(args.warmup)
    split_plan = stream[0:warmup].plan(size=args.chunk, warmup_fraction=1 - args.validation)
    split = next(c.start for c in split_plan if not c.warmup)
    settings = _grid(grid)
    runs = [
        {
            "model": model,
            "params": params,
            "stop": warmup,
            "score_from": split,
            "seed": args.seed,
            "out": str(folder / f"{model}-tune-{k}.npz"),
        }
        for k, params in enumerate(settings)
    ]
    began = time.perf_counter()
    _river_jobs(python, stream_file, runs, folder)
    tuning_seconds = time.perf_counter() - began
    trials = []
    for params, run in zip(settings, runs, strict=True):
        with np.load(run["out"]) as out:
            prediction = out["prediction"]
        validation = _metrics(stream, split, warmup, prediction, model)
        score = validation["auc"] if model == "fm" else -validation["mse"]
        trials.append({"params": params, "score": score, "validation": validation})
    best = max(range(len(trials)), key=lambda k: trials[k]["score"])
    final = {
        "model": model,
        "params": settings[best],
        "stop": len(stream),
        "score_from": warmup,
        "seed": args.seed,
        "out": str(folder / f"{model}-final.npz"),
    }
    began = time.perf_counter()
    _river_jobs(python, stream_file, [final], folder)
    wall = time.perf_counter() - began
    with np.load(final["out"]) as out:
        prediction, seconds = out["prediction"], float(out["seconds"])
    record = _replay_record(stream, args, prediction, model)
    return {
        "record": record,
        "summary": record.summary(),
        "config": settings[best],
        "tuning": {
            "trials": trials,
            "train_events": [0, split],
            "validation_events": [split, warmup],
        },
        "tuning_seconds": tuning_seconds,
        "wall_seconds": wall,
        "events_per_second": len(stream) / seconds,
    }


def _metrics(
    stream: EventStream, start: int, stop: int, prediction: np.ndarray, model: str
) -> dict[str, Any]:
    label = stream.label[start:stop]
    rating = (
        stream.rating[start:stop].astype(np.float64)
        if stream.rating is not None
        else np.full(stop - start, np.nan)
    )
    if model == "fm":
        return event_metrics(label, prediction, rating, np.full(stop - start, np.nan))
    out = event_metrics(label, np.full(stop - start, np.nan), rating, prediction)
    out["auc"] = _score_auc(label, prediction)
    return out


def _score_auc(label: np.ndarray, score: np.ndarray) -> float | None:
    from leanrec.evaluate.pointwise import auc

    positives = int(label.sum())
    return auc(label.astype(np.float64), score) if 0 < positives < len(label) else None


def _replay_record(
    stream: EventStream, args: argparse.Namespace, prediction: np.ndarray, model: str
) -> PrequentialRecord:
    """A prequential record of precomputed per-event predictions (the evaluated events), so
    river is scored, bucketed and cut into chunks by exactly the code that scores leanrec."""
    plan = stream.plan(size=args.chunk, warmup_fraction=args.warmup)
    offset = stream.warmup_size(args.warmup)

    def predict(batch: StreamChunk) -> Prediction:
        part = prediction[batch.chunk.start - offset : batch.chunk.stop - offset]
        if model == "fm":
            return Prediction(probability=np.clip(part, 0.0, 1.0))
        return Prediction(rating=part)

    return run_prequential(stream, plan, predict, lambda batch: None)


# ---------------------------------------------------------------------------------- report
def _chunk_auc_of_scores(record: PrequentialRecord) -> np.ndarray:
    """AUC per evaluated chunk of the rating predictions used as scores."""
    data = record.arrays()
    out = []
    start = 0
    for row in record.chunks:
        if row["warmup"]:
            continue
        n = row["stop"] - row["start"]
        out.append(
            _score_auc(
                data["label"][start : start + n], data["rating_prediction"][start : start + n]
            )
            or np.nan
        )
        start += n
    return np.array(out, dtype=np.float64)


def _chunk_series(record: PrequentialRecord, key: str) -> np.ndarray:
    return np.array(
        [np.nan if c.get(key) is None else c[key] for c in record.chunks if not c["warmup"]]
    )


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    n_chunks = len(_chunk_series(results["leanrec_bce"]["record"], "auc"))
    window = max(1, min(20, n_chunks // 5))
    curves = {
        "leanrec DeepFM (BCE)": _chunk_series(results["leanrec_bce"]["record"], "auc"),
        "leanrec DeepFM (MSE), rating as score": _chunk_auc_of_scores(
            results["leanrec_mse"]["record"]
        ),
        "river FMClassifier": _chunk_series(results["river_fm"]["record"], "auc"),
        "river BiasedMF, rating as score": _chunk_auc_of_scores(results["river_mf"]["record"]),
    }
    for label, series in curves.items():
        x = np.arange(len(series))
        (line,) = top.plot(x, series, lw=0.5, alpha=0.35)
        smooth = np.convolve(
            np.nan_to_num(series, nan=np.nanmean(series)), np.ones(window) / window, "valid"
        )
        top.plot(x[window - 1 :], smooth, lw=1.6, color=line.get_color(), label=label)
    top.set_ylabel(f"AUC per chunk (thin) and {window}-chunk mean")
    top.legend(fontsize=8, loc="lower right")
    top.set_title(title)
    for label, key in (("leanrec DeepFM (MSE)", "leanrec_mse"), ("river BiasedMF", "river_mf")):
        series = _chunk_series(results[key]["record"], "mse")
        x = np.arange(len(series))
        (line,) = bottom.plot(x, series, lw=0.5, alpha=0.35)
        smooth = np.convolve(series, np.ones(window) / window, "valid")
        bottom.plot(x[window - 1 :], smooth, lw=1.6, color=line.get_color(), label=label)
    bottom.set_ylabel("rating MSE per chunk")
    bottom.set_xlabel("evaluated chunk")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _flat(prefix: str, result: dict[str, Any], scores_are_ratings: bool) -> dict[str, Any]:
    summary = result["summary"]
    total = summary["total"]
    out: dict[str, Any] = {
        f"{prefix}_events_per_second": round(result["events_per_second"], 1),
        f"{prefix}_wall_seconds": round(result["wall_seconds"], 2),
        f"{prefix}_tuning_seconds": round(result["tuning_seconds"], 2),
        f"{prefix}_config": json.dumps(result["config"], sort_keys=True),
        f"{prefix}_tuning_trials": json.dumps(result["tuning"]["trials"], sort_keys=True),
    }
    record = result["record"]
    if scores_are_ratings:
        data = record.arrays()
        out[f"{prefix}_mse"] = total["mse"]
        out[f"{prefix}_auc"] = _score_auc(data["label"], data["rating_prediction"])
        for view in ("user", "item", "either"):
            for b, name in enumerate(BUCKETS):
                rows = data[view] == b
                out[f"{prefix}_mse_{view}_{name}"] = summary["buckets"][view][name]["mse"]
                out[f"{prefix}_auc_{view}_{name}"] = _score_auc(
                    data["label"][rows], data["rating_prediction"][rows]
                )
    else:
        for key in ("auc", "log_loss", "accuracy"):
            out[f"{prefix}_{key}"] = total[key]
        for view in ("user", "item", "either"):
            for name in BUCKETS:
                out[f"{prefix}_auc_{view}_{name}"] = summary["buckets"][view][name]["auc"]
    for view in ("either",):
        for name in BUCKETS:
            out[f"bucket_events_{view}_{name}"] = summary["buckets"][view][name]["n"]
    if "bytes" in result:
        memory = summary["memory"]
        out[f"{prefix}_embedding_bytes_end"] = result["bytes"]["embedding"]
        out[f"{prefix}_dense_bytes"] = result["bytes"]["dense"]
        out[f"{prefix}_optimizer_bytes_end"] = result["bytes"]["optimizer"]
        step = max(1, len(memory["events"]) // 50)
        out[f"{prefix}_embedding_bytes_trace"] = json.dumps(
            [memory["events"][::step], memory["bytes"][::step]]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", default="ml-1m-partial")
    parser.add_argument("--events", type=int, default=None, help="run on this prefix only")
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--validation", type=float, default=0.25, help="of the warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one setting per model (smoke)")
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    stream = EventStream.from_dataset(args.dataset, data_dir=data_dir())
    if args.events is not None and args.events < len(stream):
        stream = stream[0 : args.events]
    print(stream, flush=True)
    python = ensure_river_venv()
    grids = (
        QUICK_GRIDS
        if args.quick
        else {"leanrec": LEANREC_GRID, "fm": RIVER_FM_GRID, "mf": RIVER_MF_GRID}
    )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vs_river-") as tmp:
        folder = Path(tmp)
        stream_file = folder / "stream.npz"
        assert stream.rating is not None
        np.savez(
            stream_file,
            user=stream.user,
            item=stream.item,
            label=stream.label,
            rating=stream.rating,
        )
        print("river FMClassifier ...", flush=True)
        results["river_fm"] = run_river(
            python, stream, stream_file, folder, args, "fm", grids["fm"]
        )
        print("river BiasedMF ...", flush=True)
        results["river_mf"] = run_river(
            python, stream, stream_file, folder, args, "mf", grids["mf"]
        )
    print("leanrec DeepFM (BCE) ...", flush=True)
    results["leanrec_bce"] = run_leanrec(stream, args, "bce", grids["leanrec"])
    print("leanrec DeepFM (MSE) ...", flush=True)
    results["leanrec_mse"] = run_leanrec(stream, args, "mse", grids["leanrec"])

    flat: dict[str, Any] = {
        "dataset": args.dataset,
        "events": len(stream),
        "evaluated_events": results["leanrec_bce"]["summary"]["evaluated_events"],
        "warmup_events": stream.warmup_size(args.warmup),
        "chunk": args.chunk,
        "threads": args.threads,
        "seed": args.seed,
        "quick": args.quick,
        "river": RIVER_REQUIREMENT,
        "embedding_dim": EMBEDDING_DIM,
    }
    flat.update(_flat("leanrec_bce", results["leanrec_bce"], False))
    flat.update(_flat("leanrec_mse", results["leanrec_mse"], True))
    flat.update(_flat("river_fm", results["river_fm"], False))
    flat.update(_flat("river_mf", results["river_mf"], True))
    river_best_auc = max(a for a in (flat["river_fm_auc"], flat["river_mf_auc"]) if a is not None)
    flat["river_best_auc"] = river_best_auc
    flat["leanrec_best_auc"] = max(flat["leanrec_bce_auc"], flat["leanrec_mse_auc"])
    flat["speed_ratio_bce_vs_fm"] = round(
        flat["leanrec_bce_events_per_second"] / flat["river_fm_events_per_second"], 2
    )
    flat["speed_ratio_mse_vs_mf"] = round(
        flat["leanrec_mse_events_per_second"] / flat["river_mf_events_per_second"], 2
    )
    flat["goal_auc_met"] = flat["leanrec_bce_auc"] >= river_best_auc
    flat["goal_mse_met"] = flat["leanrec_mse_mse"] <= flat["river_mf_mse"]
    flat["goal_speed_met"] = min(flat["speed_ratio_bce_vs_fm"], flat["speed_ratio_mse_vs_mf"]) >= 2

    rows = [
        [
            "leanrec DeepFM all-unique (BCE)",
            flat["leanrec_bce_auc"],
            flat["leanrec_bce_log_loss"],
            flat["leanrec_bce_accuracy"],
            "-",
            flat["leanrec_bce_events_per_second"],
        ],
        [
            "leanrec DeepFM all-unique (MSE)",
            flat["leanrec_mse_auc"],
            "-",
            "-",
            flat["leanrec_mse_mse"],
            flat["leanrec_mse_events_per_second"],
        ],
        [
            "river FMClassifier",
            flat["river_fm_auc"],
            flat["river_fm_log_loss"],
            flat["river_fm_accuracy"],
            "-",
            flat["river_fm_events_per_second"],
        ],
        [
            "river BiasedMF",
            flat["river_mf_auc"],
            "-",
            "-",
            flat["river_mf_mse"],
            flat["river_mf_events_per_second"],
        ],
    ]
    print_table(["model", "AUC", "log loss", "accuracy", "MSE", "events/s"], rows)
    print(
        f"speed ratio: BCE/FM {flat['speed_ratio_bce_vs_fm']}x, MSE/BiasedMF "
        f"{flat['speed_ratio_mse_vs_mf']}x; goals: AUC {flat['goal_auc_met']}, MSE "
        f"{flat['goal_mse_met']}, speed {flat['goal_speed_met']}"
    )
    path = write_results(SCRIPT, flat, args.tag)
    png = results_path(SCRIPT, args.tag, ".png")
    plot(results, png, f"{args.dataset}, {len(stream):,} events, chunks of {args.chunk}")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
