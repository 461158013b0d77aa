"""What a packed model costs: stored, in its file, and resident while it serves.

A packed table stores ``sum(d_n)`` floats, but a served model holds more: the training items it
excludes, a graph model's normalised adjacency, and the final embeddings a dot-product model
caches for scoring, which for LightGCN are ``(|U| + |I|, d_max)`` floats wide whatever the
packed sizes (propagation mixes every neighbour's vector). Bytes depend on the sizes and the
shapes only, not on the trained values, so this measures each model at uniform sizes (SU) for
every budget, untrained, served from its ``.safetensors`` file: ``stored`` (the packed tables),
``file``, ``at rest`` (every tensor the loaded model holds) and ``while scoring`` (with the
cache of final embeddings ``score_all`` builds). Writes ``results/ciess_serving[--TAG].json``.
Run from the repository root::

    python -m benchmarks.paper.ciess_serving --dataset ml-1m --models lightgcn mf
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.compress import set_entity_sizes
from leanrec.search.embedding_size.baselines import uniform_sizes
from leanrec.search.embedding_size.memory import packed_memory, serving_bytes
from leanrec.search.embedding_size.retrain import build_masked_model

SCRIPT = "ciess_serving"
KEYS = ("stored_bytes", "file_bytes", "serving_at_rest_bytes", "serving_while_scoring_bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--models", nargs="+", default=["lightgcn", "mf"])
    parser.add_argument("--targets", nargs="+", type=float, default=[0.8, 0.9, 0.95])
    parser.add_argument("--max-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=2024)
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    os.environ.setdefault("LEANREC_PROGRESS", "0")
    torch.set_num_threads(1)
    split, _ = prepare_split(args.dataset, "ciess", data_dir(), args.seed)
    train = split.train
    results: dict[str, Any] = {
        "dataset": args.dataset,
        "users": train.n_users,
        "items": train.n_items,
        "max_dim": args.max_dim,
        "dense_table_bytes": (train.n_users + train.n_items) * args.max_dim * 4,
    }
    rows = []
    for name in args.models:
        dense = build_masked_model(split, name, {}, args.max_dim, args.seed)
        with tempfile.TemporaryDirectory() as scratch:
            path = dense.save(Path(scratch) / "dense.pt")
            results[f"{name}:dense:file_bytes"] = path.stat().st_size
        dense_serving = serving_bytes(dense)
        results[f"{name}:dense:serving_at_rest_bytes"] = dense_serving["at_rest"]
        results[f"{name}:dense:serving_while_scoring_bytes"] = dense_serving["while_scoring"]
        for target in args.targets:
            model = build_masked_model(split, name, {}, args.max_dim, args.seed)
            users, items = uniform_sizes(train.n_users, train.n_items, args.max_dim, target)
            set_entity_sizes(model, users, items)
            memory = packed_memory(model, train.user_vocab.raw_ids, train.item_vocab.raw_ids)
            for key, value in memory.items():
                results[f"{name}:c{round(target * 100)}:{key}"] = value
            rows.append([name, f"{target:.0%}", *(f"{memory[k]:,}" for k in KEYS)])
        at_rest, scoring = dense_serving["at_rest"], dense_serving["while_scoring"]
        dense_file = results[f"{name}:dense:file_bytes"]
        rows.append([name, "dense", "—", f"{dense_file:,}", f"{at_rest:,}", f"{scoring:,}"])
    print_table(["model", "c", *KEYS], rows)
    print(write_results(SCRIPT, results, args.tag))


if __name__ == "__main__":
    main()
