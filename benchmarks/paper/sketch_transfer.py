"""DiPS policy transfer to GRU4Rec (paper Fig. 2a): Recall@20 of a GRU4Rec fed only K sketch items.

GRU4Rec is trained on the training users of the experiment's seed-0 user split (the last
``--max-length`` items of each, every position a training target; early stopping on the
leave-one-out validation item with 100 sampled negatives). Test users are then streamed
through reservoir sampling and through each learned DiPS policy (trained with the NCF base
model by ``leanrec experiment sketch``), and before every event t >= 1 GRU4Rec sees only the
K sketch items and ranks all items. The "all history" row feeds the last 50 items instead.
Writes ``results/sketch_transfer.json`` and ``.png`` (``--tag T``: ``sketch_transfer--T``). Run
from the repository root:

    python -m benchmarks.paper.sketch_transfer --run runs/sketch-ml1m-tau1 --dataset ml-1m
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import (
    add_tag_argument,
    data_dir,
    print_table,
    results_path,
    write_results,
)
from leanrec.data.sequential import NextItemSplit
from leanrec.data.streams import user_split
from leanrec.models.seq import build_next_item_model
from leanrec.search.sketch.experiment import load_streams
from leanrec.search.sketch.sketcher import StreamingSketcher
from leanrec.search.sketch.transfer import (
    SketchedEvents,
    sketched_events,
    streams_as_interactions,
    transfer_metrics,
)
from leanrec.train.sequential import SequentialTrainer, SequentialTrainerConfig


def full_history_events(events: SketchedEvents, streams, window: int) -> SketchedEvents:
    """The same events with the last ``window`` items of the whole history as input."""
    rows = []
    for stream in np.unique(events.streams):
        items, _ = streams.stream(int(stream))
        shifted = items + 1
        for t in range(1, len(items)):
            history = shifted[max(0, t - window) : t]
            rows.append(np.concatenate([np.zeros(window - len(history), np.int64), history]))
    order = np.argsort(events.streams, kind="stable")  # events are grouped by position
    inputs = np.zeros((len(events.targets), window), dtype=np.int64)
    inputs[order] = np.stack(rows)
    return SketchedEvents(inputs, events.targets, events.streams)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="leanrec experiment sketch output dir")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--sizes", nargs="+", type=int, default=[2, 4, 8])
    parser.add_argument("--method", default="dips", help="dips or dips1 policies")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--max-length",
        type=int,
        default=200,
        help="GRU4Rec training window: the last this many items of each training user",
    )
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=0)
    add_tag_argument(parser, "sketch_transfer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    streams = load_streams(args.dataset, str(data_dir()))
    split = user_split(streams, (0.6, 0.2, 0.2), seed=args.seed)

    # GRU4Rec on the training users' whole histories
    began = time.perf_counter()
    train_data = NextItemSplit.from_interactions(
        streams_as_interactions(split.train),
        max_length=args.max_length,
        negative_sampling="popularity",
        seed=0,
    )
    model = build_next_item_model("gru4rec", streams.n_items, seed=args.seed)
    config = SequentialTrainerConfig(
        max_epochs=args.epochs,
        loss="sampled_softmax",
        max_seconds=args.max_seconds,
        patience=5,
        num_threads=1,
        progress=False,
    )
    result = SequentialTrainer(model, train_data, config).fit()
    train_seconds = time.perf_counter() - began
    print(
        f"GRU4Rec: best epoch {result.best_epoch}, valid {result.best_valid} "
        f"({train_seconds:.0f} s)"
    )

    results: dict[str, float | int | str] = {
        "dataset": args.dataset,
        "gru4rec_best_epoch": result.best_epoch,
        "gru4rec_train_seconds": train_seconds,
    }
    table = []
    test = split.test
    for k in args.sizes:
        row: list[object] = [k]
        for label, path in (
            ("random", None),
            (args.method, Path(args.run) / f"policy_{args.method}_K{k}_tau1.pt"),
        ):
            if path is None:
                sketcher = StreamingSketcher(len(test), k, seed=args.seed)
            else:
                if not path.is_file():
                    raise SystemExit(f"no policy {path}: run the sketch experiment first")
                sketcher = StreamingSketcher.from_policy(path, len(test), seed=args.seed)
            events = sketched_events(test, sketcher)
            metrics = transfer_metrics(model, events)
            results[f"{label}_K{k}_recall@20"] = metrics["recall@20"]
            results[f"{label}_K{k}_mrr@20"] = metrics["mrr@20"]
            row.append(metrics["recall@20"])
        table.append(row)
    events = sketched_events(test, StreamingSketcher(len(test), 1, seed=args.seed))
    full = transfer_metrics(model, full_history_events(events, test, 50))
    results["all_history_recall@20"] = full["recall@20"]
    results["all_history_mrr@20"] = full["mrr@20"]
    results["events"] = int(full["events"])
    table.append(["all (last 50)", full["recall@20"], full["recall@20"]])
    print_table(["K", "random Recall@20", f"{args.method} Recall@20"], table)
    path = write_results("sketch_transfer", results, args.tag)
    _plot(results_path("sketch_transfer", args.tag, ".png"), args.sizes, results, args.method)
    print(f"written: {path}")


def _plot(path: Path, sizes: list[int], results: dict, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, marker in (("random", "o"), (method, "s")):
        ax.plot(
            sizes,
            [results[f"{label}_K{k}_recall@20"] for k in sizes],
            marker=marker,
            label=f"{label} sketch",
        )
    ax.axhline(results["all_history_recall@20"], color="grey", ls="--", label="all history")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(k) for k in sizes])
    ax.set_xlabel("sketch size K")
    ax.set_ylabel("GRU4Rec Recall@20 (test users)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
