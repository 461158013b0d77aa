"""LightGCN on MovieLens-1M under RecBole's protocol (issue 2, item 1).

Protocol: ``movielens-1m-ratings/`` (all 1,000,209 ratings), ratings >= 3 positive (836,478),
per-user random 8:1:1 split, full ranking with train (and validation at test) masked, d = 64,
3 layers. Model selection on validation NDCG@10; test reported once, for the selected epoch.
Target: test Recall@10 >= 0.18 and NDCG@10 >= 0.245 (RecBole's published 0.1861 / 0.2538).

    python benchmarks/ml1m_lightgcn.py [--epochs 300] [--lr 2e-3] [--batch 2048]
"""

from __future__ import annotations

import argparse
import time

from common import data_dir, print_table, write_results
from leanrec.api import TrainConfig, train
from leanrec.train import TrainerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--run-dir", default="runs/bench-ml1m-lightgcn")
    args = parser.parse_args()

    trainer = TrainerConfig(
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch,
        l2=args.l2,
        eval_every=args.eval_every,
        patience=args.patience,
        valid_metric="ndcg@10",
        ks=[10, 20],
        seed=args.seed,
    )

    def show(epoch: int, record: dict[str, float]) -> None:
        if "valid_ndcg@10" in record:
            print(
                f"epoch {epoch:4d}  loss {record['loss']:.4f}  "
                f"valid recall@10 {record['valid_recall@10']:.4f}  "
                f"ndcg@10 {record['valid_ndcg@10']:.4f}  ({record['train_seconds']:.1f} s/epoch)",
                flush=True,
            )

    began = time.perf_counter()
    config = TrainConfig(
        dataset="ml-1m",
        model="lightgcn",
        protocol="recbole",
        data_dir=str(data_dir()),
        seed=args.seed,
        model_options={"embedding_dim": 64, "n_layers": 3},
        trainer=trainer,
        run_dir=args.run_dir,
    )
    run = train(config, on_epoch=show)
    wall = time.perf_counter() - began
    epochs = run.train_result.history
    mean_epoch = sum(r["train_seconds"] for r in epochs) / len(epochs)
    test = run.test_metrics
    rows = [
        ["recall@10", test["recall@10"], 0.1861, 0.18],
        ["ndcg@10", test["ndcg@10"], 0.2538, 0.245],
        ["recall@20", test["recall@20"], float("nan"), float("nan")],
        ["ndcg@20", test["ndcg@20"], float("nan"), float("nan")],
    ]
    print(f"\nsplit {run.split.describe()}")
    print(f"best epoch {run.train_result.best_epoch}, {mean_epoch:.1f} s/epoch, wall {wall:.0f} s")
    print_table(["test metric", "leanrec", "RecBole published", "target"], rows)
    results = {
        "dataset": "ml-1m",
        "protocol": "recbole",
        "interactions": len(run.split.train) + len(run.split.valid) + len(run.split.test),
        "train_interactions": len(run.split.train),
        "learning_rate": args.lr,
        "batch_size": args.batch,
        "l2": args.l2,
        "best_epoch": run.train_result.best_epoch,
        "epochs_run": run.train_result.epochs_run,
        "seconds_per_epoch": mean_epoch,
        "wall_seconds": wall,
        "recbole_published_recall@10": 0.1861,
        "recbole_published_ndcg@10": 0.2538,
        **{f"valid_{k}": v for k, v in run.valid_metrics.items()},
        **{f"test_{k}": v for k, v in test.items()},
        "target_met": bool(test["recall@10"] >= 0.18 and test["ndcg@10"] >= 0.245),
    }
    print(f"wrote {write_results('ml1m_lightgcn', results)}")


if __name__ == "__main__":
    main()
