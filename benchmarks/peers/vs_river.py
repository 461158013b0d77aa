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
accuracy), one with MSE on the rating. DeepFM's MLP (its tower: hidden widths 200-80, 64-32 or
32 over the 48 stacked field inputs) is a setting chosen on the warm-up like the step sizes.
Per chunk: predict, then the tables give new IDs their rows, then shuffled mini-batches of 256
events: Adam on the dense part, and a row-wise optimiser (:mod:`leanrec.train.row_optim`:
row-wise Adagrad or RMSprop, with its own step size for the per-ID biases) that updates only the
rows a batch touched, on the summed per-event gradient. One torch thread (``--threads``).

river (0.26.1, in its own venv, ``river_env.py``; the loop in ``river_side.py``): learns one
event at a time: ``facto.FMClassifier`` (16 factors) on the one-hot user and item for the label,
and ``reco.BiasedMF`` (16 factors) on the rating. Both sides read the same fields (user and item)
and nothing else. river runs under two protocols, each tuned on its own:

* ``chunks`` (the rows ``river_fm`` / ``river_mf``): the prequential protocol leanrec is scored
  by: every event of a chunk is predicted before any event of the chunk is learnt (river still
  learns the chunk one event at a time). The goals are judged against these;
* ``per_event`` (``river_*_per_event``): river's own predict-one-learn-one loop, where each
  prediction has already learnt every earlier label, those of the same chunk included (a user
  rating 50 films in one session is known after the first few). A chunked learner cannot see
  those labels, so this is a stricter reference, not the same protocol.

Tuning (same effort on both sides): each model has a grid of 12 settings (river: per protocol;
leanrec: tower x optimiser with its step x bias step, 3 x 2 x 2), and each setting is scored on
the warm-up only: trained on its first 75% and scored prequentially on its last 25% (AUC for
the label models, MSE for the rating models); the best
setting then runs the whole stream once; a setting that diverges is never chosen. Both sides are
scored by the same code (``leanrec.evaluate.prequential``) on the same evaluated events, also per
frequency bucket of the event's user and item (cold-ID view). AUC is reported for the rating
models too (the predicted rating as a score), so each side's best AUC is the better of its two
models.

Events per second: events processed (warm-up included) over the seconds spent predicting and
learning; for leanrec the evaluator's own bookkeeping is excluded, for river the feature-dict
construction per event is included (ID strings are prepared before the clock starts). Each side
is timed twice over the same calls: by the wall clock (``*_events_per_second``) and by its
process's CPU time (``*_cpu_events_per_second``). On a machine shared with other jobs the wall
clock of a side depends on what else ran at that moment, its CPU time much less, so the CPU
ratios are the steadier comparison; the load average before and after the run is recorded
(``load_average_start`` / ``load_average_end``). The tuning trials are timed by CPU time too
(``cpu_seconds`` per trial), so each tower's cost on the warm-up is set against river's on the
same events (``leanrec_*_tower_*`` keys: best validation score of the tower's settings, mean
events per CPU second of its trials, and that speed over river's mean on its trials).

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
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

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
    Objective,
    StreamTrainer,
    StreamTrainerConfig,
    expand_grid,
    run_stream,
    tune_on_warmup,
)

SCRIPT = "vs_river"
RIVER_SIDE = Path(__file__).resolve().parent / "river_side.py"
EMBEDDING_DIM = 16


@dataclasses.dataclass
class LeanrecSetting(StreamTrainerConfig):
    """One leanrec setting tuned on the warm-up: the trainer's config and the base model's
    tower, so that the tower is chosen on the warm-up like every step size."""

    mlp_dims: tuple[int, ...] = (200, 80)
    """Hidden widths of DeepFM's MLP over the ``m · d = 48`` stacked field vectors (the paper's
    and :class:`~leanrec.models.ctr.base.CTRConfig`'s default: 200, 80)."""


# 12 settings per model and protocol on each side.
LEANREC_BASE = LeanrecSetting(learning_rate=3e-4, batch_size=256)
LEANREC_INIT_STD = 0.01
"""Std of new rows (and of the fallback vector) of the all-unique tables."""
LEANREC_TOWERS: list[tuple[int, ...]] = [(200, 80), (64, 32), (32,)]
"""DeepFM's MLP: the default and two smaller towers (a step costs less with a smaller one)."""
LEANREC_GRIDS: list[dict[str, list[Any]]] = [
    {
        "mlp_dims": LEANREC_TOWERS,
        "table_optimizer": [optimizer],
        "table_learning_rate": [step],
        "bias_learning_rate": [None, 0.03],
    }
    for optimizer, step in (("row_adagrad", 0.1), ("row_rmsprop", 0.01))
]
"""3 towers x 2 row-wise optimisers (only the touched rows, summed per-event gradient), each at
the middle step of its former grid (Adagrad {0.03, 0.1, 0.3}, RMSprop {0.003, 0.01, 0.03}:
the ends lost on the warm-up under both objectives) x a bias step equal to the table step or
0.03. The exploration on the warm-up behind the optimisers is in the stream-trainer notes."""
RIVER_FM_GRID: dict[str, list[Any]] = {
    "latent_lr": [0.03, 0.1, 0.3, 1.0],
    "weight_lr": [0.03, 0.1, 0.3],
}
RIVER_MF_GRID: dict[str, list[Any]] = {
    "latent_lr": [0.01, 0.02, 0.05, 0.1],
    "bias_lr": [0.01, 0.03, 0.1],
}
QUICK_GRIDS: dict[str, Any] = {
    "leanrec": [
        {"table_optimizer": ["row_rmsprop"], "table_learning_rate": [0.01], "mlp_dims": [(32,)]},
    ],
    "fm": {"latent_lr": [0.1], "weight_lr": [0.03]},
    "mf": {"latent_lr": [0.02], "bias_lr": [0.01]},
}


def _grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, v, strict=True)) for v in itertools.product(*grid.values())]


# ---------------------------------------------------------------------------------- leanrec
def _leanrec_trainer(config: StreamTrainerConfig, seed: int) -> StreamTrainer:
    assert isinstance(config, LeanrecSetting)
    model = build_stream_model(
        "deepfm",
        embedding_dim=EMBEDDING_DIM,
        seed=seed,
        init_std=LEANREC_INIT_STD,
        mlp_dims=config.mlp_dims,
    )
    return StreamTrainer(model, config)


def run_leanrec(
    stream: EventStream,
    args: argparse.Namespace,
    objective: Objective,
    grids: Sequence[Mapping[str, Sequence[Any]]],
) -> dict[str, Any]:
    """Tune one leanrec model on the warm-up, then run it over the whole stream."""
    base = dataclasses.replace(LEANREC_BASE, objective=objective, seed=args.seed)
    configs = [config for grid in grids for config in expand_grid(base, grid)]
    trial_clocks: list[_CpuClock] = []

    def timed_trainer(config: StreamTrainerConfig) -> StreamTrainer:
        # tune_on_warmup builds one trainer per config, in order: one CPU clock per trial
        trainer = _leanrec_trainer(config, args.seed)
        trial_clocks.append(_CpuClock())
        trainer.predict = trial_clocks[-1].wrap(trainer.predict)  # type: ignore[method-assign]
        trainer.learn = trial_clocks[-1].wrap(trainer.learn)  # type: ignore[method-assign]
        return trainer

    began = time.perf_counter()
    tuning = tune_on_warmup(
        stream,
        timed_trainer,
        configs,
        warmup_fraction=args.warmup,
        validation_fraction=args.validation,
        chunk_size=args.chunk,
    )
    tuning_seconds = time.perf_counter() - began
    tuning_report = tuning.to_dict()
    for trial, clock in zip(tuning_report["trials"], trial_clocks, strict=True):
        trial["cpu_seconds"] = clock.seconds
    trainer = _leanrec_trainer(tuning.best, args.seed)
    plan = stream.plan(size=args.chunk, warmup_fraction=args.warmup)
    cpu = _CpuClock()
    # run_stream calls trainer.predict / trainer.learn: the instance attributes shadow the
    # methods, so the CPU clock runs over exactly the calls the record's wall timing covers
    trainer.predict = cpu.wrap(trainer.predict)  # type: ignore[method-assign]
    trainer.learn = cpu.wrap(trainer.learn)  # type: ignore[method-assign]
    began = time.perf_counter()
    record = run_stream(stream, plan, trainer)
    wall = time.perf_counter() - began
    summary = record.summary()
    return {
        "record": record,
        "summary": summary,
        "config": dataclasses.asdict(tuning.best),
        "tuning": tuning_report,
        "tuning_seconds": tuning_seconds,
        "wall_seconds": wall,
        "events_per_second": summary["timing"]["events_per_second"],
        "cpu_events_per_second": len(stream) / cpu.seconds,
        "bytes": trainer.bytes_report(),
    }


P = ParamSpec("P")
R = TypeVar("R")


class _CpuClock:
    """CPU seconds of this process spent inside the callables it wrapped."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, call: Callable[P, R]) -> Callable[P, R]:
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            began = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - began

        return timed


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
    protocol: str,
) -> dict[str, Any]:
    """Tune one river model on the warm-up (same split as leanrec's), then run the stream.

    ``protocol``: ``"chunks"`` predicts every event of a chunk before learning any of them, on
    the chunks leanrec gets (the prequential protocol both sides are scored by);
    ``"per_event"`` is river's own loop, where each prediction has seen every earlier label,
    those of the same chunk included."""
    warmup = stream.warmup_size(args.warmup)
    split_plan = stream[0:warmup].plan(size=args.chunk, warmup_fraction=1 - args.validation)
    split = next(c.start for c in split_plan if not c.warmup)
    full_plan = stream.plan(size=args.chunk, warmup_fraction=args.warmup)

    def starts(plan: Sequence[Any]) -> list[int]:
        return [c.start for c in plan] if protocol == "chunks" else []

    settings = _grid(grid)
    runs = [
        {
            "model": model,
            "params": params,
            "stop": warmup,
            "score_from": split,
            "starts": starts(split_plan),
            "seed": args.seed,
            "out": str(folder / f"{model}-{protocol}-tune-{k}.npz"),
        }
        for k, params in enumerate(settings)
    ]
    began = time.perf_counter()
    _river_jobs(python, stream_file, runs, folder)
    tuning_seconds = time.perf_counter() - began
    trials: list[dict[str, Any]] = []
    for params, run in zip(settings, runs, strict=True):
        with np.load(run["out"]) as out:
            prediction, trial_cpu_seconds = out["prediction"], float(out["cpu_seconds"])
        if not np.isfinite(prediction).all():  # the setting diverged
            trials.append(
                {
                    "params": params,
                    "score": None,
                    "validation": None,
                    "cpu_seconds": trial_cpu_seconds,
                }
            )
            continue
        validation = _metrics(stream, split, warmup, prediction, model)
        score = validation["auc"] if model == "fm" else -validation["mse"]
        trials.append(
            {
                "params": params,
                "score": score,
                "validation": validation,
                "cpu_seconds": trial_cpu_seconds,
            }
        )
    best = max(
        range(len(trials)),
        key=lambda k: -np.inf if trials[k]["score"] is None else trials[k]["score"],
    )
    final = {
        "model": model,
        "params": settings[best],
        "stop": len(stream),
        "score_from": warmup,
        "starts": starts(full_plan),
        "seed": args.seed,
        "out": str(folder / f"{model}-{protocol}-final.npz"),
    }
    began = time.perf_counter()
    _river_jobs(python, stream_file, [final], folder)
    wall = time.perf_counter() - began
    with np.load(final["out"]) as out:
        prediction, seconds = out["prediction"], float(out["seconds"])
        cpu_seconds = float(out["cpu_seconds"])
    record = _replay_record(stream, args, prediction, model)
    return {
        "record": record,
        "summary": record.summary(),
        "config": {**settings[best], "protocol": protocol},
        "tuning": {
            "trials": trials,
            "train_events": [0, split],
            "validation_events": [split, warmup],
        },
        "tuning_seconds": tuning_seconds,
        "wall_seconds": wall,
        "events_per_second": len(stream) / seconds,
        "cpu_events_per_second": len(stream) / cpu_seconds,
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
        "river FMClassifier, per event": _chunk_series(
            results["river_fm_per_event"]["record"], "auc"
        ),
        "river BiasedMF per event, rating as score": _chunk_auc_of_scores(
            results["river_mf_per_event"]["record"]
        ),
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
    for label, key in (
        ("leanrec DeepFM (MSE)", "leanrec_mse"),
        ("river BiasedMF", "river_mf"),
        ("river BiasedMF, per event", "river_mf_per_event"),
    ):
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
        f"{prefix}_cpu_events_per_second": round(result["cpu_events_per_second"], 1),
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
        out.update(_tower_view(prefix, result["tuning"]))
        memory = summary["memory"]
        out[f"{prefix}_embedding_bytes_end"] = result["bytes"]["embedding"]
        out[f"{prefix}_dense_bytes"] = result["bytes"]["dense"]
        out[f"{prefix}_optimizer_bytes_end"] = result["bytes"]["optimizer"]
        step = max(1, len(memory["events"]) // 50)
        out[f"{prefix}_embedding_bytes_trace"] = json.dumps(
            [memory["events"][::step], memory["bytes"][::step]]
        )
    return out


def tower_name(mlp_dims: Sequence[int]) -> str:
    """``(200, 80)`` -> ``"200-80"``; ``()`` (no hidden layer) -> ``"none"``."""
    return "-".join(str(w) for w in mlp_dims) or "none"


def _tower_view(prefix: str, tuning: Mapping[str, Any]) -> dict[str, Any]:
    """Per tower, over its settings on the warm-up: the best validation score (AUC, or MSE for
    the rating model) and the mean events per CPU second of a trial (warm-up events over the
    CPU seconds of its predict and learn calls), so a tower's cost is seen in the same run."""
    events = tuning["validation_events"][1]
    out: dict[str, Any] = {}
    for tower in {tuple(t["config"]["mlp_dims"]) for t in tuning["trials"]}:
        trials = [t for t in tuning["trials"] if tuple(t["config"]["mlp_dims"]) == tower]
        scores = [t["score"] for t in trials if t["score"] is not None]
        rating = trials[0]["config"]["objective"] == "mse"
        best = max(scores) if scores else None
        key = f"{prefix}_tower_{tower_name(tower)}"
        out[f"{key}_validation_{'mse' if rating else 'auc'}"] = (
            None if best is None else (-best if rating else best)
        )
        out[f"{key}_cpu_events_per_second"] = round(
            float(np.mean([events / t["cpu_seconds"] for t in trials])), 1
        )
    return out


def _river_trial_speed(result: Mapping[str, Any], events: int) -> float:
    """Mean events per CPU second of a river model's tuning trials (the warm-up)."""
    return round(float(np.mean([events / t["cpu_seconds"] for t in result["tuning"]["trials"]])), 1)


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

    load_start = os.getloadavg()[0]
    stream = EventStream.from_dataset(args.dataset, data_dir=data_dir())
    if args.events is not None and args.events < len(stream):
        stream = stream[0 : args.events]
    print(stream, flush=True)
    python = ensure_river_venv()
    grids: dict[str, Any] = (
        QUICK_GRIDS
        if args.quick
        else {"leanrec": LEANREC_GRIDS, "fm": RIVER_FM_GRID, "mf": RIVER_MF_GRID}
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
        for protocol, suffix in (("chunks", ""), ("per_event", "_per_event")):
            for model, grid_name, label in (("fm", "fm", "FMClassifier"), ("mf", "mf", "BiasedMF")):
                print(f"river {label} ({protocol}) ...", flush=True)
                results[f"river_{model}{suffix}"] = run_river(
                    python, stream, stream_file, folder, args, model, grids[grid_name], protocol
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
        "load_average_start": round(load_start, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    flat.update(_flat("leanrec_bce", results["leanrec_bce"], False))
    flat.update(_flat("leanrec_mse", results["leanrec_mse"], True))
    for suffix in ("", "_per_event"):
        flat.update(_flat(f"river_fm{suffix}", results[f"river_fm{suffix}"], False))
        flat.update(_flat(f"river_mf{suffix}", results[f"river_mf{suffix}"], True))
    flat["leanrec_best_auc"] = max(flat["leanrec_bce_auc"], flat["leanrec_mse_auc"])
    warmup = flat["warmup_events"]
    for model in ("fm", "mf"):
        flat[f"river_{model}_tuning_cpu_events_per_second"] = _river_trial_speed(
            results[f"river_{model}"], warmup
        )
    for side, peer in (("bce", "fm"), ("mse", "mf")):
        # each tower's warm-up trials against the peer's (chunks), on the same warm-up events
        for tower in LEANREC_TOWERS:
            key = f"leanrec_{side}_tower_{tower_name(tower)}_cpu_events_per_second"
            if key in flat:
                flat[key.replace("_events_per_second", f"_speed_ratio_vs_{peer}")] = round(
                    flat[key] / flat[f"river_{peer}_tuning_cpu_events_per_second"], 2
                )
    for suffix in ("", "_per_event"):
        fm, mf = f"river_fm{suffix}", f"river_mf{suffix}"
        flat[f"river{suffix}_best_auc"] = max(
            a for a in (flat[f"{fm}_auc"], flat[f"{mf}_auc"]) if a is not None
        )
        flat[f"speed_ratio_bce_vs_fm{suffix}"] = round(
            flat["leanrec_bce_events_per_second"] / flat[f"{fm}_events_per_second"], 2
        )
        flat[f"speed_ratio_mse_vs_mf{suffix}"] = round(
            flat["leanrec_mse_events_per_second"] / flat[f"{mf}_events_per_second"], 2
        )
        for side, peer in (("bce", fm), ("mse", mf)):
            flat[f"cpu_speed_ratio_{side}_vs_{peer.removeprefix('river_')}"] = round(
                flat[f"leanrec_{side}_cpu_events_per_second"]
                / flat[f"{peer}_cpu_events_per_second"],
                2,
            )
        # each side's best AUC (label model or rating as score), as "river's best model" reads
        flat[f"goal_auc_met{suffix}"] = flat["leanrec_best_auc"] >= flat[f"river{suffix}_best_auc"]
        flat[f"goal_mse_met{suffix}"] = flat["leanrec_mse_mse"] <= flat[f"{mf}_mse"]
        flat[f"goal_speed_met{suffix}"] = (
            min(flat[f"speed_ratio_bce_vs_fm{suffix}"], flat[f"speed_ratio_mse_vs_mf{suffix}"]) >= 2
        )
        flat[f"goal_cpu_speed_met{suffix}"] = (
            min(
                flat[f"cpu_speed_ratio_bce_vs_fm{suffix}"],
                flat[f"cpu_speed_ratio_mse_vs_mf{suffix}"],
            )
            >= 2
        )

    def row(name: str, key: str, rating: bool) -> list[Any]:
        if rating:
            return [name, flat[f"{key}_auc"], "-", "-", flat[f"{key}_mse"]]
        return [name, *(flat[f"{key}_{m}"] for m in ("auc", "log_loss", "accuracy")), "-"]

    rows = [
        [*row("leanrec DeepFM all-unique (BCE)", "leanrec_bce", False)],
        [*row("leanrec DeepFM all-unique (MSE)", "leanrec_mse", True)],
        [*row("river FMClassifier (chunks)", "river_fm", False)],
        [*row("river BiasedMF (chunks)", "river_mf", True)],
        [*row("river FMClassifier (per event)", "river_fm_per_event", False)],
        [*row("river BiasedMF (per event)", "river_mf_per_event", True)],
    ]
    keys = ["leanrec_bce", "leanrec_mse", "river_fm", "river_mf"]
    keys += ["river_fm_per_event", "river_mf_per_event"]
    for line, key in zip(rows, keys, strict=True):
        line += [flat[f"{key}_events_per_second"], flat[f"{key}_cpu_events_per_second"]]
    print_table(["model", "AUC", "log loss", "accuracy", "MSE", "events/s", "events/CPU s"], rows)
    for suffix, name in (("", "same chunks"), ("_per_event", "river per event")):
        print(
            f"{name}: speed ratio BCE/FM {flat[f'speed_ratio_bce_vs_fm{suffix}']}x "
            f"(CPU {flat[f'cpu_speed_ratio_bce_vs_fm{suffix}']}x), MSE/BiasedMF "
            f"{flat[f'speed_ratio_mse_vs_mf{suffix}']}x "
            f"(CPU {flat[f'cpu_speed_ratio_mse_vs_mf{suffix}']}x); goals: AUC "
            f"{flat[f'goal_auc_met{suffix}']}, MSE {flat[f'goal_mse_met{suffix}']}, speed "
            f"{flat[f'goal_speed_met{suffix}']} (CPU {flat[f'goal_cpu_speed_met{suffix}']})"
        )
    loads = (flat["load_average_start"], flat["load_average_end"])
    print(f"load average (1 min): {loads[0]} before, {loads[1]} after")
    path = write_results(SCRIPT, flat, args.tag)
    png = results_path(SCRIPT, args.tag, ".png")
    plot(results, png, f"{args.dataset}, {len(stream):,} events, chunks of {args.chunk}")
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
