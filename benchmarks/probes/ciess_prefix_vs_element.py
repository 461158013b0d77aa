"""Is PEP's lead over CIESS its allocation or its mask shape? PEP's row counts as prefix sizes.

CIESS's search space is one size per row, keeping a *prefix* of the row (Eq. 1-2). PEP and
MagPrune keep single weights anywhere in the row (element masks). Both spend the same budget,
but they can differ in two ways: how many values each row keeps (the allocation) and which ones
(the shape). This script separates the two. For each budget ``c`` it takes the element mask that
PEP (and MagPrune) chose on the warm start, counts the values each row keeps, and gives every
row that many leading dimensions instead: the best-informed allocation either pruner can offer,
in CIESS's search space, at exactly the same number of kept values.

If the prefix version of PEP's allocation stays far below PEP, no size policy can close the gap:
it comes from the mask shape, which the row-size search space cannot express.

Rows, each on test (and validation recall@20):

- ``pep``: PEP's element mask retrained (read from the run's ``rows.json``);
- ``pep_mask_only`` / ``magprune``: the element masks with no retraining;
- ``pep_counts_prefix_only`` / ``magprune_counts_prefix_only``: their row counts as prefix
  sizes, no retraining;
- ``pep_counts_prefix`` / ``magprune_counts_prefix``: the same sizes retrained from the warm
  start with the run's retraining config (the protocol of every row-size method);
- ``prefix_share``: the share of each element mask's kept values that lie inside its row's
  prefix of the same count (1.0: the element mask already is a prefix mask).

Writes ``results/ciess_prefix_vs_element.json`` (``--tag T``:
``results/ciess_prefix_vs_element--T.json``). Run from the repository root:

    python -m benchmarks.probes.ciess_prefix_vs_element runs/conv-base-prune --num-threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.evaluate import FullRankingEvaluator
from leanrec.models import Recommender
from leanrec.models.compress import set_entity_sizes
from leanrec.models.registry import model_from_checkpoint
from leanrec.search.embedding_size.baselines import apply_element_masks, magnitude_prune
from leanrec.search.embedding_size.retrain import retrain_with_sizes, test_metrics
from leanrec.train.bpr import TrainerConfig, evaluate_model
from leanrec.train.checkpoint import load_checkpoint

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")


def prefix_share(mask: torch.Tensor) -> float:
    """Share of a ``(N, d)`` element mask's kept values inside each row's prefix of its count."""
    counts = mask.sum(dim=1, keepdim=True)
    inside = torch.arange(mask.shape[1]).unsqueeze(0) < counts
    return float((mask & inside).sum()) / max(int(mask.sum()), 1)


def row_counts(masks: dict[str, torch.Tensor], roles: dict[str, str]) -> dict[str, np.ndarray]:
    """Kept values per row of the user and the item table."""
    return {roles[name]: m.sum(dim=1).numpy().astype(np.int64) for name, m in masks.items()}


def element_masks_of(model: Recommender) -> dict[str, torch.Tensor]:
    """``(N, d)`` masks of the non-zero values of each table (a pruned model's element mask)."""
    return {name: t.all().detach() != 0 for name, t in model.embedding_tables().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="an experiment run with warm_start.pt and pep_masks.pt")
    parser.add_argument("--data-dir", default=str(data_dir()))
    parser.add_argument("--num-threads", type=int, default=1)
    add_tag_argument(parser, "ciess_prefix_vs_element")
    args = parser.parse_args()
    torch.set_num_threads(args.num_threads)

    run = Path(args.run)
    config = json.loads((run / "config.json").read_text())
    search = config["search"]
    seed, max_dim = search["seed"], search["max_dim"]
    retrain_cfg = TrainerConfig.from_dict({**search["retrain"], "progress": False})
    split, _ = prepare_split(config["dataset"], config["protocol"], args.data_dir, seed)
    warm = model_from_checkpoint(load_checkpoint(run / "warm_start.pt"))
    warm.eval()
    warm_state = {k: v.clone() for k, v in warm.state_dict().items()}
    roles = warm.table_roles()
    pep = {float(k): v for k, v in load_checkpoint(run / "pep_masks.pt").items()}
    stored = json.loads((run / "rows.json").read_text())
    valid_eval = FullRankingEvaluator(
        split.valid, exclude=[split.train], ks=[20], metrics=["recall"]
    )

    def scored(model: Recommender) -> dict[str, float]:
        row = dict(test_metrics(model, split))
        row["valid_recall@20"] = evaluate_model(model, valid_eval).mean["recall@20"]
        return row

    results: dict[str, float | str] = {}
    table = []
    for target in search["target_sparsities"]:
        tag = f"c{round(target * 100)}"
        rows: dict[str, dict[str, float]] = {}
        for r in stored:
            if r["method"] == "pep" and abs(r["target_sparsity"] - target) < 1e-9:
                rows["pep"] = {m: r[f"test_{m}"] for m in METRICS}
                rows["pep"]["valid_recall@20"] = r["valid"]["recall@20"]
        element = {
            "pep": pep[target],
            "magprune": element_masks_of(magnitude_prune(warm, target)),
        }
        for name, masks in element.items():
            results[f"{tag}_{name}_prefix_share"] = float(
                np.mean([prefix_share(m) for m in masks.values()])
            )
            only = apply_element_masks(copy.deepcopy(warm), masks)
            only.eval()
            rows[f"{name}_mask_only" if name == "pep" else name] = scored(only)
            counts = row_counts(masks, roles)
            prefix = copy.deepcopy(warm)
            set_entity_sizes(prefix, counts["user"], counts["item"])
            prefix.eval()
            rows[f"{name}_counts_prefix_only"] = scored(prefix)
            print(f"{tag} {name}: retraining its row counts as prefix sizes", flush=True)
            retrained = retrain_with_sizes(
                split,
                config["model"],
                config["model_options"],
                max_dim,
                counts["user"],
                counts["item"],
                retrain_cfg,
                seed,
                warm_state=warm_state,
            )
            assert retrained.test is not None  # evaluate_test is left at True
            rows[f"{name}_counts_prefix"] = {
                **retrained.test,
                "valid_recall@20": retrained.valid["recall@20"],
            }
            results[f"{tag}_{name}_kept_values"] = int(sum(int(m.sum()) for m in masks.values()))
            results[f"{tag}_{name}_prefix_kept_values"] = int(
                counts["user"].sum() + counts["item"].sum()
            )
        for method, row in rows.items():
            for metric, value in row.items():
                results[f"{tag}_{method}_{metric}"] = float(value)
            table.append(
                [f"{round(target * 100)}%", method]
                + [f"{row[m]:.4f}" for m in METRICS]
                + [f"{row['valid_recall@20']:.4f}"]
            )
        for name in element:
            print(f"{tag} {name}: prefix share {results[f'{tag}_{name}_prefix_share']:.3f}")
    results["run"] = str(run)
    print_table(["c", "method", *METRICS, "valid R@20"], table)
    print(f"results: {write_results('ciess_prefix_vs_element', results, args.tag)}")


if __name__ == "__main__":
    main()
