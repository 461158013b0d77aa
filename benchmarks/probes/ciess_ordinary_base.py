"""CIESS against PEP and MagPrune when the pruners start from an ordinary full-size LightGCN.

The table of ``ciess_table.py`` (``results/ciess_converged_all.json``) lets MagPrune and PEP
prune CIESS's own warm start, which is trained with prefix dropout so that every truncation is
meaningful: its large values sit in the leading dimensions, which helps magnitude pruning.
The paper's pruning baselines pruned ordinary models. This script reads a run made with
``--pruning-base ordinary`` (a full-size model trained without prefix dropout, same pretraining
config, same split) and compares its MagPrune and PEP rows with the stored CIESS rows and with
the stored warm-start pruner rows, at equal non-zero sparsity (80 / 90 / 95%) and at equal bytes
(element masks at 84 / 92 / 96% take the bytes of row masks at 80 / 90 / 95%; see
``benchmarks.paper.ciess_table`` and :mod:`leanrec.models.memory` for the byte count).

Writes ``results/ciess_ordinary_base.json`` (``--tag T``: ``results/ciess_ordinary_base--T.json``).
Run from the repository root:

    # the runs: docs/history/embedding-size.md, "Paper protocol retraining"
    python -m benchmarks.probes.ciess_ordinary_base runs/es-ml1m-lightgcn-ordinary \\
        runs/es-ml1m-lightgcn-ordinary-pep
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import add_tag_argument, print_table, results_path, write_results

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
EQUAL_BYTES = {80: 84, 90: 92, 95: 96}
"""Row-mask target -> the element-mask non-zero sparsity that costs the same bytes."""


def stored_row(stored: dict, tag: int, method: str) -> dict[str, float] | None:
    prefix = f"c{tag}_{method}_"
    if f"{prefix}test_recall@20" not in stored:
        return None
    row = {m: stored[f"{prefix}test_{m}"] for m in METRICS}
    row["sparsity"] = stored[f"{prefix}sparsity"]
    return row


def run_row(rows: list[dict], tag: int, method: str) -> dict[str, float] | None:
    for r in rows:
        if r["method"] == method and round(r["target_sparsity"] * 100) == tag:
            row = {m: r[f"test_{m}"] for m in METRICS}
            row["sparsity"] = r["sparsity"]
            row["valid_recall@20"] = r.get("valid", {}).get("recall@20", float("nan"))
            return row
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories made with --pruning-base ordinary")
    parser.add_argument(
        "--stored",
        default=str(results_path("ciess_table", "converged-all")),
        help="the ciess_table results holding CIESS and the warm-start pruners",
    )
    add_tag_argument(parser, "ciess_ordinary_base")
    args = parser.parse_args()
    stored = json.loads(Path(args.stored).read_text())
    rows = [r for run in args.runs for r in json.loads((Path(run) / "rows.json").read_text())]
    ordinary_full = run_row(rows, 0, "full_ordinary")
    warm_full = stored_row(stored, 0, "full")
    assert ordinary_full is not None and warm_full is not None

    flat: dict[str, object] = {"runs": ",".join(args.runs), "stored": Path(args.stored).name}
    table = [
        ["—", "full (warm start, prefix dropout)", warm_full["sparsity"]]
        + [warm_full[m] for m in METRICS],
        ["—", "full (ordinary)", ordinary_full["sparsity"]] + [ordinary_full[m] for m in METRICS],
    ]
    for m in METRICS:
        flat[f"full_warm_start_test_{m}"] = warm_full[m]
        flat[f"full_ordinary_test_{m}"] = ordinary_full[m]
    for tag, byte_tag in EQUAL_BYTES.items():
        ciess = stored_row(stored, tag, "ciess")
        assert ciess is not None, f"no CIESS row at c{tag} in {args.stored}"
        table.append([f"{tag}%", "ciess", ciess["sparsity"]] + [ciess[m] for m in METRICS])
        ordinary_wins = []  # CIESS's wins against each pruner on the ordinary model, same c
        for method in ("pep", "magprune"):
            variants = [
                (f"{method}, warm start", stored_row(stored, tag, method)),
                (f"{method}, ordinary", run_row(rows, tag, method)),
                (f"{method}, ordinary, equal bytes", run_row(rows, byte_tag, method)),
            ]
            for label, row in variants:
                if row is None:
                    continue
                wins = [m for m in METRICS if ciess[m] > row[m]]
                table.append(
                    [f"{tag}%", f"{label} (CIESS wins {len(wins)}/4)", row["sparsity"]]
                    + [row[m] for m in METRICS]
                )
                key = f"c{tag}_{label.replace(', ', '_').replace(' ', '_')}"
                flat[f"{key}_ciess_wins"] = len(wins)
                if label == f"{method}, ordinary":
                    ordinary_wins.append(len(wins))
                flat[f"{key}_sparsity"] = row["sparsity"]
                for m in METRICS:
                    flat[f"{key}_test_{m}"] = row[m]
                if "valid_recall@20" in row:
                    flat[f"{key}_valid_recall@20"] = row["valid_recall@20"]
        for m in METRICS:
            flat[f"c{tag}_ciess_test_{m}"] = ciess[m]
        flat[f"c{tag}_ciess_beats_ordinary_pruners_on_3_of_4"] = all(w >= 3 for w in ordinary_wins)
    print_table(["c", "method", "non-zero sparsity", "R@5", "R@20", "N@5", "N@20"], table)
    path = write_results("ciess_ordinary_base", flat, args.tag)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
