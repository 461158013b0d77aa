"""The README quick start, measured: LightGCN on the embedded synthetic data vs popularity.

Same settings as ``leanrec train --dataset synthetic --model lightgcn --lr 0.01 --epochs 30
--eval_every 5``; the peer is ranking each user's unseen items by training popularity, on the
same split, in the same run. Writes ``results/quickstart_synthetic.json``. Run from the
repository root:

    python -m benchmarks.paper.quickstart_synthetic
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.common import print_table, write_results
from leanrec.api import TrainConfig, train
from leanrec.evaluate import FullRankingEvaluator
from leanrec.train import TrainerConfig


def main() -> None:
    began = time.perf_counter()
    run = train(
        TrainConfig(
            dataset="synthetic",
            model="lightgcn",
            trainer=TrainerConfig(learning_rate=0.01, max_epochs=30, eval_every=5),
        )
    )
    seconds = time.perf_counter() - began
    split = run.split
    popularity = torch.from_numpy(split.train.item_popularity().astype(np.float32))
    tester = FullRankingEvaluator(split.test, exclude=[split.train, split.valid], ks=[10, 20])
    pop = tester.evaluate(lambda users: popularity.expand(len(users), -1).clone()).mean
    rows = [[m, run.test_metrics[m], pop[m]] for m in ["recall@20", "ndcg@20", "recall@10"]]
    print(f"LightGCN trained in {seconds:.1f} s (best epoch {run.train_result.best_epoch})")
    print_table(["test metric", "LightGCN", "popularity"], rows)
    results = {"seconds": seconds, "best_epoch": run.train_result.best_epoch}
    for m in ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]:
        results[f"lightgcn_test_{m}"] = run.test_metrics[m]
        results[f"popularity_test_{m}"] = pop[m]
    print(f"wrote {write_results('quickstart_synthetic', results)}")


if __name__ == "__main__":
    main()
