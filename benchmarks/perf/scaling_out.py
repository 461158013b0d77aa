"""Scaling out: CIESS's selective retraining on a Ray cluster of 1 and 2 nodes, and
``leanrec tune`` against the default settings of ``leanrec train``.

Two parts:

* ``ciess-ray``: the jobs of CIESS's selective retraining phase (one
  :class:`~leanrec.search.embedding_size.retrain.Retrainer` job per mask, the split shared once)
  on a :class:`~leanrec.runner.cluster.LoopbackCluster` of one node, then of two nodes (head +
  one worker), each node one CPU, every job one torch thread. The masks are LightGCN's on
  ML-1M (CIESS protocol) at ``c = 0.8``: SU, popularity and two SR draws, ``d_max = 64``, each
  retrained from scratch for ``--epochs`` epochs (a time-capped phase: CIESS retrains to
  convergence). Reports the phase's wall time on each cluster, every job's node and seconds,
  and whether both clusters give the same validation metrics.
* ``tune``: ``leanrec tune`` on ML-100K MF (RecBole protocol, validation NDCG@10) within a
  stated trial budget, against ``leanrec train --dataset ml-100k --model mf`` with every
  setting at its default (the README's command without options; one torch thread, as each
  trial); both are chosen on validation. The tuned configuration is then trained again as
  ``leanrec train`` would (its ``train_args``) and its test metrics are read once.

Writes ``results/scaling_out.json`` (``--tag T``: ``results/scaling_out--T.json``); each part
keeps its finished record in ``runs/bench-scaling_out/`` so that a part already done is not run
again. Run from the repository root:

    python -m benchmarks.perf.scaling_out [--part ciess-ray|tune|all]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results

SCRIPT = "scaling_out"
RUNS = Path("runs") / f"bench-{SCRIPT}"
TARGET = 0.8
MAX_DIM = 64

TUNE_SPACE = """\
# leanrec tune space of the scaling_out benchmark: MF on ML-100K
learning_rate: {loguniform: [1.0e-4, 3.0e-2]}
l2: {loguniform: [1.0e-6, 1.0e-2]}
n_negatives: {randint: [1, 8]}
embedding_dim: {choice: [32, 64, 128]}
batch_size: {choice: [1024, 2048, 4096]}
"""


# ------------------------------------------------------------------------------ CIESS on Ray
def retraining_masks(n_users: int, n_items: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The retraining phase's masks at ``c = 0.8``: SU, popularity, two SR draws."""
    from leanrec.search.embedding_size.baselines import (
        random_sizes,
        uniform_sizes,
    )

    return {
        "su": uniform_sizes(n_users, n_items, MAX_DIM, TARGET),
        "sr_seed1": random_sizes(n_users, n_items, MAX_DIM, TARGET, np.random.default_rng(1)),
        "sr_seed2": random_sizes(n_users, n_items, MAX_DIM, TARGET, np.random.default_rng(2)),
        "popularity": (np.zeros(0), np.zeros(0)),  # filled in by the driver (needs the split)
    }


def ciess_driver(out: str, nodes: int, epochs: int) -> None:
    """Connected to the cluster of ``RAY_ADDRESS``: time the retraining phase, write JSON."""
    from leanrec.data.presets import prepare_split
    from leanrec.runner import RayExecutor
    from leanrec.runner.cluster import wait_for_nodes
    from leanrec.search.embedding_size.baselines import popularity_sizes
    from leanrec.search.embedding_size.config import default_retrain
    from leanrec.search.embedding_size.retrain import Retrainer, RetrainInputs, RetrainJob

    split, _ = prepare_split("ml-1m", "ciess", str(data_dir()), 2024)
    train = split.train
    masks = retraining_masks(train.n_users, train.n_items)
    masks["popularity"] = popularity_sizes(
        train.user_popularity(), train.item_popularity(), MAX_DIM, TARGET
    )
    trainer = default_retrain()
    trainer.max_epochs, trainer.eval_every, trainer.num_threads = epochs, epochs, 1
    trainer.progress = False
    # not ``as executor``: ``Executor.__enter__`` is typed to return the base class
    executor = RayExecutor(num_cpus_per_job=1, show_progress=False, desc="masks")
    with executor:
        executor._ensure_ray()
        alive = wait_for_nodes(nodes)
        inputs = executor.share(RetrainInputs(split, None))
        retrainer = Retrainer(inputs, "lightgcn", {}, MAX_DIM, trainer, 2024, num_threads=1)
        jobs = [RetrainJob(users, items, label=name) for name, (users, items) in masks.items()]
        began = time.perf_counter()
        retrained = executor.map(retrainer, jobs)
        wall = time.perf_counter() - began
        records: list[dict[str, Any]] = [
            {"mask": jobs[r.index].label, "node": alive.index(r.node_id), "seconds": r.seconds}
            for r in executor.records
        ]
    record = {
        "nodes": nodes,
        "wall_seconds": wall,
        "job_seconds_sum": sum(r["seconds"] for r in records),
        "jobs": sorted(records, key=lambda r: r["mask"]),
        "valid": {job.label: model.valid for job, model in zip(jobs, retrained, strict=True)},
        "sparsity": {job.label: model.sparsity for job, model in zip(jobs, retrained, strict=True)},
    }
    Path(out).write_text(json.dumps(record))


def run_ciess_ray(epochs: int) -> dict[str, Any]:
    """The phase on a 1-node, then a 2-node loopback cluster (each node 1 CPU)."""
    from leanrec.runner.cluster import LoopbackCluster

    RUNS.mkdir(parents=True, exist_ok=True)
    runs = {}
    for nodes in (1, 2):
        done = RUNS / f"ciess_ray_{nodes}node_e{epochs}.json"
        if not done.exists():
            with LoopbackCluster(workers=nodes - 1, cpus_per_node=1) as cluster:
                env = {**cluster.driver_env(), "LEANREC_DATA": str(data_dir())}
                command = [sys.executable, "-m", f"benchmarks.perf.{SCRIPT}", "--part"]
                command += ["ciess-driver", "--nodes", str(nodes), "--epochs", str(epochs)]
                command += ["--driver-out", str(done)]
                subprocess.run(command, env=env, check=True, timeout=3 * 3600)
        runs[nodes] = json.loads(done.read_text())
    one, two = runs[1], runs[2]
    return {
        "ciess_ray_what": (
            f"LightGCN on ML-1M (CIESS protocol), d_max {MAX_DIM}, c = {TARGET}: 4 masks (SU, "
            f"popularity, SR seeds 1 and 2) each retrained from scratch for {epochs} epoch(s), "
            "1 torch thread per job, 1 CPU per node"
        ),
        "ciess_ray_epochs": epochs,
        "ciess_ray_1node_wall_seconds": one["wall_seconds"],
        "ciess_ray_2node_wall_seconds": two["wall_seconds"],
        "ciess_ray_speedup": one["wall_seconds"] / two["wall_seconds"],
        "ciess_ray_1node_job_seconds_sum": one["job_seconds_sum"],
        "ciess_ray_2node_job_seconds_sum": two["job_seconds_sum"],
        "ciess_ray_2node_jobs_on_first_node": sum(1 for r in two["jobs"] if r["node"] == 0),
        "ciess_ray_2node_jobs_on_second_node": sum(1 for r in two["jobs"] if r["node"] == 1),
        "ciess_ray_same_validation": one["valid"] == two["valid"],
        **{
            f"ciess_ray_valid_recall@20_{mask}": valid["recall@20"]
            for mask, valid in sorted(two["valid"].items())
        },
    }


# ------------------------------------------------------------------------------ tune
def default_validation() -> dict[str, Any]:
    """``leanrec train --dataset ml-100k --model mf`` with every default, on validation only."""
    from leanrec.data.presets import prepare_split
    from leanrec.models import build_model
    from leanrec.train.bpr import BPRTrainer, TrainerConfig

    split, protocol = prepare_split("ml-100k", None, str(data_dir()), 2024)
    trainer = TrainerConfig(
        seed=2024,
        valid_metric=protocol.valid_metric,
        ks=list(protocol.ks),
        progress=False,
        num_threads=1,  # as each trial: on a loaded machine two threads only add contention
    )
    model = build_model("mf", split.train, None, seed=2024)
    began = time.perf_counter()
    result = BPRTrainer(model, split.train, split.valid, trainer).fit()
    return {
        "metric": protocol.valid_metric,
        "valid": result.best_valid,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds": time.perf_counter() - began,
    }


def run_default() -> dict[str, Any]:
    """The defaults' validation record (computed once, then read from its file)."""
    RUNS.mkdir(parents=True, exist_ok=True)
    path = RUNS / "tune_default.json"
    if not path.exists():
        path.write_text(json.dumps(default_validation()))
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def run_tune(trials: int, max_epochs: int, budget_s: float) -> dict[str, Any]:
    """The default's validation, a tuning run, and the tuned configuration trained again with
    its test metrics read once."""
    from leanrec.api import TrainConfig, train
    from leanrec.cli import build_train_config, make_parser
    from leanrec.tune import TuneSettings, tune_model

    RUNS.mkdir(parents=True, exist_ok=True)

    folder = RUNS / f"tune_t{trials}_e{max_epochs}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "space.yaml").write_text(TUNE_SPACE)
    if not (folder / "best_config.json").exists():
        settings = TuneSettings(
            dataset="ml-100k",
            model="mf",
            space=str(folder / "space.yaml"),
            out_dir=str(folder),
            data_dir=str(data_dir()),
            trials=trials,
            max_epochs=max_epochs,
            eval_every=2,
            grace_validations=3,
            reduction_factor=3,
            time_budget_s=budget_s,
            cpus_per_trial=1,
        )
        began = time.perf_counter()
        tune_model(settings, log=lambda message: print(message, flush=True))
        (folder / "tune_seconds.json").write_text(json.dumps(time.perf_counter() - began))
    best = json.loads((folder / "best_config.json").read_text())
    rows = json.loads((folder / "trials.json").read_text())
    tune_seconds = json.loads((folder / "tune_seconds.json").read_text())

    retrained_path = folder / "retrained.json"
    if not retrained_path.exists():  # the one reading of test
        args, extra = make_parser().parse_known_args(["train", *best["train_args"]])
        config: TrainConfig = build_train_config(args, extra)
        config.run_dir = str(folder / "retrained")
        run = train(config)
        retrained_path.write_text(
            json.dumps({"valid": run.valid_metrics, "test": run.test_metrics})
        )
    retrained = json.loads(retrained_path.read_text())
    default = run_default()
    metric = default["metric"]
    return {
        "tune_what": (
            f"MF on ML-100K (RecBole protocol), selection on validation {metric}; random search "
            f"over 5 options, at most {trials} trials of at most "
            f"{max_epochs} epochs (validated every 2), ASHA (grace 3 validations, η = 3), "
            f"{budget_s:.0f} s budget, 2 trials at once on a local Ray cluster"
        ),
        "tune_space": TUNE_SPACE,
        "tune_trials_run": len(rows),
        "tune_trials_cut_short": sum(1 for r in rows if r["validations"] < max_epochs // 2),
        "tune_seconds": tune_seconds,
        **{f"tune_best_{name}": value for name, value in rows[0]["options"].items()},
        "tune_best_valid": best["valid"][metric],
        "default_valid": default["valid"][metric],
        "default_best_epoch": default["best_epoch"],
        "default_epochs_run": default["epochs_run"],
        "default_seconds": default["seconds"],
        "tune_at_least_default": best["valid"][metric] >= default["valid"][metric],
        "tuned_retrained_valid": retrained["valid"][metric],
        "tuned_retrained_same_valid": retrained["valid"][metric] == best["valid"][metric],
        **{f"tuned_test_{name}": value for name, value in retrained["test"].items()},
        "tune_train_args": " ".join(best["train_args"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parts = ["ciess-ray", "tune", "tune-default", "all", "ciess-driver"]
    parser.add_argument("--part", default="all", choices=parts)
    parser.add_argument("--epochs", type=int, default=1, help="ciess-ray: epochs per mask")
    parser.add_argument("--nodes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--driver-out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=24, help="tune: most trials")
    parser.add_argument("--max-epochs", type=int, default=60, help="tune: epochs of a trial")
    parser.add_argument("--budget-s", type=float, default=2400.0, help="tune: time budget")
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args(argv)
    if args.part == "ciess-driver":
        ciess_driver(args.driver_out, args.nodes, args.epochs)
        return 0
    if args.part == "tune-default":  # the defaults' run alone (in parallel with the tuning)
        print(json.dumps(run_default()))
        return 0
    os.environ.setdefault("LEANREC_DATA", str(data_dir()))
    results: dict[str, Any] = {}
    previous = Path("benchmarks/results") / f"{SCRIPT}.json"
    if args.tag is None and previous.exists():
        stored = json.loads(previous.read_text())
        results.update({k: v for k, v in stored.items() if not k.startswith("machine")})
        results.pop("script", None)
        results.pop("written", None)
    if args.part in ("ciess-ray", "all"):
        results.update(run_ciess_ray(args.epochs))
        print_table(
            ["nodes", "wall seconds"],
            [[n, results[f"ciess_ray_{n}node_wall_seconds"]] for n in (1, 2)],
        )
    if args.part in ("tune", "all"):
        results.update(run_tune(args.trials, args.max_epochs, args.budget_s))
        print(json.dumps({k: v for k, v in results.items() if k.startswith(("tune", "default"))}))
    write_results(SCRIPT, results, args.tag)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
