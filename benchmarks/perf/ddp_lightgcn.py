"""Data-parallel training throughput: ML-1M LightGCN (BPR, ``sparse_adam``) and DeepFM on
ML-1M CTR, with 1 and 2 processes under ``torchrun`` in the same run.

Each configuration is one ``torchrun --nproc_per_node W --rdzv-backend leanrec-loopback`` launch
of
this module's worker, every process with ``--threads`` torch threads (default 1: one core per
process). A worker builds the model as ``leanrec train`` does (defaults, seed 2024), trains
``--warmup`` batches, then times ``--steps`` batches of the trainer's own step
(:meth:`~leanrec.train.bpr.BPRTrainer.train_epoch` with ``max_batches``; for DeepFM, the
second of two epochs of :meth:`~leanrec.train.pointwise.CTRTrainer.fit` over the first
``steps × batch`` training samples (at most all of them), without validation) and reports its
wall and CPU seconds. Samples/s is the samples trained over the slowest rank's wall time (a step
ends on every rank together: the gradients are averaged inside it).

Configurations (``batch`` is always the global batch, :mod:`leanrec.train.distributed`):

* ``1 proc``: one process, ``--threads`` threads, batch B;
* ``2 proc``: two processes, B split 1:1 (same optimisation as one process);
* ``2 proc, 2B``: two processes, each a batch of B (global 2B: half the steps per epoch);
* ``1 proc, 2 threads``: one process with twice the threads (the other way to use 2 cores).

Each rank also reports the seconds its step spent averaging the tables' sparse row gradients
(:meth:`~leanrec.train.distributed.DataParallel.average_row_gradients`, timed around the
call). The JSON is written after every configuration (``finished`` false until the last). The
load average (``os.getloadavg()``) is recorded at the start and end of the run and
of each configuration, with every rank's CPU seconds: on a machine shared with other work the wall
time measures the share each process got as much as the code.

Writes ``benchmarks/results/ddp_lightgcn.json`` (``--tag T``: ``ddp_lightgcn--T.json``). Run
from the repository root:

    python -m benchmarks.perf.ddp_lightgcn [--steps 20] [--ctr-steps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results

SCRIPT = "ddp_lightgcn"
BPR_BATCH = 2048
CTR_BATCH = 1024


# ------------------------------------------------------------------------------ worker
def time_row_gradient_averaging() -> list[float]:
    """Time :meth:`DataParallel.average_row_gradients` (the tables' sparse gradients averaged
    by hand) in this process: returns a one-item list of the seconds spent in it so far."""
    from leanrec.train.distributed import DataParallel

    spent = [0.0]
    average = DataParallel.average_row_gradients

    def timed(self: DataParallel, *args: Any, **kwargs: Any) -> None:
        began = time.perf_counter()
        average(self, *args, **kwargs)
        spent[0] += time.perf_counter() - began

    DataParallel.average_row_gradients = timed  # type: ignore[method-assign]
    return spent


def worker(kind: str, batch: int, steps: int, warmup: int, threads: int, out: Path) -> None:
    """One rank: train ``warmup`` then ``steps`` batches, write its seconds to ``out``."""
    import numpy as np
    import torch

    from leanrec.train.distributed import data_parallel, finish

    torch.set_num_threads(threads)
    parallel = data_parallel()
    synced = time_row_gradient_averaging()
    rank = 0 if parallel is None else parallel.rank
    if kind == "lightgcn":
        from leanrec.data.presets import prepare_split
        from leanrec.models.registry import build_model
        from leanrec.train.bpr import BPRTrainer, TrainerConfig

        split, _ = prepare_split("ml-1m", None, str(data_dir()), 2024)
        model = build_model("lightgcn", split.train, seed=2024)
        trainer = BPRTrainer(
            model,
            split.train,
            None,
            TrainerConfig(batch_size=batch, num_threads=threads, progress=False),
        )
        trainer.train_epoch(1, max_batches=warmup)
        synced_before = synced[0]
        began, cpu = time.perf_counter(), time.process_time()
        trainer.train_epoch(2, max_batches=steps)
        wall, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
        trained = min(steps * batch, len(split.train))
    else:
        from leanrec.data.registry import load_behavior_dataset
        from leanrec.models.ctr import build_ctr_model
        from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig

        behavior = load_behavior_dataset("ml-1m-ctr", data_dir())
        deepfm = build_ctr_model("deepfm", behavior.feature_map, seed=2024)
        clock: dict[int, tuple[float, float]] = {}
        synced_at_epoch: dict[int, float] = {}

        def mark(epoch: int, record: dict[str, float]) -> None:
            clock[epoch] = (record["train_seconds"], time.process_time())
            synced_at_epoch[epoch] = synced[0]

        # epoch 1 warms up, epoch 2 is timed (training only: there is no validation)
        config = CTRTrainerConfig(
            batch_size=batch, num_threads=threads, max_epochs=2, progress=False
        )
        samples = behavior.train.subset(np.arange(min(steps * batch, len(behavior.train))))
        CTRTrainer(config, on_epoch=mark).fit(deepfm, samples, None)
        wall, cpu_seconds = clock[2][0], clock[2][1] - clock[1][1]
        synced_before = synced_at_epoch[1] if synced_at_epoch else 0.0
        trained = len(samples)
    record = {
        "rank": rank,
        "wall_seconds": wall,
        "cpu_seconds": cpu_seconds,
        "samples": trained,
        "row_sync_seconds": synced[0] - synced_before,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    finish()


# ------------------------------------------------------------------------------ driver
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch(
    kind: str, processes: int, batch: int, steps: int, warmup: int, threads: int
) -> dict[str, Any]:
    """One ``torchrun`` launch; its samples/s, seconds and the load around it."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        command = [
            *(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)),
            *("--rdzv-backend", "leanrec-loopback"),  # the store on 127.0.0.1 only
            *("--rdzv-endpoint", f"127.0.0.1:{free_port()}"),
            *("-m", "benchmarks.perf.ddp_lightgcn", "--worker", kind),
            *("--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)),
            *("--threads", str(threads), "--out", folder),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        ranks = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("rank*.json"))]
    wall = max(r["wall_seconds"] for r in ranks)
    samples = int(ranks[0]["samples"])
    return {
        "processes": processes,
        "threads": threads,
        "batch": batch,
        "samples": samples,
        "samples_per_second": samples / wall,
        "wall_seconds": wall,
        "cpu_seconds": [round(r["cpu_seconds"], 3) for r in ranks],
        "row_sync_seconds": [round(r["row_sync_seconds"], 3) for r in ranks],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def configurations(batch: int, threads: int) -> dict[str, tuple[int, int, int]]:
    """Name -> (processes, global batch, threads per process)."""
    return {
        "1proc": (1, batch, threads),
        "2proc": (2, batch, threads),
        "2proc_2b": (2, 2 * batch, threads),
        "1proc_2threads": (1, batch, 2 * threads),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed LightGCN batches")
    parser.add_argument("--ctr-steps", type=int, default=200, help="timed DeepFM batches (0: none)")
    parser.add_argument("--warmup", type=int, default=2, help="batches before the timing")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(configurations(1, 1)),
        help="configurations to run (1proc is the reference of the ratios and runs first)",
    )
    parser.add_argument("--worker", choices=["lightgcn", "deepfm"], help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.batch, args.steps, args.warmup, args.threads, Path(args.out))
        return 0
    results: dict[str, Any] = {"load_start": round(os.getloadavg()[0], 2)}
    rows = []
    parts = [("lightgcn", BPR_BATCH, args.steps)]
    if args.ctr_steps:
        parts.append(("deepfm", CTR_BATCH, args.ctr_steps))
    for kind, batch, steps in parts:
        single: dict[str, Any] | None = None
        for name, (processes, global_batch, threads) in configurations(batch, args.threads).items():
            if name not in args.configs:
                continue
            measured = launch(kind, processes, global_batch, steps, args.warmup, threads)
            # CPU seconds per sample: what each process spent, whatever share of a core it got
            measured["cpu_us_per_sample"] = 1e6 * sum(measured["cpu_seconds"]) / measured["samples"]
            single = single or measured
            ratio = measured["samples_per_second"] / single["samples_per_second"]
            # with a core per thread and the CPU time as measured: cores x (1proc's / this one's)
            measured["ratio_at_a_core_each"] = (
                processes * threads * single["cpu_us_per_sample"] / measured["cpu_us_per_sample"]
            )
            for key, value in measured.items():
                results[f"{kind}_{name}_{key}"] = (
                    json.dumps(value) if isinstance(value, list) else value
                )
            results[f"{kind}_{name}_ratio_to_1proc"] = ratio
            print(kind, name, json.dumps(measured), flush=True)
            write_results(SCRIPT, {**results, "finished": False}, args.tag)  # a killed run keeps
            rows.append(
                [
                    kind,
                    name,
                    global_batch,
                    round(measured["samples_per_second"]),
                    round(ratio, 2),
                    round(measured["cpu_us_per_sample"], 1),
                    round(measured["ratio_at_a_core_each"], 2),
                    measured["wall_seconds"],
                    " / ".join(f"{c:.1f}" for c in measured["cpu_seconds"]),
                    " / ".join(f"{c:.2f}" for c in measured["row_sync_seconds"]),
                    f"{measured['load_before']:.1f}-{measured['load_after']:.1f}",
                ]
            )
    results["load_end"] = round(os.getloadavg()[0], 2)
    results["finished"] = True
    results["lightgcn_steps"] = args.steps
    results["deepfm_steps"] = args.ctr_steps
    print_table(
        [
            "model",
            "config",
            "batch",
            "samples/s",
            "x 1proc",
            "cpu us/sample",
            "x 1proc, a core each",
            "wall s",
            "cpu s/rank",
            "row sync s/rank",
            "load",
        ],
        rows,
    )
    print(f"load average {results['load_start']} at start, {results['load_end']} at end")
    write_results(SCRIPT, results, args.tag)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
