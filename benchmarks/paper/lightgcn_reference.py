"""Shared body of the LightGCN reference benchmarks (``ml1m_lightgcn``, ``gowalla_lightgcn``).

Trains LightGCN through the public API, selects the epoch on validation, reports test once,
prints the learning curve and wall time, writes ``results/<script>.json`` and the validation
curve ``results/<script>.png`` (``--tag T``: ``<script>--T``). Not a script itself: run
``python -m benchmarks.paper.ml1m_lightgcn`` or ``python -m benchmarks.paper.gowalla_lightgcn``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import add_tag_argument, data_dir, print_table, results_path, write_results
from leanrec.api import TrainConfig, train
from leanrec.train import TrainerConfig
from leanrec.train.row_optim import EMBEDDING_OPTIMIZERS


def add_arguments(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    parser.add_argument("--epochs", type=int, default=defaults.get("epochs", 300))
    parser.add_argument("--lr", type=float, default=defaults.get("lr", 1e-3))
    parser.add_argument("--batch", type=int, default=defaults.get("batch", 2048))
    parser.add_argument("--l2", type=float, default=defaults.get("l2", 1e-4))
    parser.add_argument("--negatives", type=int, default=defaults.get("negatives", 1))
    parser.add_argument("--lr-decay", type=float, default=defaults.get("lr_decay", 1.0))
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument(
        "--propagation",
        choices=["full", "sampled"],
        default=defaults.get("propagation", "full"),
        help="training propagation (evaluation is always full)",
    )
    parser.add_argument("--fanout", type=int, default=10, help="neighbours per hop if sampled")
    parser.add_argument("--eval-every", type=int, default=defaults.get("eval_every", 5))
    parser.add_argument("--patience", type=int, default=defaults.get("patience", 5))
    parser.add_argument("--max-hours", type=float, default=defaults.get("max_hours"))
    parser.add_argument(
        "--refit-epochs",
        type=int,
        default=0,
        help="after selection, train this many epochs on train + validation (api.refit)",
    )
    parser.add_argument(
        "--embedding-optimizer",
        choices=EMBEDDING_OPTIMIZERS,
        default=TrainerConfig.embedding_optimizer,
        help="how the tables are updated (default: the trainer's; dense_adam: the published runs')",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--run-dir", default=None, help="default: runs/bench-<script>")
    add_tag_argument(parser)


def run(
    script: str,
    dataset: str,
    protocol: str,
    valid_metric: str,
    ks: list[int],
    targets: dict[str, float],
    published: dict[str, float],
    args: argparse.Namespace,
) -> dict[str, Any]:
    trainer = TrainerConfig(
        max_epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch,
        l2=args.l2,
        n_negatives=args.negatives,
        lr_decay=args.lr_decay,
        eval_every=args.eval_every,
        patience=args.patience,
        valid_metric=valid_metric,
        ks=ks,
        seed=args.seed,
        num_threads=args.threads,
        max_seconds=None if args.max_hours is None else args.max_hours * 3600,
        refit_epochs=args.refit_epochs,
        embedding_optimizer=args.embedding_optimizer,
    )
    key = valid_metric

    def show(epoch: int, record: dict[str, float]) -> None:
        if f"valid_{key}" in record:
            print(
                f"epoch {epoch:4d}  loss {record['loss']:.4f}  valid "
                + "  ".join(f"{m} {record['valid_' + m]:.4f}" for m in targets)
                + f"  ({record['train_seconds']:.1f} s/epoch, eval {record['eval_seconds']:.1f} s)",
                flush=True,
            )

    began = time.perf_counter()
    config = TrainConfig(
        dataset=dataset,
        model="lightgcn",
        protocol=protocol,
        data_dir=str(data_dir()),
        seed=args.seed,
        model_options={
            "embedding_dim": args.dim,
            "n_layers": args.layers,
            "propagation": args.propagation,
            "fanout": args.fanout,
        },
        trainer=trainer,
        run_dir=args.run_dir or f"runs/bench-{script}",
    )
    result = train(config, on_epoch=show)
    wall = time.perf_counter() - began
    history = result.train_result.history
    selection_seconds = sum(r["train_seconds"] for r in history)
    refit_seconds = 0.0 if result.refit_result is None else result.refit_result.seconds
    train_seconds = selection_seconds + refit_seconds
    test = result.test_metrics
    rows = [[m, test[m], published.get(m, float("nan")), targets[m], test[m] >= targets[m]]
            for m in targets]  # fmt: skip
    print(f"\nsplit {result.split.describe()}")
    print(
        f"best epoch {result.train_result.best_epoch} of {result.train_result.epochs_run} "
        f"(stopped by {result.train_result.stop_reason}); training {train_seconds / 3600:.2f} h "
        f"(refit on train + valid: {args.refit_epochs} epochs, {refit_seconds / 3600:.2f} h), "
        f"{selection_seconds / len(history):.1f} s/epoch; wall {wall / 3600:.2f} h"
    )
    print_table(["test metric", "leanrec", "published", "target", "met"], rows)

    curve = [r for r in history if f"valid_{key}" in r]
    plot_curve(script, curve, list(targets), args.tag)
    record: dict[str, Any] = {
        "dataset": dataset,
        "protocol": protocol,
        "train_interactions": len(result.split.train),
        "valid_interactions": len(result.split.valid),
        "test_interactions": len(result.split.test),
        "learning_rate": args.lr,
        "batch_size": args.batch,
        "l2": args.l2,
        "n_negatives": args.negatives,
        "lr_decay": args.lr_decay,
        "layers": args.layers,
        "dim": args.dim,
        "propagation": args.propagation,
        "fanout": args.fanout,
        "embedding_optimizer": args.embedding_optimizer,
        "best_epoch": result.train_result.best_epoch,
        "epochs_run": result.train_result.epochs_run,
        "stop_reason": result.train_result.stop_reason,
        "train_hours": train_seconds / 3600,
        "selection_train_hours": selection_seconds / 3600,
        "refit_epochs": args.refit_epochs,
        "refit_hours": refit_seconds / 3600,
        "seconds_per_epoch": selection_seconds / len(history),
        "wall_hours": wall / 3600,
        **{f"published_{k}": v for k, v in published.items()},
        **{f"target_{k}": v for k, v in targets.items()},
        **{f"valid_{k}": v for k, v in result.valid_metrics.items()},
        **{f"test_{k}": v for k, v in test.items()},
        "target_met": all(test[m] >= t for m, t in targets.items()),
    }
    for r in curve:
        for m in targets:
            record[f"curve_epoch{int(r['epoch']):04d}_valid_{m}"] = r[f"valid_{m}"]
    print(f"wrote {write_results(script, record, args.tag)}")
    return record


def plot_curve(
    script: str, curve: list[dict[str, float]], metrics: list[str], tag: str | None = None
) -> None:
    """Validation learning curve as ``results/<script>[--<tag>].png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for m in metrics:
        ax.plot([r["epoch"] for r in curve], [r[f"valid_{m}"] for r in curve], label=m)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation")
    ax.set_title(script)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(results_path(script, tag, ".png"), dpi=110)
    plt.close(fig)
