"""CIESS Table 1 from one or more ``leanrec experiment embedding-size`` run directories.

Runs that share a warm start (``warm_start.pt`` copied) can split the methods between them and
run in parallel. This script puts their rows together. When several runs hold the same method
and target, it keeps the row with the best **validation** Recall@20, never the test one. That is
how ``--budget_projection both`` chooses between the two projections of a CIESS mask in a single
run. It prints the markdown table, says which requirement of issue 3 each comparison meets, and
writes ``results/ciess_table.json`` (``--name`` for another file).

    python benchmarks/ciess_table.py runs/es-ml1m-lightgcn runs/es-ml1m-lightgcn-b \
        runs/es-ml1m-lightgcn-role
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results
from leanrec.search.embedding_size.experiment import markdown_table

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
PAPER = {  # CIESS paper, Table 1, LightGCN on ML-1M: (Recall@20, NDCG@20)
    0.8: {"ciess": (0.2436, 0.4257), "su": (0.2248, 0.3969)},
    0.9: {"ciess": (0.2248, 0.4023)},
    0.95: {"ciess": (0.2009, 0.3664)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--name", default="ciess_table", help="results/<name>.json")
    args = parser.parse_args()
    chosen: dict[tuple[str, float], dict] = {}
    for run in args.runs:
        for row in json.loads((Path(run) / "rows.json").read_text()):
            row = dict(row, run=run)
            key = (row["method"], float(row["target_sparsity"]))
            best = chosen.get(key)
            score = row.get("valid", {}).get("recall@20", -1.0)
            if best is None or score > best.get("valid", {}).get("recall@20", -1.0):
                chosen[key] = row
    rows = sorted(chosen.values(), key=lambda r: (r["target_sparsity"], r["method"]))
    targets = tuple(sorted({r["target_sparsity"] for r in rows if r["method"] != "full"}))
    print(markdown_table(rows, targets))
    verdicts = {}
    for target in targets:
        ours = chosen.get(("ciess", target))
        if ours is None:
            continue
        wins = {}
        for (method, c), row in chosen.items():
            if c != target or method in ("ciess", "full"):
                continue
            won = [m for m in METRICS if ours[f"test_{m}"] > row[f"test_{m}"]]
            wins[method] = won
            print(f"c = {target:.0%}: CIESS beats {method} on {len(won)}/4 ({', '.join(won)})")
        paper = PAPER.get(target, {}).get("ciess")
        gap = None
        if paper:
            gap = (ours["test_recall@20"] / paper[0] - 1, ours["test_ndcg@20"] / paper[1] - 1)
            print(f"c = {target:.0%}: CIESS vs paper R@20 {gap[0]:+.1%}, N@20 {gap[1]:+.1%}")
        verdicts[f"c{round(target * 100)}"] = {
            "ciess_run": ours["run"],
            "wins_by_method": wins,
            "beats_all_on_3_of_4": all(len(w) >= 3 for w in wins.values()),
            "vs_paper_recall20_ndcg20": gap,
        }
    flat: dict[str, object] = {"runs": ",".join(args.runs)}
    for row in rows:
        prefix = f"c{round(row['target_sparsity'] * 100)}_{row['method']}"
        flat[f"{prefix}_sparsity"] = row["sparsity"]
        for metric in METRICS:
            flat[f"{prefix}_test_{metric}"] = row[f"test_{metric}"]
        flat[f"{prefix}_valid_recall@20"] = row.get("valid", {}).get("recall@20")
        flat[f"{prefix}_run"] = row["run"]
    for tag, verdict in verdicts.items():
        flat[f"{tag}_beats_all_on_3_of_4"] = verdict["beats_all_on_3_of_4"]
        for method, won in verdict["wins_by_method"].items():
            flat[f"{tag}_wins_vs_{method}"] = len(won)
        if verdict["vs_paper_recall20_ndcg20"]:
            flat[f"{tag}_vs_paper_recall@20"] = verdict["vs_paper_recall20_ndcg20"][0]
            flat[f"{tag}_vs_paper_ndcg@20"] = verdict["vs_paper_recall20_ndcg20"][1]
    write_results(args.name, flat)


if __name__ == "__main__":
    main()
