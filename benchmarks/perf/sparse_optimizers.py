"""Sparse (row-wise) against dense Adam updates of embedding tables, in the same run.

Two parts:

* ``timing``: one BPR step of MF (forward, backward, optimiser step) at a fixed batch while
  the tables grow from 10k to 1M rows (users = items = rows / 2, ``d = 64``), for every
  ``embedding_optimizer`` and for ``torch.optim.SparseAdam`` (the torch peer, tables only);
  reported as milliseconds per step and as the ratio to dense Adam measured alternately in the
  same process.
* ``accuracy``: validation and test metrics of training runs (early stopping on validation
  within an epoch budget, the trainers' defaults otherwise) with dense and sparse updates: MF
  on ML-100K (up to 200 epochs) and ML-1M (30), LightGCN on ML-100K (30), both on the
  RecBole protocol (the datasets' default), and DeepFM on ML-1M CTR (4); several seeds each.

Every finished accuracy run is kept in ``runs/bench-sparse_optimizers/<--cells>.json``, so a
killed run continues where it stopped; the table reads every such file (several processes may
run different experiments at once, each with its own ``--cells`` name). Writes
``results/sparse_optimizers.json`` (``--tag T``: ``results/sparse_optimizers--T.json``).
Run from the repository root:

    python -m benchmarks.perf.sparse_optimizers [--part timing|accuracy|all] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.embeddings.base import sparse_gradients
from leanrec.models.mf import MF
from leanrec.train.bpr import bpr_loss
from leanrec.train.row_optim import EMBEDDING_OPTIMIZERS, trainer_optimizer

SCRIPT = "sparse_optimizers"
CELLS_DIR = Path("runs") / f"bench-{SCRIPT}"
MODES = ("dense_adam", "sparse_adam", "lazy_adam", "rowwise_adagrad", "torch_sparse_adam")
"""Timed optimisers: the trainers' three, and torch's SparseAdam as the peer."""


# ------------------------------------------------------------------------------ timing
def mf_step(rows: int, batch: int, mode: str, seed: int = 0) -> Callable[[], None]:
    """One BPR step of an MF with ``rows / 2`` users and items, ``mode``'s optimiser."""
    torch.manual_seed(seed)
    model = MF(rows // 2, rows // 2)
    tables = list(model.embedding_tables().values())
    params = [p for table in tables for p in table.row_parameters()]
    optimizer: torch.optim.Optimizer
    if mode == "torch_sparse_adam":
        optimizer = torch.optim.SparseAdam(params, lr=1e-3)
    else:
        optimizer = trainer_optimizer(mode, [{"params": params}], params, lr=1e-3)
    sparse = mode != "dense_adam"
    generator = torch.Generator().manual_seed(seed)

    def step() -> None:
        users = torch.randint(0, rows // 2, (batch,), generator=generator)
        items = torch.randint(0, rows // 2, (2, batch), generator=generator)
        with sparse_gradients(tables, sparse, getattr(optimizer, "catch_up", None)):
            loss = bpr_loss(model, users, items[0], items[1], 1e-4)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def time_steps(sizes: list[int], batch: int, steps: int, repeats: int) -> list[dict[str, Any]]:
    """Median milliseconds per step of every mode at every size, modes interleaved."""
    rows_out = []
    for rows in sizes:
        runners = {mode: mf_step(rows, batch, mode) for mode in MODES}
        for run in runners.values():  # warm-up: state allocated, caches filled
            run()
            run()
        samples: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(repeats):
            for mode, run in runners.items():
                began = time.perf_counter()
                for _ in range(steps):
                    run()
                samples[mode].append((time.perf_counter() - began) / steps * 1e3)
        medians = {mode: statistics.median(values) for mode, values in samples.items()}
        for mode in MODES:
            rows_out.append(
                {
                    "rows": rows,
                    "mode": mode,
                    "ms_per_step": medians[mode],
                    "ratio_to_dense": medians[mode] / medians["dense_adam"],
                }
            )
        del runners
    return rows_out


# ------------------------------------------------------------------------------ accuracy
def ranking_run(dataset: str, model: str, mode: str, seed: int, max_epochs: int) -> dict[str, Any]:
    """One early-stopped BPR run on ``dataset``'s default protocol; metrics and time.
    ``mode``: an ``embedding_optimizer``, optionally with its table step size after ``@``
    (``rowwise_adagrad@0.05``: ``embedding_learning_rate = 0.05``)."""
    from leanrec.api import train
    from leanrec.train import TrainerConfig

    optimizer, _, rate = mode.partition("@")
    trainer = TrainerConfig(
        max_epochs=max_epochs,
        embedding_optimizer=optimizer,
        embedding_learning_rate=float(rate) if rate else None,
        seed=seed,
        num_threads=1,
        progress=False,
    )
    began = time.perf_counter()
    run = train(dataset=dataset, model=model, data_dir=str(data_dir()), seed=seed, trainer=trainer)
    result = run.train_result
    return {
        "valid": run.valid_metrics,
        "test": run.test_metrics,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": sum(r.get("train_seconds", 0.0) for r in result.history),
        "seconds": time.perf_counter() - began,
    }


def ctr_run(mode: str, seed: int, max_epochs: int) -> dict[str, Any]:
    """One early-stopped DeepFM run on ML-1M CTR (the trainer's defaults otherwise)."""
    from leanrec.data.registry import load_behavior_dataset
    from leanrec.models.ctr.registry import build_ctr_model
    from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr

    split = load_behavior_dataset("ml-1m-ctr", data_dir())
    model = build_ctr_model("deepfm", split.feature_map, seed=seed)
    config = CTRTrainerConfig(
        max_epochs=max_epochs, embedding_optimizer=mode, seed=seed, num_threads=1, progress=False
    )
    began = time.perf_counter()
    fit = CTRTrainer(config).fit(model, split.train, split.valid)
    return {
        "valid": fit.best_valid,
        "test": evaluate_ctr(model, split.test),
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "train_seconds": fit.train_seconds,
        "seconds": time.perf_counter() - began,
    }


ROWWISE_ADAGRAD_RATES = (0.02, 0.05, 0.1, 0.2)
"""Table step sizes of row-wise Adagrad on ML-1M MF (Adam's 1e-3 is far too small for it);
the rate is chosen on validation NDCG@10 of seed 0 (``--seeds 1``), then run on every seed
(``--only ml-1m/mf-rowwise-adagrad --rates R``)."""

ACCURACY = {
    # name: (runner, modes, headline metric)
    "ml-100k/mf": (
        lambda mode, seed: ranking_run("ml-100k", "mf", mode, seed, 200),
        ("dense_adam", "sparse_adam", "lazy_adam"),
        "ndcg@10",
    ),
    "ml-1m-ctr/deepfm": (
        lambda mode, seed: ctr_run(mode, seed, 4),
        ("dense_adam", "sparse_adam"),
        "auc",
    ),
    "ml-1m/mf": (
        lambda mode, seed: ranking_run("ml-1m", "mf", mode, seed, 30),
        ("dense_adam", "sparse_adam"),
        "ndcg@10",
    ),
    "ml-1m/mf-rowwise-adagrad": (
        lambda mode, seed: ranking_run("ml-1m", "mf", mode, seed, 30),
        tuple(f"rowwise_adagrad@{rate}" for rate in ROWWISE_ADAGRAD_RATES),
        "ndcg@10",
    ),
    "ml-100k/lightgcn": (
        lambda mode, seed: ranking_run("ml-100k", "lightgcn", mode, seed, 30),
        ("dense_adam", "sparse_adam"),
        "ndcg@10",
    ),
    "gowalla/mf": (  # one seed per mode (--only gowalla/mf --seeds 1)
        lambda mode, seed: ranking_run("gowalla", "mf", mode, seed, 30),
        ("dense_adam", "sparse_adam"),
        "recall@20",
    ),
}
"""The accuracy cells, run in this order (cheap and decisive first)."""


def run_accuracy(
    seeds: int, only: list[str] | None, name: str, only_modes: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every (experiment, mode, seed) run not yet in a cells file (of the experiments
    ``only`` and modes ``only_modes`` when given), then the runs of every cells file of
    :data:`CELLS_DIR`."""
    path = CELLS_DIR / f"{name}.json"
    done = all_cells()
    cells: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    for experiment, (runner, modes, _) in ACCURACY.items():
        if only and experiment not in only:
            continue
        for seed in range(seeds):
            for mode in modes:
                if only_modes and mode not in only_modes:
                    continue
                key = f"{experiment}/{mode}/{seed}"
                if key in done or key in cells:
                    continue
                print(f"[{SCRIPT}] {key} ...", flush=True)
                cells[key] = runner(mode, seed)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(cells, indent=1, default=float))
    return all_cells()


def all_cells() -> dict[str, dict[str, Any]]:
    """The finished runs of every cells file."""
    cells: dict[str, dict[str, Any]] = {}
    for path in sorted(CELLS_DIR.glob("*.json")):
        cells.update(json.loads(path.read_text()))
    return cells


def accuracy_rows(cells: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per experiment and mode: mean, min and max of the headline metric over seeds."""
    rows = []
    for name, (_, modes, metric) in ACCURACY.items():
        for mode in modes:
            runs = [v for k, v in cells.items() if k.rsplit("/", 2)[0] == name and f"/{mode}/" in k]
            if not runs:
                continue
            valid = [r["valid"][metric] for r in runs]
            test = [r["test"][metric] for r in runs]
            rows.append(
                {
                    "experiment": name,
                    "mode": mode,
                    "metric": metric,
                    "seeds": len(runs),
                    "valid_mean": float(np.mean(valid)),
                    "valid_min": float(np.min(valid)),
                    "valid_max": float(np.max(valid)),
                    "test_mean": float(np.mean(test)),
                    "best_epoch_mean": float(np.mean([r["best_epoch"] for r in runs])),
                    "train_seconds_mean": float(np.mean([r["train_seconds"] for r in runs])),
                }
            )
    return rows


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--part",
        choices=["timing", "accuracy", "all"],
        default="all",
        help="what to measure now; the results hold the last timing and every finished "
        "accuracy run either way",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=2048, help="BPR triples per timed step")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help=f"of {list(ACCURACY)}")
    parser.add_argument(
        "--modes", nargs="*", default=None, help="only these optimisers (rowwise_adagrad@0.05)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads when timing")
    parser.add_argument("--cells", default="cells", help="name of this process's cells file")
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    assert set(MODES) >= set(EMBEDDING_OPTIMIZERS)

    results: dict[str, Any] = {"batch": args.batch, "embedding_dim": 64}
    timing_path = CELLS_DIR / "timing" / "timing.json"
    if args.part in ("timing", "all"):
        torch.set_num_threads(args.threads)
        timing = time_steps(args.sizes, args.batch, args.steps, args.repeats)
        timing_path.parent.mkdir(parents=True, exist_ok=True)
        timing_path.write_text(json.dumps(timing, indent=1))
    if timing_path.exists():  # the last measurement, also when only accuracy runs now
        timing = json.loads(timing_path.read_text())
        print_table(
            ["rows", "optimiser", "ms/step", "x dense Adam"],
            [[r["rows"], r["mode"], r["ms_per_step"], r["ratio_to_dense"]] for r in timing],
        )
        for r in timing:
            key = f"timing:{r['mode']}/{r['rows']}"
            results[f"{key}:ms_per_step"] = r["ms_per_step"]
            results[f"{key}:ratio_to_dense"] = r["ratio_to_dense"]
    cells = (
        run_accuracy(args.seeds, args.only, args.cells, args.modes)
        if args.part != "timing"
        else None
    )
    rows = accuracy_rows(cells if cells is not None else all_cells())
    if rows:
        print_table(
            ["experiment", "optimiser", "metric", "seeds", "valid", "min", "max", "test",
             "best epoch", "train s"],
            [[r["experiment"], r["mode"], r["metric"], r["seeds"], r["valid_mean"],
              r["valid_min"], r["valid_max"], r["test_mean"], r["best_epoch_mean"],
              r["train_seconds_mean"]] for r in rows],
        )  # fmt: skip
        for r in rows:
            key = f"accuracy:{r['experiment']}/{r['mode']}"
            for field in ("seeds", "valid_mean", "valid_min", "valid_max", "test_mean",
                          "best_epoch_mean", "train_seconds_mean"):  # fmt: skip
                results[f"{key}:{field}"] = r[field]
            results[f"{key}:metric"] = r["metric"]
    path = write_results(SCRIPT, results, args.tag)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
