"""AMEIR search cost against one DeepFM training to convergence, from one experiment run.

Both figures come from the same ``leanrec experiment architecture`` run (same machine, same
data, same thread count), per seed: the wall time of AMEIR's three steps (one-shot training and
child scoring; the derived model's retraining reported apart) and DeepFM's training time until
early stopping. The goal is a ratio <= 3.

Writes ``results/ameir_search_cost.json`` (``--tag T``: ``results/ameir_search_cost--T.json``).
Run from the repository root:

    python -m benchmarks.perf.ameir_search_cost runs/architecture-ml-1m-ctr [--tag keep-best]

Several directories (seeds run in parallel) are merged; a (method, seed) row is taken from the
first directory that has it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import add_tag_argument, print_table, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "runs", nargs="+", help="output directories of leanrec experiment architecture"
    )
    parser.add_argument("--baseline", default="deepfm")
    add_tag_argument(parser, "ameir_search_cost")
    args = parser.parse_args()
    by_key: dict[tuple[str, int], dict] = {}
    for run in args.runs:
        for row in json.loads((Path(run) / "rows.json").read_text()):
            by_key.setdefault((row["method"], row["seed"]), row)
    table, results = [], {}
    for (method, seed), row in sorted(by_key.items()):
        if method != "ameir" or (args.baseline, seed) not in by_key:
            continue
        base = by_key[(args.baseline, seed)]
        ratio = row["search_seconds"] / base["train_seconds"]
        table.append(
            [seed, row["search_seconds"], row["train_seconds"], base["train_seconds"], ratio]
        )
        results[f"seed{seed}_search_seconds"] = row["search_seconds"]
        results[f"seed{seed}_retrain_seconds"] = row["train_seconds"]
        results[f"seed{seed}_{args.baseline}_train_seconds"] = base["train_seconds"]
        results[f"seed{seed}_search_over_{args.baseline}"] = ratio
    if not table:
        raise SystemExit(f"no seed has both an 'ameir' and a '{args.baseline}' row in {args.runs}")
    print_table(
        ["seed", "AMEIR search s", "AMEIR retrain s", f"{args.baseline} train s", "ratio"], table
    )
    results["mean_search_over_baseline"] = sum(r[-1] for r in table) / len(table)
    results["goal_ratio_at_most"] = 3.0
    results["run"] = ",".join(args.runs)
    print(f"written: {write_results('ameir_search_cost', results, args.tag)}")


if __name__ == "__main__":
    main()
