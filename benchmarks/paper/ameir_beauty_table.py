"""AMEIR on Beauty, next-item retrieval: the paper's Table 2 rows and the checks of its goal.

Reads the ``rows.json`` of one or more ``leanrec experiment architecture --dataset beauty`` output
directories (e.g. one per seed, run in parallel), prints mean ± std over seeds of test HR@5 /
NDCG@5 (100 uniform negatives), the popularity-negative and full-ranking figures, parameters,
speed and search cost, checks the goal (AMEIR at HR@5 >= 0.33 and NDCG@5 >= 0.25, above
GRU4Rec and SASRec) and writes ``results/ameir_beauty_table.json`` (``--tag T``:
``results/ameir_beauty_table--T.json``). Run from the repository root:

    python -m benchmarks.paper.ameir_beauty_table runs/architecture-beauty-s0 \\
        runs/architecture-beauty-s1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import add_tag_argument, print_table, write_results

PAPER = {"gru4rec": "0.300 / 0.215 (GRU4Rec+)", "ameir": "0.341 / 0.257 (AMEIR-A)"}
TARGET_HIT, TARGET_NDCG = 0.33, 0.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="experiment output directories")
    add_tag_argument(parser, "ameir_beauty_table")
    args = parser.parse_args()
    rows: dict[tuple[str, int], dict] = {}
    for run in args.runs:
        path = Path(run) / "rows.json"
        if not path.is_file():
            raise SystemExit(f"no rows.json in {run}")
        for row in json.loads(path.read_text()):
            rows.setdefault((row["method"], row["seed"]), row)
    if not rows:
        raise SystemExit("no rows in " + ", ".join(args.runs))
    methods = list(dict.fromkeys(method for method, _ in rows))
    results: dict[str, float | int | str | bool] = {"runs": ",".join(args.runs)}
    table = []
    means: dict[str, dict[str, float]] = {}
    for method in methods:
        found = [rows[key] for key in sorted(rows) if key[0] == method]
        stats = {}
        for metric in (
            "test_hit@5",
            "test_ndcg@5",
            "test_other_hit@5",
            "test_other_ndcg@5",
            "test_full_hit@10",
            "valid_ndcg@5",
            "parameters",
            "inference_users_per_second",
            "search_seconds",
            "train_seconds",
        ):
            values = np.array([r[metric] for r in found], dtype=float)
            stats[metric] = float(values.mean())
            results[f"{method}_{metric}_mean"] = float(values.mean())
            results[f"{method}_{metric}_std"] = float(values.std())
        for r in found:
            results[f"{method}_seed{r['seed']}_test_ndcg@5"] = float(r["test_ndcg@5"])
            if "architecture" in r:
                results[f"{method}_seed{r['seed']}_blocks"] = " | ".join(
                    f"{b['norm']}/{b['layer']}/{b['activation']}"
                    for b in r["architecture"]["blocks"]
                )
        results[f"{method}_seeds"] = len(found)
        means[method] = stats

        def cell(metric: str, found: list[dict] = found) -> str:
            values = np.array([r[metric] for r in found], dtype=float)
            return f"{values.mean():.4f} ± {values.std():.4f}"

        table.append(
            [
                method,
                len(found),
                cell("test_hit@5"),
                cell("test_ndcg@5"),
                cell("test_other_hit@5"),
                cell("test_other_ndcg@5"),
                cell("test_full_hit@10"),
                f"{stats['parameters']:,.0f}",
                f"{stats['inference_users_per_second']:,.0f}",
                f"{(stats['search_seconds'] + stats['train_seconds']) / 3600:.3f}",
                PAPER.get(method, "-"),
            ]
        )
    print_table(
        [
            "model",
            "seeds",
            "HR@5 (uniform)",
            "NDCG@5 (uniform)",
            "HR@5 (popularity)",
            "NDCG@5 (popularity)",
            "full HR@10",
            "parameters",
            "users/s",
            "CPU-h (search + train)",
            "paper HR@5 / NDCG@5",
        ],
        table,
    )
    checks = []
    if "ameir" in means:
        ours = means["ameir"]
        checks.append(
            (
                f"AMEIR HR@5 >= {TARGET_HIT}",
                f"{ours['test_hit@5']:.4f}",
                ours["test_hit@5"] >= TARGET_HIT,
            )
        )
        checks.append(
            (
                f"AMEIR NDCG@5 >= {TARGET_NDCG}",
                f"{ours['test_ndcg@5']:.4f}",
                ours["test_ndcg@5"] >= TARGET_NDCG,
            )
        )
        for rival in ("gru4rec", "sasrec"):
            if rival in means:
                theirs = means[rival]
                checks.append(
                    (
                        f"AMEIR above {rival} (HR@5 and NDCG@5)",
                        f"{ours['test_hit@5']:.4f} / {ours['test_ndcg@5']:.4f} vs "
                        f"{theirs['test_hit@5']:.4f} / {theirs['test_ndcg@5']:.4f}",
                        ours["test_hit@5"] > theirs["test_hit@5"]
                        and ours["test_ndcg@5"] > theirs["test_ndcg@5"],
                    )
                )
    print()
    print_table(["goal", "measured", "met"], checks)
    for name, _, met in checks:
        results[f"met: {name}"] = bool(met)
    print(f"\nwritten: {write_results('ameir_beauty_table', results, args.tag)}")


if __name__ == "__main__":
    main()
