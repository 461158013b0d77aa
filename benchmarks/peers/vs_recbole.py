"""RecBole 1.2.1 and leanrec on the same LightGCN / MovieLens-1M configuration, in one run.

Configuration (RecBole's protocol, both sides): ``movielens-1m-ratings/ratings.dat``, ratings
>= 3 positive (836,478 interactions), per-user random 8:1:1 split made once by leanrec and
handed to RecBole as benchmark files (so both see the very same train/valid/test), full
ranking; LightGCN d = 64, 3 layers, Xavier-uniform initialisation, Adam lr 1e-3, batch 2048,
reg 1e-5, exactly ``--epochs`` epochs, validation every ``--eval-every`` epochs on Recall@10,
the best-validation weights tested once. RecBole runs in its own virtual environment (built on
first use by ``recbole_env.py``); the two sides run one after the other with the same number
of torch threads, so the machine's background load is shared alike.

Reports per-epoch training time, full-ranking evaluation time and test metrics of both, with
ratios. Goals: leanrec >= 2x faster per epoch, >= 3x faster in evaluation, metrics within 3%.
Writes ``results/vs_recbole.json`` (``--tag T``: ``results/vs_recbole--T.json``, e.g.
``--init normal --epochs 10 --tag init-normal--epochs-10``). Run from the repository root:

    python -m benchmarks.peers.vs_recbole [--epochs 10] [--eval-every 5] [--threads 0]

``--scaling M`` instead runs one epoch (validation after it, then test) of both sides on ML-1M
and on ``M`` million synthetic interactions
(:func:`~leanrec.data.synthetic.make_synthetic_power_law`, the same 8:1:1 per-user split handed
to both), one after the other in the same run, so the time ratio is shown as the data grows;
leanrec runs in each of ``--propagations`` (its default training, which is full propagation
on ML-1M and a per-epoch snapshot above 1M training edges, and full propagation). Writes
``results/vs_recbole--scaling.json`` unless ``--tag`` says otherwise:

    python -m benchmarks.peers.vs_recbole --scaling 2.5 --threads 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from benchmarks.peers.recbole_runner import run_recbole
from leanrec.data.interactions import Split
from leanrec.data.presets import prepare_split
from leanrec.embeddings import FullTableFactory
from leanrec.evaluate import FullRankingEvaluator
from leanrec.models import build_model
from leanrec.train import BPRTrainer, TrainerConfig, evaluate_model
from leanrec.train.row_optim import EMBEDDING_OPTIMIZERS

METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr@10", "hit@10"]


def write_recbole_split(split: Split, directory: Path) -> Path:
    """Write ``split`` as RecBole benchmark files ``ml-1m/ml-1m.{train,valid,test}.inter``."""
    folder = directory / "ml-1m"
    folder.mkdir(parents=True, exist_ok=True)
    for part, data in (("train", split.train), ("valid", split.valid), ("test", split.test)):
        users = data.user_vocab.to_raw(data.users)
        items = data.item_vocab.to_raw(data.items)
        # RecBole keeps ratings >= 3 of these files too: unrated interactions are written as 5
        ratings = data.ratings if data.ratings is not None else np.full(len(data), 5.0)
        lines = [f"{u}\t{i}\t{r:g}" for u, i, r in zip(users, items, ratings)]
        text = "user_id:token\titem_id:token\trating:float\n" + "\n".join(lines) + "\n"
        (folder / f"ml-1m.{part}.inter").write_text(text)
    return directory


def run_leanrec(
    args: argparse.Namespace, split: Split, propagation: str | None = None
) -> dict[str, Any]:
    """The leanrec side: same split and hyper-parameters, timed the same way (``propagation``:
    LightGCN's training propagation, None for its default)."""
    options: dict[str, Any] = {"embedding_dim": 64, "n_layers": 3}
    if propagation is not None:
        options["propagation"] = propagation
    # RecBole initialises its tables Xavier-uniform; leanrec's default is N(0, 0.1) (LightGCN's)
    tables = FullTableFactory(init_std=None if args.init == "xavier" else 0.1)
    model = build_model("lightgcn", split.train, options, table_factory=tables, seed=args.seed)
    config = TrainerConfig(
        max_epochs=args.epochs,
        learning_rate=1e-3,
        batch_size=2048,
        l2=1e-5,
        eval_every=args.eval_every,
        patience=10**9,
        valid_metric="recall@10",
        ks=[10, 20],
        seed=args.seed,
        num_threads=args.threads,
        progress=False,
        embedding_optimizer=args.embedding_optimizer,
    )

    def show(epoch: int, record: dict[str, float]) -> None:
        valid = (
            f"  valid recall@10 {record['valid_recall@10']:.4f}"
            if "valid_recall@10" in record
            else ""
        )
        print(f"[leanrec] epoch {epoch}: {record['train_seconds']:.1f} s{valid}", flush=True)

    result = BPRTrainer(model, split.train, split.valid, config, on_epoch=show).fit()
    tester = FullRankingEvaluator(split.test, exclude=[split.train, split.valid], ks=[10, 20])
    test = evaluate_model(model, tester)
    history = result.history
    return {
        "train_epoch_s": [r["train_seconds"] for r in history],
        "valid_eval_s": [r["eval_seconds"] for r in history if "eval_seconds" in r],
        "test_eval_s": test.seconds,
        "n_train": len(split.train),
        "n_interactions": len(split.train) + len(split.valid) + len(split.test),
        **{f"test_{m}": test.mean[m] for m in METRICS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads, both sides")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--init", choices=["xavier", "normal"], default="xavier",
        help="leanrec's table initialisation (xavier: RecBole's)",
    )  # fmt: skip
    parser.add_argument(
        "--scaling", type=float, default=None, metavar="M",
        help="one epoch on ML-1M and on M million synthetic interactions, same run",
    )  # fmt: skip
    parser.add_argument(
        "--propagations", nargs="+", default=["default", "full"],
        help="leanrec's LightGCN training propagations ('default': its config's, full up to "
        "1M training edges and a per-epoch snapshot above)",
    )  # fmt: skip
    parser.add_argument(
        "--embedding-optimizer", choices=EMBEDDING_OPTIMIZERS,
        default=TrainerConfig.embedding_optimizer,
        help="leanrec's table updates (default: its trainer's; RecBole's is dense Adam)",
    )  # fmt: skip
    add_tag_argument(parser, "vs_recbole")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.scaling is not None:
        run_scaling(args)
        return
    ratings = data_dir() / "movielens-1m-ratings" / "ratings.dat"
    split, _ = prepare_split("ml-1m", "recbole", data_dir(), seed=args.seed)
    split_dir = write_recbole_split(split, Path(tempfile.mkdtemp(prefix="leanrec-split-")))

    load_before = os.getloadavg()[0]
    recbole = run_recbole(
        ratings, epochs=args.epochs, eval_every=args.eval_every, seed=args.seed,
        layers=3, dim=64, lr=1e-3, batch=2048, reg_weight=1e-5, min_rating=3,
        threads=args.threads, split_dir=str(split_dir),
    )  # fmt: skip
    shutil.rmtree(split_dir, ignore_errors=True)
    ours = run_leanrec(args, split)
    load_after = os.getloadavg()[0]

    def mean(values: Any) -> float:
        return float(statistics.mean(values)) if isinstance(values, list) else float(values)

    def median(values: Any) -> float:
        return float(statistics.median(values)) if isinstance(values, list) else float(values)

    rb_epoch, lr_epoch = median(recbole["train_epoch_s"]), median(ours["train_epoch_s"])
    rb_eval = median(recbole["valid_eval_s"] + [recbole["test_eval_s"]])
    lr_eval = median(ours["valid_eval_s"] + [ours["test_eval_s"]])
    rows: list[list[Any]] = [
        ["train s/epoch (median)", rb_epoch, lr_epoch, rb_epoch / lr_epoch],
        ["full-ranking eval s (median)", rb_eval, lr_eval, rb_eval / lr_eval],
    ]
    results: dict[str, Any] = {
        "epochs": args.epochs,
        "leanrec_init": args.init,
        "eval_every": args.eval_every,
        "threads": args.threads or torch.get_num_threads(),
        "leanrec_embedding_optimizer": args.embedding_optimizer,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "recbole_train_epoch_s": rb_epoch,
        "leanrec_train_epoch_s": lr_epoch,
        "recbole_train_epoch_mean_s": mean(recbole["train_epoch_s"]),
        "leanrec_train_epoch_mean_s": mean(ours["train_epoch_s"]),
        "speedup_train_epoch": rb_epoch / lr_epoch,
        "recbole_eval_s": rb_eval,
        "leanrec_eval_s": lr_eval,
        "speedup_eval": rb_eval / lr_eval,
        "recbole_interactions": recbole["n_interactions"],
        "leanrec_interactions": ours["n_interactions"],
        "recbole_train_interactions": recbole["n_train"],
        "leanrec_train_interactions": ours["n_train"],
    }
    for m in METRICS:
        rb, ln = float(recbole[f"test_{m}"]), float(ours[f"test_{m}"])
        rows.append([f"test {m}", rb, ln, ln / rb])
        results[f"recbole_test_{m}"] = rb
        results[f"leanrec_test_{m}"] = ln
        results[f"ratio_test_{m}"] = ln / rb
    results["goal_train_2x"] = results["speedup_train_epoch"] >= 2
    results["goal_eval_3x"] = results["speedup_eval"] >= 3
    results["goal_metrics_within_3pct"] = all(
        abs(results[f"ratio_test_{m}"] - 1) <= 0.03
        for m in ["recall@10", "ndcg@10", "recall@20", "ndcg@20"]
    )
    print()
    print_table(["LightGCN / ML-1M", "RecBole 1.2.1", "leanrec", "ratio"], rows)
    print("(time rows: RecBole / leanrec, > 1 means leanrec is faster; metrics: leanrec / RecBole)")
    print(f"wrote {write_results('vs_recbole', results, args.tag)}")


def run_scaling(args: argparse.Namespace) -> None:
    """One epoch of both sides on ML-1M and on a synthetic dataset ``args.scaling`` million
    interactions large, in this order, in one run (``--scaling``)."""
    from leanrec.data.splits import ratio_split
    from leanrec.data.synthetic import make_synthetic_power_law
    from leanrec.models.lightgcn import LightGCNConfig

    args.epochs, args.eval_every = 1, 1
    ml1m, _ = prepare_split("ml-1m", "recbole", data_dir(), seed=args.seed)
    synthetic = make_synthetic_power_law(round(args.scaling * 1e6), seed=args.seed)
    datasets = {"ml1m": ml1m, "synthetic": ratio_split(synthetic, (0.8, 0.1, 0.1), args.seed)}
    ratings = data_dir() / "movielens-1m-ratings" / "ratings.dat"
    results: dict[str, Any] = {
        "epochs": 1,
        "threads": args.threads or torch.get_num_threads(),
        "leanrec_embedding_optimizer": args.embedding_optimizer,
        "synthetic_millions": args.scaling,
        "loadavg_before": os.getloadavg()[0],
    }
    rows: list[list[Any]] = []
    for name, split in datasets.items():
        split_dir = write_recbole_split(split, Path(tempfile.mkdtemp(prefix="leanrec-split-")))
        recbole = run_recbole(
            ratings, epochs=1, eval_every=1, seed=args.seed, layers=3, dim=64, lr=1e-3,
            batch=2048, reg_weight=1e-5, min_rating=3, threads=args.threads,
            split_dir=str(split_dir),
        )  # fmt: skip
        shutil.rmtree(split_dir, ignore_errors=True)
        size = len(split.train) + len(split.valid) + len(split.test)
        rb_epoch = float(recbole["train_epoch_s"][0])
        rb_eval = float(statistics.median(recbole["valid_eval_s"] + [recbole["test_eval_s"]]))
        results.update({
            f"{name}_users": split.train.n_users,
            f"{name}_items": split.train.n_items,
            f"{name}_interactions": size,
            f"{name}_train_interactions": len(split.train),
            f"{name}_recbole_interactions": recbole["n_interactions"],
            f"{name}_recbole_train_epoch_s": rb_epoch,
            f"{name}_recbole_eval_s": rb_eval,
            f"{name}_recbole_test_recall@20": float(recbole["test_recall@20"]),
            f"{name}_leanrec_default_propagation": (
                "snapshot" if len(split.train) > LightGCNConfig().sampled_above_edges else "full"
            ),
        })  # fmt: skip
        for propagation in args.propagations:
            ours = run_leanrec(args, split, None if propagation == "default" else propagation)
            lr_epoch = float(ours["train_epoch_s"][0])
            lr_eval = float(statistics.median(ours["valid_eval_s"] + [ours["test_eval_s"]]))
            key = f"{name}_leanrec_{propagation}"
            results.update({
                f"{key}_train_epoch_s": lr_epoch,
                f"{key}_eval_s": lr_eval,
                f"{key}_test_recall@20": float(ours["test_recall@20"]),
                f"{key}_speedup_train_epoch": rb_epoch / lr_epoch,
                f"{key}_speedup_eval": rb_eval / lr_eval,
            })  # fmt: skip
            rows.append(
                [name, size, propagation, rb_epoch, lr_epoch, rb_epoch / lr_epoch, rb_eval,
                 lr_eval, rb_eval / lr_eval, float(recbole["test_recall@20"]),
                 float(ours["test_recall@20"])]
            )  # fmt: skip
        write_results("vs_recbole", results, args.tag or "scaling")
    results["loadavg_after"] = os.getloadavg()[0]
    print()
    print_table(
        ["data", "interactions", "leanrec training", "RecBole s/epoch", "leanrec s/epoch",
         "speed-up", "RecBole eval s", "leanrec eval s", "speed-up", "RecBole R@20",
         "leanrec R@20"],
        rows,
    )  # fmt: skip
    print("(one epoch each; R@20 after one epoch, not a converged accuracy)")
    print(f"wrote {write_results('vs_recbole', results, args.tag or 'scaling')}")


if __name__ == "__main__":
    main()
