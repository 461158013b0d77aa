"""What a packed model costs: stored, in its file, and resident while it serves.

A packed table stores ``sum(d_n)`` floats, but a served model holds more: the training items it
excludes, a graph model's normalised adjacency, and the final embeddings a dot-product model
caches for scoring, which for LightGCN are ``(|U| + |I|, d_max)`` floats wide whatever the
packed sizes (propagation mixes every neighbour's vector). Bytes depend on the sizes and the
shapes only, not on the trained values, so this measures each model at uniform sizes (SU) for
every budget, untrained, served from its ``.safetensors`` file: ``stored`` (the packed tables),
``file``, ``at rest`` (every tensor the loaded model holds) and ``while scoring`` (with the
cache of final embeddings ``score_all`` builds). A packed MF scores from its packed values and
caches nothing; its time to score every user (batches of 256, best of ``--repeats``, one
thread) and one user at a time (256 users) is taken against the masked model of the same
sizes with its cache built, in the same run, as is the number of users whose top-20 lists
agree. Writes ``results/ciess_serving[--TAG].json``. Run from the
repository root::

    python -m benchmarks.paper.ciess_serving --dataset ml-1m --models lightgcn mf
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.base import Recommender
from leanrec.models.compress import load_compressed, set_entity_sizes
from leanrec.search.embedding_size.baselines import uniform_sizes
from leanrec.search.embedding_size.memory import packed_memory, serving_bytes
from leanrec.search.embedding_size.retrain import build_masked_model

SCRIPT = "ciess_serving"
KEYS = ("stored_bytes", "file_bytes", "serving_at_rest_bytes", "serving_while_scoring_bytes")
BATCH = 256
ONE_BY_ONE = 256
"""Users scored one request at a time (a server's single-user requests)."""


def scoring_seconds(
    models: list[Recommender], users: torch.Tensor, batch: int, repeats: int
) -> list[float]:
    """Best of ``repeats`` seconds each model takes to score ``users`` in batches of ``batch``,
    as a server does: a model that caches builds its cache before the clock starts (the
    server computes it at start-up). The models take turns within each repeat, so a noisy
    machine slows them alike."""
    best = [math.inf] * len(models)
    batches = users.split(batch)
    for _ in range(repeats):
        for n, model in enumerate(models):
            model.eval()
            with torch.no_grad():
                model.score_all(batches[0])  # the cache, where the model keeps one
                began = time.perf_counter()
                for chunk in batches:
                    model.score_all(chunk)
            best[n] = min(best[n], time.perf_counter() - began)
            model.invalidate_cache()
    return best


def agreeing_users(a: Recommender, b: Recommender, n_users: int, k: int = 20) -> int:
    """Users whose top-``k`` lists (seen items excluded) are the same for ``a`` and ``b``."""
    users = torch.arange(n_users)
    return int((a.recommend(users, k)[0] == b.recommend(users, k)[0]).all(1).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--models", nargs="+", default=["lightgcn", "mf"])
    parser.add_argument("--targets", nargs="+", type=float, default=[0.8, 0.9, 0.95])
    parser.add_argument("--max-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeats", type=int, default=5)
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
            with tempfile.TemporaryDirectory() as scratch:
                path = Path(scratch) / "packed.safetensors"
                raw = (train.user_vocab.raw_ids, train.item_vocab.raw_ids)
                memory: dict[str, Any] = dict(packed_memory(model, *raw, path))
                served, _, _ = load_compressed(path)
            pair = [served, model]
            packed_time, masked_time = scoring_seconds(
                pair, torch.arange(train.n_users), BATCH, args.repeats
            )
            memory["scoring_seconds"] = packed_time
            memory["masked_scoring_seconds"] = masked_time
            memory["scoring_time_ratio"] = packed_time / masked_time
            one, one_masked = scoring_seconds(pair, torch.arange(ONE_BY_ONE), 1, args.repeats)
            memory["one_user_scoring_ms"] = one / ONE_BY_ONE * 1000
            memory["masked_one_user_scoring_ms"] = one_masked / ONE_BY_ONE * 1000
            memory["top20_equal_users"] = agreeing_users(served, model, train.n_users)
            for key, value in memory.items():
                results[f"{name}:c{round(target * 100)}:{key}"] = value
            rows.append(
                [name, f"{target:.0%}", *(f"{memory[k]:,}" for k in KEYS),
                 f"{memory['scoring_time_ratio']:.2f}x",
                 f"{memory['one_user_scoring_ms']:.3f} / "
                 f"{memory['masked_one_user_scoring_ms']:.3f}",
                 memory["top20_equal_users"]]
            )  # fmt: skip
        at_rest, scoring = dense_serving["at_rest"], dense_serving["while_scoring"]
        dense_file = results[f"{name}:dense:file_bytes"]
        rows.append(
            [name, "dense", "—", f"{dense_file:,}", f"{at_rest:,}", f"{scoring:,}", "", "", ""]
        )
    results["users_scored"] = train.n_users
    headers = ["model", "c", *KEYS, "scoring time packed / masked", "one user ms", "top-20 equal"]
    print_table(headers, rows)
    print(write_results(SCRIPT, results, args.tag))


if __name__ == "__main__":
    main()
