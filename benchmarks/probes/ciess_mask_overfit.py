"""Do CIESS's searched sizes fit the validation split? Masks on the warm start, no retraining.

The search rewards every size with its validation quality (Eq. 7-9), so its masks may fit the
validation split rather than the data. This script takes a finished
``leanrec experiment embedding-size`` run, applies each target's CIESS sizes and the uniform
sizes of SU (the peer, same budget) to the run's warm start, without any retraining, and
reports Recall@20 and NDCG@20 on validation and on test. If CIESS is ahead of SU on
validation but not on test, the search itself fits the split it reads.

Writes ``results/ciess_mask_overfit.json`` (``--tag T``: ``results/ciess_mask_overfit--T.json``).
Run from the repository root:

    python -m benchmarks.probes.ciess_mask_overfit runs/es-ml1m-lightgcn-hits \\
        --data-dir ../shared/data [--tag converged]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, print_table, write_results
from leanrec.data.interactions import Split
from leanrec.data.presets import prepare_split
from leanrec.evaluate import FullRankingEvaluator
from leanrec.models.base import Recommender
from leanrec.models.compress import set_entity_sizes
from leanrec.models.registry import model_from_checkpoint
from leanrec.search.embedding_size.baselines import uniform_sizes
from leanrec.train.bpr import evaluate_model
from leanrec.train.checkpoint import load_checkpoint


def finished_run(run: Path, data_dir: str | None) -> tuple[dict[str, Any], Split, Recommender]:
    """A finished embedding-size run: its search config, its split and its warm start."""
    config = json.loads((run / "config.json").read_text())
    search = config["search"]
    split, _ = prepare_split(config["dataset"], config["protocol"], data_dir, search["seed"])
    model = model_from_checkpoint(load_checkpoint(run / "warm_start.pt"))
    return config, split, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a finished embedding-size experiment directory")
    parser.add_argument("--data-dir", default=None)
    add_tag_argument(parser, "ciess_mask_overfit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run)
    config, split, model = finished_run(run, args.data_dir)
    search = config["search"]
    model.eval()
    ks = [20]
    valid = FullRankingEvaluator(split.valid, exclude=[split.train], ks=ks)
    test = FullRankingEvaluator(split.test, exclude=[split.train, split.valid], ks=ks)
    n_users, n_items = split.train.n_users, split.train.n_items
    results: dict[str, float | str] = {"run": str(run)}
    rows = []
    for target in search["target_sparsities"]:
        label = f"c{round(100 * target)}"
        sized = np.load(run / f"ciess_{label}_sizes.npz")
        candidates = {
            "ciess": (sized["users"], sized["items"]),
            "su": uniform_sizes(n_users, n_items, search["max_dim"], target),
        }
        for method, (users, items) in candidates.items():
            set_entity_sizes(model, np.asarray(users), np.asarray(items))
            scores = {}
            for part, evaluator in (("valid", valid), ("test", test)):
                result = evaluate_model(model, evaluator)
                for metric in ("recall@20", "ndcg@20"):
                    scores[f"{part}_{metric}"] = float(result[metric])
            results.update({f"{label}_{method}_{k}": v for k, v in scores.items()})
            rows.append(
                [
                    f"{target:.0%}",
                    method,
                    scores["valid_recall@20"],
                    scores["test_recall@20"],
                    scores["valid_ndcg@20"],
                    scores["test_ndcg@20"],
                ]
            )
    print("sizes applied to the warm start, no retraining")
    print_table(["c", "method", "valid R@20", "test R@20", "valid N@20", "test N@20"], rows)
    print(f"written: {write_results('ciess_mask_overfit', results, args.tag)}")


if __name__ == "__main__":
    main()
