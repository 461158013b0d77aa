"""Does CIESS lose to SU because its selective retraining is too short? Retrain with more time.

Takes a finished ``leanrec experiment embedding-size`` run and retrains, from its warm start,
one method's mask at one target sparsity (``ciess``: the searched sizes; ``su``: uniform sizes)
with the run's retraining settings except the time budget (``--seconds``; the run used 240 s).
Run the two methods side by side (one per core) and compare: the printed row and
``results/ciess_retrain_budget--<method>.json`` (``--tag T``: ``ciess_retrain_budget--T.json``).
Run from the repository root:

    python -m benchmarks.probes.ciess_retrain_budget runs/es-ml1m-lightgcn-hits --method ciess \\
        --target 0.8 --seconds 720 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import print_table, write_results
from benchmarks.probes.ciess_mask_overfit import finished_run
from leanrec.search.embedding_size.baselines import uniform_sizes
from leanrec.search.embedding_size.retrain import retrain_with_sizes
from leanrec.train.bpr import TrainerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a finished embedding-size experiment directory")
    parser.add_argument("--method", choices=["ciess", "su"], required=True)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--seconds", type=float, default=720.0)
    parser.add_argument("--patience", type=int, default=None, help="default: the run's")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--tag", default=None, help="results/ciess_retrain_budget--TAG.json (default: the method)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run)
    config, split, warm = finished_run(run, args.data_dir)
    search = config["search"]
    n_users, n_items = split.train.n_users, split.train.n_items
    if args.method == "ciess":
        sized = np.load(run / f"ciess_c{round(100 * args.target)}_sizes.npz")
        users, items = sized["users"], sized["items"]
    else:
        users, items = uniform_sizes(n_users, n_items, search["max_dim"], args.target)
    trainer = dataclasses.replace(
        TrainerConfig.from_dict(search["retrain"]),
        max_seconds=args.seconds,
        patience=args.patience or search["retrain"]["patience"],
        num_threads=1,
        progress=False,
    )
    done = retrain_with_sizes(
        split,
        config["model"],
        config.get("model_options"),
        search["max_dim"],
        np.asarray(users),
        np.asarray(items),
        trainer,
        search["seed"],
        warm_state=warm.state_dict(),
    )
    assert done.test is not None  # evaluate_test is left at True
    result = done.train_result
    row = {
        "method": args.method,
        "target": args.target,
        "seconds_budget": args.seconds,
        "patience": trainer.patience,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stop_reason": result.stop_reason,
        "sparsity": float(done.sparsity),
        "valid_recall@20": float(done.valid["recall@20"]),
        "test_recall@20": float(done.test["recall@20"]),
        "test_ndcg@20": float(done.test["ndcg@20"]),
        "run": str(run),
    }
    print_table(list(row), [list(row.values())])
    print(f"written: {write_results('ciess_retrain_budget', row, args.tag or args.method)}")


if __name__ == "__main__":
    main()
