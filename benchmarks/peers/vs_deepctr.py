"""leanrec's DeepFM and DeepCTR-Torch's DeepFM on ML-1M CTR, same fields and settings, in one run.

Goal: leanrec trains at >= 1.5x DeepCTR-Torch's samples/s with test AUC within 0.002.

Data: ``load_behavior_dataset("ml-1m-ctr")`` (per-user temporal 80/10/10 split, label rating
>= 4). leanrec exports the arrays once to an ``.npz`` in a temporary folder; DeepCTR-Torch
0.3.0 runs as a subprocess in its own venv (``deepctr_env.py``, built on first use) on that
file (``deepctr_runner.py``). The two sides run one after the other, each with ``--threads``
torch threads, so the machine's background load is shared alike.

Same on both sides: embedding size 16 for every field, tables N(0, 1e-4), MLP 200-80-1 (ReLU,
no dropout, no batch norm; Xavier-uniform weights and zero biases unless ``--deepctr-init
deepctr``), a linear (first-order) part and a global bias, Adam lr 1e-3, batch 1024, no L2,
exactly ``--epochs`` shuffled epochs, the best-validation-AUC epoch's weights tested. Both
sides are scored by leanrec's ``auc`` / ``log_loss`` on the click probabilities.

Differences DeepCTR-Torch's inputs do not let us remove:

* leanrec's history field is one vector per sample: the mean over real positions of
  (item vector + mean of that item's genre vectors). DeepCTR-Torch cannot add two embeddings
  into one sequence field, so the history becomes two fields: ``hist_item_id`` (mean of the
  item vectors, the ``item_id`` table) and ``hist_genres`` (mean over all ``N * G`` genre IDs of
  the history, the ``genres`` table; a genre of an item with fewer genres weighs more in
  leanrec). DeepFM thus sees m = 10 fields in DeepCTR-Torch (MLP input 160) against 9 in
  leanrec (144). ``--no-hist-genres`` drops the history genres on the DeepCTR side: its
  ``N * G`` masked lookups are most of DeepCTR's cost here (2 epochs, 1 thread, first run:
  8.0k samples/s with them, 24.2k without, leanrec 21.5-23.7k; test AUC barely moves).
* DeepCTR-Torch's loss is the batch *sum* of the binary cross-entropy, leanrec's the mean
  (Adam's steps are invariant to that scale up to its epsilon).
* DeepCTR-Torch's final layer has no bias (the prediction layer's bias plays that role, like
  leanrec's model bias; leanrec's final layer has one more bias, the same degree of freedom).

Throughput is training samples per second over the timed epochs: batching, forward, backward
and the Adam step; evaluation and the one-off data preparation excluded (DeepCTR's
``fit`` concatenates its inputs before the first epoch). Wall time and process CPU time are both
reported: under a loaded machine the CPU-time rate is the steadier one.

Writes ``results/vs_deepctr.json`` (``--tag T``: ``results/vs_deepctr--T.json``; nothing with
``--max-train``, which is for smoke runs). Run from the repository root:

    python -m benchmarks.peers.vs_deepctr [--epochs 2] [--threads 1] [--max-train N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from benchmarks.peers.deepctr_env import ensure_deepctr_venv, marker_info
from leanrec.data.behavior import BehaviorSamples, BehaviorSplit
from leanrec.data.registry import load_behavior_dataset
from leanrec.evaluate.pointwise import auc, log_loss
from leanrec.models.ctr import build_ctr_model
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, predict_ctr

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "deepctr_runner.py"


# ====================================================================== export for DeepCTR-Torch
def export_arrays(split: BehaviorSplit, directory: Path) -> tuple[Path, Path]:
    """Write the three parts as DeepCTR-Torch columns to ``arrays.npz`` + ``meta.json``.

    Columns per part (int32, 0 = padding): one ``(n,)`` array per categorical field, ``genres``
    ``(n, G)`` (the target's tags), ``hist_<item>`` ``(n, N)`` (positions outside
    ``history_length`` zeroed), ``hist_genres`` ``(n, N * G)`` and ``label`` ``(n,)`` float32.
    """
    fm = split.feature_map
    assert fm.tag_field is not None
    target = fm.column(fm.target_field)
    n_hist, n_tags = fm.max_history, fm.max_tags
    arrays: dict[str, Any] = {}
    for part, samples in split.parts().items():
        sparse = samples.sparse
        for column, spec in enumerate(fm.categorical):
            arrays[f"{part}/{spec.name}"] = sparse[:, column].astype(np.int32)
        history = samples.history_items.astype(np.int64)
        real = np.arange(n_hist)[None, :] >= (n_hist - samples.history_length)[:, None]
        history = np.where(real, history, 0)
        arrays[f"{part}/{fm.tag_field}"] = split.item_tags[sparse[:, target]].astype(np.int32)
        arrays[f"{part}/hist_{fm.target_field}"] = history.astype(np.int32)
        arrays[f"{part}/hist_{fm.tag_field}"] = (
            split.item_tags[history].reshape(len(samples), n_hist * n_tags).astype(np.int32)
        )
        arrays[f"{part}/label"] = samples.labels.astype(np.float32)
    data = directory / "arrays.npz"
    np.savez(data, **arrays)
    meta = {
        "categorical": [spec.name for spec in fm.categorical],
        "vocab_sizes": {spec.name: spec.vocab_size for spec in fm.fields},
        "target_field": fm.target_field,
        "tag_field": fm.tag_field,
        "max_history": n_hist,
        "max_tags": n_tags,
    }
    meta_path = directory / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=2))
    return data, meta_path


def run_deepctr(args: argparse.Namespace, data: Path, meta: Path, workdir: Path) -> dict[str, Any]:
    """Run ``deepctr_runner.py`` in DeepCTR-Torch's venv; its result dict and predictions."""
    t0 = time.perf_counter()
    python = ensure_deepctr_venv()
    venv_setup_s = time.perf_counter() - t0
    out, predictions = workdir / "deepctr_result.json", workdir / "deepctr_predictions.npz"
    cmd = [
        str(python), "-u", str(RUNNER), "--data", str(data), "--meta", str(meta),
        "--out", str(out), "--predictions", str(predictions), "--epochs", str(args.epochs),
        "--batch", str(args.batch), "--lr", str(args.lr), "--dim", str(args.dim),
        "--mlp", ",".join(str(w) for w in args.mlp), "--init", args.deepctr_init,
        "--seed", str(args.seed), "--threads", str(args.threads),
    ]  # fmt: skip
    if args.no_hist_genres:
        cmd.append("--no-hist-genres")
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads))
    env.pop("PYTHONPATH", None)  # keep leanrec's environment out of DeepCTR-Torch's venv
    t0 = time.perf_counter()
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"[deepctr] {line}", end="", flush=True)
        code = proc.wait()
    if code != 0 or not out.exists():
        raise RuntimeError(f"deepctr_runner.py failed with exit code {code}")
    result = json.loads(out.read_text())
    with np.load(predictions) as stored:
        result["predictions"] = {part: stored[part] for part in stored.files}
    result["venv_setup_s"] = venv_setup_s
    result["venv_install_s"] = marker_info().get("install_seconds")
    result["subprocess_wall_s"] = time.perf_counter() - t0
    return result


# ====================================================================== leanrec side
class ClockedCTRTrainer(CTRTrainer):
    """:class:`CTRTrainer` that also reads the process CPU clock around every training epoch."""

    def __init__(self, config: CTRTrainerConfig, on_epoch: Any = None) -> None:
        super().__init__(config, on_epoch)
        self.epoch_cpu_seconds: list[float] = []

    def train_epoch(self, *args: Any, **kwargs: Any) -> tuple[float, int, bool]:
        started = time.process_time()
        out = super().train_epoch(*args, **kwargs)
        self.epoch_cpu_seconds.append(time.process_time() - started)
        return out


def run_leanrec(args: argparse.Namespace, split: BehaviorSplit) -> dict[str, Any]:
    """Train leanrec's DeepFM with :class:`CTRTrainer`; throughput, predictions, parameters."""
    model = build_ctr_model(
        "deepfm", split.feature_map, seed=args.seed,
        embedding_dim=args.dim, mlp_dims=tuple(args.mlp), init_std=1e-4,
    )  # fmt: skip
    config = CTRTrainerConfig(
        learning_rate=args.lr,
        batch_size=args.batch,
        max_epochs=args.epochs,
        patience=10**9,  # exactly --epochs epochs, like DeepCTR's fit
        seed=args.seed,
        num_threads=args.threads,
        progress=False,
    )

    def show(epoch: int, record: dict[str, float]) -> None:
        print(
            f"[leanrec] epoch {epoch}: {record['train_seconds']:.1f} s wall, "
            f"{trainer.epoch_cpu_seconds[-1]:.1f} s cpu, valid auc {record['valid_auc']:.4f}",
            flush=True,
        )

    trainer = ClockedCTRTrainer(config, on_epoch=show)
    fit = trainer.fit(model, split.train, split.valid)
    samples = len(split.train) * args.epochs
    return {
        "n_train": len(split.train),
        "best_epoch": fit.best_epoch,
        "train_wall_s": fit.train_seconds,
        "train_cpu_s": sum(trainer.epoch_cpu_seconds),
        "samples_per_s": fit.samples_per_second,
        "samples_per_cpu_s": samples / sum(trainer.epoch_cpu_seconds),
        "parameters": sum(p.numel() for p in model.parameters()),
        "n_fields": model.num_fields + 1,
        "predictions": {
            part: predict_ctr(model, samples_, 8192).numpy()
            for part, samples_ in (("valid", split.valid), ("test", split.test))
        },
    }


# ====================================================================== main
def truncate_train(split: BehaviorSplit, max_train: int | None) -> BehaviorSplit:
    """``split`` with only its first ``max_train`` training samples (a quick smoke run)."""
    if max_train is None or max_train >= len(split.train):
        return split
    train: BehaviorSamples = split.train.subset(np.arange(max_train))
    return BehaviorSplit(train, split.valid, split.test, split.feature_map, split.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--mlp", type=int, nargs="+", default=[200, 80])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--deepctr-init", choices=["leanrec", "deepctr"], default="leanrec",
        help="DeepCTR's deep-tower init: leanrec's (Xavier, zero bias) or its own N(0, 1e-4)",
    )  # fmt: skip
    parser.add_argument("--no-hist-genres", action="store_true", help="DeepCTR side only")
    parser.add_argument("--max-train", type=int, default=None, help="smoke runs only")
    add_tag_argument(parser, "vs_deepctr")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    split = truncate_train(load_behavior_dataset("ml-1m-ctr", data_dir()), args.max_train)
    print(f"ml-1m-ctr: {split.describe()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="leanrec-vs-deepctr-"))
    try:
        data, meta = export_arrays(split, workdir)
        load_before = os.getloadavg()[0]
        theirs = run_deepctr(args, data, meta, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ours = run_leanrec(args, split)
    load_after = os.getloadavg()[0]

    results: dict[str, Any] = {
        "dataset": "ml-1m-ctr",
        "epochs": args.epochs,
        "threads": args.threads,
        "batch": args.batch,
        "embedding_dim": args.dim,
        "mlp": "-".join(str(w) for w in args.mlp),
        "deepctr_init": args.deepctr_init,
        "deepctr_hist_genres": not args.no_hist_genres,
        "deepctr_version": theirs["deepctr_version"],
        "n_train": ours["n_train"],
        "n_valid": len(split.valid),
        "n_test": len(split.test),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "deepctr_venv_setup_s": theirs["venv_setup_s"],
        "deepctr_subprocess_wall_s": theirs["subprocess_wall_s"],
    }
    for key in ("samples_per_s", "samples_per_cpu_s", "train_wall_s", "train_cpu_s",
                "best_epoch", "parameters", "n_fields"):  # fmt: skip
        results[f"deepctr_{key}"] = theirs[key]
        results[f"leanrec_{key}"] = ours[key]
    results["speedup_samples_per_s"] = ours["samples_per_s"] / theirs["samples_per_s"]
    results["speedup_samples_per_cpu_s"] = ours["samples_per_cpu_s"] / theirs["samples_per_cpu_s"]
    rows: list[list[Any]] = [
        ["train samples/s (wall)", theirs["samples_per_s"], ours["samples_per_s"],
         results["speedup_samples_per_s"]],
        ["train samples/CPU-s", theirs["samples_per_cpu_s"], ours["samples_per_cpu_s"],
         results["speedup_samples_per_cpu_s"]],
    ]  # fmt: skip
    for part, samples in (("valid", split.valid), ("test", split.test)):
        for metric, fn in (("auc", auc), ("logloss", log_loss)):
            mine = fn(samples.labels, ours["predictions"][part])
            other = fn(samples.labels, theirs["predictions"][part])
            results[f"leanrec_{part}_{metric}"] = mine
            results[f"deepctr_{part}_{metric}"] = other
            results[f"diff_{part}_{metric}"] = mine - other
            rows.append([f"{part} {metric}", other, mine, mine - other])
    rows += [
        ["fields m (FM / MLP input m*d)", theirs["n_fields"], ours["n_fields"], ""],
        ["parameters", theirs["parameters"], ours["parameters"], ""],
        ["best epoch (valid AUC)", theirs["best_epoch"], ours["best_epoch"], ""],
    ]
    # a speed goal holds like for like only: DeepCTR-Torch's history-genre field is its own cost
    like_for_like = not results["deepctr_hist_genres"]
    results["like_for_like"] = like_for_like
    results["goal_speed_1_5x"] = like_for_like and results["speedup_samples_per_s"] >= 1.5
    results["goal_speed_1_5x_cpu"] = like_for_like and results["speedup_samples_per_cpu_s"] >= 1.5
    results["goal_test_auc_within_0_002"] = abs(results["diff_test_auc"]) <= 0.002

    print()
    print_table(
        [f"DeepFM / ml-1m-ctr, {args.epochs} epoch(s)",
         f"DeepCTR-Torch {theirs['deepctr_version']}", "leanrec", "ratio / diff"],
        rows,
    )  # fmt: skip
    print("(speed rows: leanrec / DeepCTR-Torch; metric rows: leanrec - DeepCTR-Torch)")
    if args.max_train is None:
        print(f"wrote {write_results('vs_deepctr', results, args.tag)}")
    else:
        print("not written (--max-train is for smoke runs)")


if __name__ == "__main__":
    main()
