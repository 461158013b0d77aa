"""CIESS exploration ablation (paper Table 2) from finished experiment runs.

Each variant is one ``leanrec experiment embedding-size --methods ciess`` run sharing the same
warm start (copy ``warm_start.pt`` into the new run directory first), e.g.::

    leanrec experiment embedding-size --dataset ml-1m --model lightgcn --methods ciess \
        --out runs/es-ml1m-lightgcn-norw --no-random-walk
    leanrec experiment embedding-size ... --out runs/es-ml1m-lightgcn-ou --noise ou

Reads their ``rows.json``, prints the four test metrics (and validation Recall@20) per target
sparsity and variant, writes ``results/<--name>.json`` (default ``ciess_ablation``).

    python benchmarks/ciess_ablation.py --variant "G+RW=runs/es-ml1m-lightgcn" \
        --variant "G, no RW=runs/es-ml1m-lightgcn-norw"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")


def last_episode(history_path: Path) -> dict[str, float]:
    """Mean reward, size and sparsity over the search's last episode (paper Fig. 3's end)."""
    history = json.loads(history_path.read_text())
    last = [h for h in history if h["episode"] == history[-1]["episode"]]
    return {
        key: sum(h[key] for h in last) / len(last)
        for key in ("mean_reward", "user_mean_size", "item_mean_size", "sparsity")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variant",
        action="append",
        required=True,
        help="label=run directory, optionally @method for a baseline row (default @ciess)",
    )
    parser.add_argument(
        "--name", default="ciess_ablation", help="results/<name>.json (default ciess_ablation)"
    )
    args = parser.parse_args()
    table = []
    results: dict[str, dict[str, dict[str, float]]] = {}
    for spec in args.variant:
        label, _, run_spec = spec.partition("=")
        run, _, method = run_spec.partition("@")
        method = method or "ciess"
        rows = json.loads((Path(run) / "rows.json").read_text())
        config = json.loads((Path(run) / "config.json").read_text())["search"]
        searched = method == "ciess"
        results[label] = {}
        if searched:
            results[label]["search"] = last_episode(Path(run) / "search_history.json")
        for row in rows:
            if row["method"] != method:
                continue
            target = f"c{round(row['target_sparsity'] * 100)}"
            valid = row.get("valid", {}).get("recall@20", float("nan"))
            results[label][target] = {
                "sparsity": row["sparsity"],
                **{m: row[f"test_{m}"] for m in METRICS},
                "valid_recall@20": valid,
            }
            table.append(
                [
                    target,
                    label,
                    config["noise"] if searched else "—",
                    ("yes" if config["random_walk"] else "no") if searched else "—",
                    row["sparsity"],
                    *(row[f"test_{m}"] for m in METRICS),
                    valid,
                ]
            )
    table.sort(key=lambda r: (r[0], r[1]))
    searches = [[label, *targets["search"].values()] for label, targets in results.items()
                if "search" in targets]  # fmt: skip
    if searches:
        print_table(["variant", "last-episode reward", "users d", "items d", "sparsity"], searches)
    header = ["c", "variant", "noise", "random walk", "sparsity", "R@5", "R@20", "N@5", "N@20"]
    print_table([*header, "valid R@20"], table)
    flat = {
        f"{label}|{target}|{metric}": value
        for label, targets in results.items()
        for target, metrics in targets.items()
        for metric, value in metrics.items()
    }
    write_results(args.name, flat)


if __name__ == "__main__":
    main()
