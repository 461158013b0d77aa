"""LightGCN (or NGCF) trained with full propagation and with sampled neighbourhoods, side by side.

Each mode trains the same model on the same split and seed with the same trainer settings under
the same wall-clock budget (``--max-minutes``; evaluation every ``--eval-every`` epochs); the
epoch is selected on validation, test is reported once. Modes are ``full`` and
``sampled:F`` (fan-out ``F`` per hop). Prints a table and writes
``results/propagation_modes[--tag].json`` (after every run, so a stopped run keeps its rows).
Run from the repository root:

    python -m benchmarks.probes.propagation_modes --dataset ml-100k --modes full sampled:10
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.api import TrainConfig, train
from leanrec.train import TrainerConfig


def parse_mode(mode: str) -> dict[str, Any]:
    """``"full"`` or ``"sampled:F"`` -> model options."""
    if mode == "full":
        return {"propagation": "full"}
    name, _, fanout = mode.partition(":")
    if name != "sampled" or not fanout.isdigit():
        raise ValueError(f"mode must be 'full' or 'sampled:F', got {mode!r}")
    return {"propagation": "sampled", "fanout": int(fanout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--protocol", default=None)
    parser.add_argument("--model", default="lightgcn", choices=["lightgcn", "ngcf"])
    parser.add_argument("--modes", nargs="+", default=["full", "sampled:10"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--valid-metric", default="ndcg@10")
    parser.add_argument("--seeds", type=int, nargs="+", default=[2024])
    parser.add_argument("--threads", type=int, default=1)
    add_tag_argument(parser)
    args = parser.parse_args()

    rows: list[list[Any]] = []
    record: dict[str, Any] = {
        "dataset": args.dataset,
        "model": args.model,
        "max_minutes": args.max_minutes,
        "learning_rate": args.lr,
        "batch_size": args.batch,
        "layers": args.layers,
    }
    for seed in args.seeds:
        for mode in args.modes:
            options: dict[str, Any] = {"embedding_dim": 64, **parse_mode(mode)}
            if args.model == "lightgcn":
                options["n_layers"] = args.layers
            trainer = TrainerConfig(
                max_epochs=args.epochs,
                learning_rate=args.lr,
                batch_size=args.batch,
                l2=args.l2,
                eval_every=args.eval_every,
                patience=args.patience,
                valid_metric=args.valid_metric,
                ks=[10, 20],
                seed=seed,
                num_threads=args.threads,
                max_seconds=None if args.max_minutes is None else args.max_minutes * 60,
            )
            began = time.perf_counter()
            run = train(
                TrainConfig(
                    dataset=args.dataset,
                    model=args.model,
                    protocol=args.protocol,
                    data_dir=str(data_dir()),
                    seed=seed,
                    model_options=options,
                    trainer=trainer,
                )
            )
            history = run.train_result.history
            seconds = sum(r["train_seconds"] for r in history)
            entry = {
                "mode": mode,
                "seed": seed,
                "best_epoch": run.train_result.best_epoch,
                "epochs_run": run.train_result.epochs_run,
                "stop_reason": run.train_result.stop_reason,
                "seconds_per_epoch": seconds / len(history),
                "train_seconds": seconds,
                "wall_seconds": time.perf_counter() - began,
                **{f"valid_{k}": v for k, v in run.valid_metrics.items()},
                **{f"test_{k}": v for k, v in run.test_metrics.items()},
            }
            prefix = f"{mode.replace(':', '')}_seed{seed}"
            record.update({f"{prefix}_{k}": v for k, v in entry.items()})
            for r in history:
                if f"valid_{args.valid_metric}" in r:
                    key = f"{prefix}_curve_epoch{int(r['epoch']):04d}_valid_{args.valid_metric}"
                    record[key] = r[f"valid_{args.valid_metric}"]
            rows.append(
                [mode, seed, entry["best_epoch"], entry["epochs_run"], entry["seconds_per_epoch"],
                 entry[f"valid_{args.valid_metric}"], entry["test_recall@10"],
                 entry["test_ndcg@10"]]
            )  # fmt: skip
            print(f"{mode} seed {seed}: {rows[-1]}", flush=True)
            write_results("propagation_modes", record, args.tag)  # keep what is measured
    print_table(
        ["mode", "seed", "best epoch", "epochs", "s/epoch", f"valid {args.valid_metric}",
         "test recall@10", "test ndcg@10"],
        rows,
    )  # fmt: skip
    print(f"wrote {write_results('propagation_modes', record, args.tag)}")


if __name__ == "__main__":
    main()
