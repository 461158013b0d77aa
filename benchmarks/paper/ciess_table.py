"""CIESS Table 1 from one or more ``leanrec experiment embedding-size`` run directories.

Runs that share a warm start (``warm_start.pt`` copied) can split the methods between them and
run in parallel. This script puts their rows together. When several runs hold the same method
and target, it keeps the row with the best **validation** Recall@20, never the test one. That is
how ``--budget_projection both`` chooses between the two projections of a CIESS mask in a single
run. PEP retrained from its initial values (``--pep-retrain_from init``) is its own row,
``pep_init``. It prints the markdown table, on how many of the four test metrics CIESS beats
each other method and its gap to the paper, and writes ``results/ciess_table.json`` (``--tag T``:
``results/ciess_table--T.json``).

It also prices every row in real bytes (:mod:`leanrec.models.memory`), since the table's sparsity
counts non-zeros: row-prefix masks (CIESS, SU, SR, popularity, ESAPN) store as the packed table,
``4 sum(d_n)`` bytes of values plus int32 offsets; element masks (PEP, MagPrune) are priced as
CSR with uint8 column indices (``d_max <= 256``), ``5`` bytes per kept weight plus the same int32
row pointers. So at the same non-zero sparsity an element mask takes about 1.25x the bytes of a
row mask. Run from the repository root:

    python -m benchmarks.paper.ciess_table runs/es-ml1m-lightgcn runs/es-ml1m-lightgcn-b \\
        runs/es-ml1m-lightgcn-role [--tag converged-all]

``--from-results FILE --from-methods su pep`` also reads rows this script wrote earlier (its flat
``results/ciess_table[--T].json``), for runs whose directories are gone; only the named methods
are taken, and they compete with the run directories' rows by validation Recall@20 like any other
row.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from benchmarks.common import add_tag_argument, write_results
from leanrec.models.memory import csr_mask_bytes, dense_table_bytes, prefix_mask_bytes
from leanrec.search.embedding_size.experiment import (
    ELEMENT_PRUNERS,
    REFERENCE_ROWS,
    markdown_table,
)

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
ELEMENT_MASKS = (*ELEMENT_PRUNERS, "pep_init")
"""Methods that prune single weights, not row suffixes: no packed export, CSR at best."""


def stored_bytes(row: dict, rows_total: int, max_dim: int) -> tuple[int, float]:
    """Bytes of the row's embedding tables (``rows_total`` = users + items rows) in their most
    compact exact format, and the ratio to the dense float32 ``d_max`` tables."""
    kept = round((1.0 - row["sparsity"]) * rows_total * max_dim)
    if row["method"] in ELEMENT_MASKS:
        total = csr_mask_bytes(kept, rows_total)
    else:
        total = prefix_mask_bytes(kept, rows_total)
    return total, total / dense_table_bytes(rows_total, max_dim)


PAPER = {  # CIESS paper, Table 1, LightGCN on ML-1M: (Recall@20, NDCG@20)
    0.8: {"ciess": (0.2436, 0.4257), "su": (0.2248, 0.3969)},
    0.9: {"ciess": (0.2248, 0.4023)},
    0.95: {"ciess": (0.2009, 0.3664)},
}


def rows_from_results(path: Path, methods: set[str]) -> list[dict]:
    """Rebuild the rows of ``methods`` from a flat results file this script wrote
    (keys ``c<percent>_<method>_<field>``); each row's ``run`` is the run it was read from then."""
    flat = json.loads(path.read_text())
    rows = []
    for key in flat:
        match = re.fullmatch(r"c(\d+)_(.+)_sparsity", key)
        if match is None or match.group(2) not in methods:
            continue
        prefix = key[: -len("sparsity")]
        row = {
            "method": match.group(2),
            "target_sparsity": int(match.group(1)) / 100,
            "sparsity": flat[key],
            "run": flat[prefix + "run"],
            **{f"test_{m}": flat[f"{prefix}test_{m}"] for m in METRICS},
        }
        if flat.get(prefix + "valid_recall@20") is not None:
            row["valid"] = {"recall@20": flat[prefix + "valid_recall@20"]}
        rows.append(row)
    if not rows:
        raise SystemExit(f"{path}: no rows of {sorted(methods)}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    add_tag_argument(parser, "ciess_table")
    parser.add_argument("--from-results", type=Path, help="a results JSON this script wrote")
    parser.add_argument("--from-methods", nargs="+", default=[], help="its methods to take")
    args = parser.parse_args()
    recorded = []
    if args.from_results is not None:
        recorded = rows_from_results(args.from_results, set(args.from_methods))
    candidates = [
        dict(row, run=run)
        for run in args.runs
        for row in json.loads((Path(run) / "rows.json").read_text())
    ]
    chosen: dict[tuple[str, float], dict] = {}
    for row in candidates + recorded:
        if row["method"] == "pep" and row.get("retrain_from") == "init":
            row["method"] = "pep_init"  # lottery-ticket retraining: its own row
        key = (row["method"], float(row["target_sparsity"]))
        best = chosen.get(key)
        score = row.get("valid", {}).get("recall@20", -1.0)
        if best is None or score > best.get("valid", {}).get("recall@20", -1.0):
            chosen[key] = row
    rows = sorted(chosen.values(), key=lambda r: (r["target_sparsity"], r["method"]))
    targets = tuple(
        sorted({r["target_sparsity"] for r in rows if r["method"] not in REFERENCE_ROWS})
    )
    print(markdown_table(rows, targets))
    max_dim = json.loads((Path(args.runs[0]) / "config.json").read_text())["search"]["max_dim"]
    print("\n| c | method | non-zero sparsity | stored bytes | vs dense |")
    print("|---|---|---|---|---|")
    # users + items rows, from any row that counts its kept weights: N d_max = kept / (1 - s)
    counted = next(
        r for r in rows if "embedding_parameters" in r and r["method"] not in REFERENCE_ROWS
    )
    rows_total = round(counted["embedding_parameters"] / (1.0 - counted["sparsity"]) / max_dim)
    for row in rows:
        if row["method"] in REFERENCE_ROWS:
            continue
        total, ratio = stored_bytes(row, rows_total, max_dim)
        row["stored_bytes"], row["stored_ratio"] = total, ratio
        print(
            f"| {row['target_sparsity']:.0%} | {row['method']} | {row['sparsity']:.2%} "
            f"| {total:,} | {ratio:.4f} |"
        )
    verdicts = {}
    for target in targets:
        ours = chosen.get(("ciess", target))
        if ours is None:
            continue
        wins = {}
        for (method, c), row in chosen.items():
            if c != target or method == "ciess" or method in REFERENCE_ROWS:
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
    if args.from_results is not None:
        flat["from_results"] = f"{args.from_results.name}: {' '.join(args.from_methods)}"
    for row in rows:
        prefix = f"c{round(row['target_sparsity'] * 100)}_{row['method']}"
        flat[f"{prefix}_sparsity"] = row["sparsity"]
        for metric in METRICS:
            flat[f"{prefix}_test_{metric}"] = row[f"test_{metric}"]
        flat[f"{prefix}_valid_recall@20"] = row.get("valid", {}).get("recall@20")
        flat[f"{prefix}_run"] = row["run"]
        if "stored_ratio" in row:
            flat[f"{prefix}_stored_bytes"] = row["stored_bytes"]
            flat[f"{prefix}_stored_ratio"] = row["stored_ratio"]
    for tag, verdict in verdicts.items():
        flat[f"{tag}_beats_all_on_3_of_4"] = verdict["beats_all_on_3_of_4"]
        for method, won in verdict["wins_by_method"].items():
            flat[f"{tag}_wins_vs_{method}"] = len(won)
        if verdict["vs_paper_recall20_ndcg20"]:
            flat[f"{tag}_vs_paper_recall@20"] = verdict["vs_paper_recall20_ndcg20"][0]
            flat[f"{tag}_vs_paper_ndcg@20"] = verdict["vs_paper_recall20_ndcg20"][1]
    write_results("ciess_table", flat, args.tag)


if __name__ == "__main__":
    main()
