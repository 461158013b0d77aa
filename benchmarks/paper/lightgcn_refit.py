"""Refit a finished LightGCN benchmark run on training + validation, then test it.

The run was selected on validation (its ``history.json``); this trains the selected model a
fixed number of epochs more on the union of its training and validation interactions
(:func:`leanrec.api.refit`, the same step as ``--refit-epochs`` of the reference benchmarks),
and reports test before and after, with the training hours of both parts. It reads the run
directory a reference benchmark wrote (``config.json``, ``history.json``, ``metrics.json``,
``model.pt``); the test split is read only by the final evaluations. Writes
``results/lightgcn_refit.json`` (``--tag T``: ``results/lightgcn_refit--T.json``). Run from the
repository root:

    python -m benchmarks.paper.lightgcn_refit runs/bench-gowalla-neg16-s8 --epochs 10 \\
        --tag gowalla --targets recall@20=0.170 ndcg@20=0.145
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.api import load_model, refit
from leanrec.data.presets import prepare_split
from leanrec.evaluate import FullRankingEvaluator
from leanrec.train import TrainerConfig, evaluate_model
from leanrec.train.bpr import learning_rate_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    add_tag_argument(parser, "lightgcn_refit")
    parser.add_argument("--targets", nargs="*", default=[], help="metric=value goals")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = json.loads((args.run_dir / "config.json").read_text())
    history: list[dict[str, float]] = json.loads((args.run_dir / "history.json").read_text())
    selected = json.loads((args.run_dir / "metrics.json").read_text())
    trainer = TrainerConfig.from_dict(config["trainer"], drop_unknown=True)
    if args.threads:
        trainer.num_threads = args.threads
    split, _ = prepare_split(config["dataset"], config["protocol"], str(data_dir()), config["seed"])
    model, _, _ = load_model(args.run_dir / "model.pt")
    tester = FullRankingEvaluator(
        split.test, exclude=[split.train, split.valid], ks=trainer.ks or [20]
    )
    before = evaluate_model(model, tester).mean
    best_epoch = int(selected["best_epoch"])
    refitted = refit(model, split, trainer, history, best_epoch, args.epochs)
    after = evaluate_model(model, tester).mean

    targets = {m: float(v) for m, v in (t.split("=") for t in args.targets)}
    metrics = sorted(targets or {k for k in after if k.startswith(("recall", "ndcg"))})
    rows = [
        [m, before[m], after[m], targets.get(m, float("nan")), after[m] >= targets.get(m, 0.0)]
        for m in metrics
    ]
    headers = ["test metric", "as selected", f"refit {args.epochs} epochs", "target", "met"]
    print_table(headers, rows)
    selection_hours = sum(r["train_seconds"] for r in history) / 3600
    refit_hours = refitted.seconds / 3600
    print(
        f"training: selection {selection_hours:.2f} h + refit {refit_hours:.2f} h "
        f"= {selection_hours + refit_hours:.2f} h; best epoch {selected['best_epoch']} of "
        f"{selected['epochs_run']}"
    )
    record: dict[str, Any] = {
        "run_dir": str(args.run_dir),
        "dataset": config["dataset"],
        "protocol": config["protocol"],
        "best_epoch": selected["best_epoch"],
        "epochs_run": selected["epochs_run"],
        "refit_epochs": args.epochs,
        "refit_learning_rate": learning_rate_at(history, trainer, best_epoch),
        "train_interactions": len(split.train),
        "valid_interactions": len(split.valid),
        "selection_train_hours": selection_hours,
        "refit_hours": refit_hours,
        "train_hours": selection_hours + refit_hours,
        **{f"selected_test_{k}": v for k, v in before.items()},
        **{f"test_{k}": v for k, v in after.items()},
        **{f"target_{k}": v for k, v in targets.items()},
        "target_met": all(after[m] >= t for m, t in targets.items()) if targets else None,
    }
    print(f"wrote {write_results('lightgcn_refit', record, args.tag)}")


if __name__ == "__main__":
    main()
