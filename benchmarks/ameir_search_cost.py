"""AMEIR search cost against one DeepFM training to convergence, from one experiment run.

Both figures come from the same ``leanrec experiment architecture`` run (same machine, same
data, same thread count), per seed: the wall time of AMEIR's three steps (one-shot training and
child scoring; the derived model's retraining reported apart) and DeepFM's training time until
early stopping. The issue's goal is a ratio <= 3.

    python benchmarks/ameir_search_cost.py runs/architecture-ml-1m-ctr
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import print_table, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="output directory of leanrec experiment architecture")
    parser.add_argument("--baseline", default="deepfm")
    args = parser.parse_args()
    rows = json.loads((Path(args.run) / "rows.json").read_text())
    by_key = {(r["method"], r["seed"]): r for r in rows}
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
        raise SystemExit(f"no seed has both an 'ameir' and a '{args.baseline}' row in {args.run}")
    print_table(
        ["seed", "AMEIR search s", "AMEIR retrain s", f"{args.baseline} train s", "ratio"], table
    )
    results["mean_search_over_baseline"] = sum(r[-1] for r in table) / len(table)
    results["goal_ratio_at_most"] = 3.0
    results["run"] = args.run
    print(f"written: {write_results('ameir_search_cost', results)}")


if __name__ == "__main__":
    main()
