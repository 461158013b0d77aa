"""LightGCN propagating only the columns its rows keep, against propagating every column.

When every row of a masked (or packed) table keeps a prefix of at most ``w < d_max`` columns,
as under uniform sizes (SU) or any sizes capped below ``d_max``, LightGCN propagates
``E[:, :w]`` and pads the zero columns back (``LightGCN.propagate_kept_columns``); the
reference propagates all ``d_max`` columns, as before. One BPR training step (the batch's
forward through the full propagation and its backward) is timed both ways on ML-1M (the CIESS
split, ``d_max = 128``, 3 layers, a batch of 8,192 pairs with 4 negatives each), alternating,
best of ``--repeats``, one thread, at the uniform sizes of c = 80 / 90 / 95% and at sizes
drawn up to ``d_max`` (where nothing can be cut). The same run checks that the loss and every
gradient are bit-identical both ways. Writes ``results/kept_columns.json``. Run from the
repository root::

    python -m benchmarks.perf.kept_columns
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.base import Recommender
from leanrec.models.compress import set_entity_sizes
from leanrec.models.lightgcn import LightGCN
from leanrec.search.embedding_size.baselines import uniform_sizes
from leanrec.search.embedding_size.retrain import build_masked_model

SCRIPT = "kept_columns"
BATCH, NEGATIVES = 8192, 4


def training_step(model: Recommender, batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """One BPR step's loss and gradients (forward and backward, no optimiser step)."""
    model.zero_grad()
    users, positives, negatives = batch
    out = model.pairwise(users, positives, negatives)
    margin = out.positive_scores[:, None] - out.negative_scores
    loss = -torch.nn.functional.logsigmoid(margin).mean() + 1e-4 * out.l2
    loss.backward()
    grads = [p.grad.detach().clone() for p in model.parameters() if p.grad is not None]
    return [loss.detach(), *grads]


def timed(model: Recommender, batch: tuple[torch.Tensor, ...], kept: bool) -> float:
    LightGCN.propagate_kept_columns = kept
    began = time.perf_counter()
    training_step(model, batch)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=2024)
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    os.environ.setdefault("LEANREC_PROGRESS", "0")
    torch.set_num_threads(1)
    split, _ = prepare_split(args.dataset, "ciess", data_dir(), args.seed)
    train = split.train
    model = build_masked_model(split, "lightgcn", {}, args.max_dim, args.seed)
    model.train()
    rng = np.random.default_rng(args.seed)
    pairs = rng.integers(0, len(train.users), BATCH)
    batch = (
        torch.from_numpy(train.users[pairs].astype(np.int64)),
        torch.from_numpy(train.items[pairs].astype(np.int64)),
        torch.from_numpy(rng.integers(0, train.n_items, (BATCH, NEGATIVES))),
    )
    settings = [
        (f"su{round(c * 100)}", f"SU, c = {round(c * 100)}%",
         uniform_sizes(train.n_users, train.n_items, args.max_dim, c))
        for c in (0.8, 0.9, 0.95)
    ]  # fmt: skip
    drawn = (
        rng.integers(1, args.max_dim + 1, train.n_users),
        rng.integers(1, args.max_dim + 1, train.n_items),
    )
    settings.append(("drawn", "sizes drawn in [1, d_max]", drawn))
    results: dict[str, Any] = {
        "dataset": args.dataset,
        "max_dim": args.max_dim,
        "batch": BATCH,
        "negatives": NEGATIVES,
        "repeats": args.repeats,
    }
    rows = []
    for key, label, (users, items) in settings:
        set_entity_sizes(model, users, items)
        width = max(t.kept_width() for t in model.embedding_tables().values())
        LightGCN.propagate_kept_columns = True
        narrow = training_step(model, batch)
        LightGCN.propagate_kept_columns = False
        full = training_step(model, batch)
        identical = all(torch.equal(a, b) for a, b in zip(narrow, full, strict=True))
        best = {True: math.inf, False: math.inf}
        for _ in range(args.repeats):
            for kept in (True, False):
                best[kept] = min(best[kept], timed(model, batch, kept))
        LightGCN.propagate_kept_columns = True
        results[f"{key}:kept_width"] = width
        results[f"{key}:kept_seconds"] = best[True]
        results[f"{key}:all_columns_seconds"] = best[False]
        results[f"{key}:speedup"] = best[False] / best[True]
        results[f"{key}:bit_identical"] = identical
        rows.append(
            [label, width, f"{best[True]:.3f}", f"{best[False]:.3f}",
             f"{best[False] / best[True]:.2f}x", identical]
        )  # fmt: skip
    print_table(
        ["sizes", "kept width", "step s, kept columns", "step s, every column", "speed-up",
         "bit-identical"],
        rows,
    )  # fmt: skip
    print(write_results(SCRIPT, results, args.tag))


if __name__ == "__main__":
    main()
