"""LightGCN (or NGCF) trained with full propagation and with sampled neighbourhoods, side by side.

Each mode trains the same model on the same split and seed with the same trainer settings under
the same wall-clock budget (``--max-minutes``; evaluation every ``--eval-every`` epochs); the
epoch is selected on validation, test is reported once. Modes are ``full``, ``sampled:F``
(fan-out ``F`` per hop) and ``snapshot:F[:R]`` (``R``, default 1, full propagations per epoch,
corrected through the batch's edges sampled at fan-out ``F``); the process CPU time of each
run is recorded too. Prints a table and writes ``results/propagation_modes[--tag].json`` (after
every run, so a stopped run keeps its rows).
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
    """``"full"``, ``"sampled:F"``, ``"snapshot:F"`` or ``"snapshot:F:R"`` (``R`` snapshots per
    epoch) -> model options."""
    if mode == "full":
        return {"propagation": "full"}
    name, _, rest = mode.partition(":")
    fanout, _, per_epoch = rest.partition(":")
    valid = name in ("sampled", "snapshot") and fanout.isdigit()
    if not valid or (per_epoch and (name != "snapshot" or not per_epoch.isdigit())):
        raise ValueError(
            f"mode must be 'full', 'sampled:F', 'snapshot:F' or 'snapshot:F:R', got {mode!r}"
        )
    options: dict[str, Any] = {"propagation": name, "fanout": int(fanout)}
    if per_epoch:
        options["snapshots_per_epoch"] = int(per_epoch)
    return options


def synthetic_run(
    size_millions: float, mode: str, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    """``mode`` on ``make_synthetic_power_law`` data (80/10/10 per user), validation every
    epoch on at most ``--valid-users`` users; the history of validation and CPU seconds."""
    import numpy as np

    from leanrec.data.splits import ratio_split
    from leanrec.data.synthetic import make_synthetic_power_law
    from leanrec.models import build_model
    from leanrec.train.bpr import BPRTrainer

    data = make_synthetic_power_law(round(size_millions * 1e6), seed=seed)
    split = ratio_split(data, (0.8, 0.1, 0.1), seed=seed)
    rng = np.random.default_rng(seed)
    users = np.unique(split.valid.users)
    kept = rng.choice(users, min(args.valid_users, len(users)), replace=False)
    valid = split.valid.subset(np.flatnonzero(np.isin(split.valid.users, kept)))
    options: dict[str, Any] = {"embedding_dim": 64, "n_layers": args.layers, **parse_mode(mode)}
    model = build_model(args.model, split.train, options, seed=seed)
    config = TrainerConfig(
        max_epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch,
        l2=args.l2,
        eval_every=1,
        patience=args.epochs,
        valid_metric=args.valid_metric,
        ks=[10, 20],
        seed=seed,
        num_threads=args.threads,
        progress=False,
    )
    cpu = [time.process_time()]

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        record["cpu_seconds"] = time.process_time() - cpu[0]

    result = BPRTrainer(model, split.train, valid, config, on_epoch=on_epoch).fit()
    return {
        "mode": mode,
        "training_propagation": model.training_propagation,
        "train_interactions": len(split.train),
        "valid_users": len(kept),
        **{
            f"epoch{int(r['epoch']):02d}_{k}": v
            for r in result.history
            for k, v in r.items()
            if k.startswith("valid_") or k == "cpu_seconds"
        },
    }


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
    parser.add_argument(
        "--synthetic", type=float, default=None,
        help="instead of --dataset: this many million synthetic interactions, every mode for "
        "--epochs epochs, validation every epoch (on --valid-users users)",
    )  # fmt: skip
    parser.add_argument("--valid-users", type=int, default=5000)
    add_tag_argument(parser)
    args = parser.parse_args()
    if args.synthetic is not None:
        record_synthetic: dict[str, Any] = {
            "synthetic_millions": args.synthetic, "model": args.model, "epochs": args.epochs,
            "learning_rate": args.lr, "batch_size": args.batch, "layers": args.layers,
        }  # fmt: skip
        for seed in args.seeds:
            for mode in args.modes:
                entry = synthetic_run(args.synthetic, mode, args, seed)
                print(f"{mode} seed {seed}: {entry}", flush=True)
                prefix = f"{mode.replace(':', '')}_seed{seed}"
                record_synthetic.update({f"{prefix}_{k}": v for k, v in entry.items()})
                write_results("propagation_modes", record_synthetic, args.tag)
        return

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
            began, began_cpu = time.perf_counter(), time.process_time()
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
                "cpu_seconds": time.process_time() - began_cpu,
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
