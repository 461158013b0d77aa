"""AMEIR Table 1 / Table 4 rows from a ``leanrec experiment architecture`` run, with its goal
checked (AMEIR >= best hand-designed baseline + 0.001 test AUC, mean over seeds, with no more
parameters; better than both NAS baselines).

Writes ``results/ameir_table.json``; ``--tag T`` writes ``results/ameir_table--T.json`` (e.g.
``--tag fm-5seeds``). Run from the repository root:

    python -m benchmarks.paper.ameir_table runs/architecture-ml-1m-ctr [--tag fm-5seeds]

Rows of one table may come from several directories run in parallel (each resumed from a copy
of the first one's ``rows.json``): give them all; a (method, seed) row is taken from the first
directory that has it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import add_tag_argument, print_table, write_results

HAND_DESIGNED = ("dnn", "wide_deep", "deepfm", "xdeepfm", "din")
NAS = ("ameir", "one_shot", "random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "runs", nargs="+", help="output directories of leanrec experiment architecture"
    )
    add_tag_argument(parser, "ameir_table")
    args = parser.parse_args()
    merged: dict[tuple[str, int], dict] = {}
    for run in args.runs:
        for row in json.loads((Path(run) / "rows.json").read_text()):
            merged.setdefault((row["method"], row["seed"]), row)
    rows = list(merged.values())
    methods = [m for m in (*HAND_DESIGNED, *NAS) if any(r["method"] == m for r in rows)]
    results: dict[str, float | int | str | bool] = {"run": ",".join(args.runs)}
    table = []
    stats: dict[str, dict[str, float]] = {}
    for method in methods:
        found = [r for r in rows if r["method"] == method]
        entry = {}
        spread = {}
        for metric in (
            "valid_auc",
            "test_auc",
            "test_logloss",
            "parameters",
            "inference_samples_per_second",
            "search_seconds",
            "train_seconds",
        ):
            values = np.array([r[metric] for r in found], dtype=float)
            entry[metric] = float(values.mean())
            spread[metric] = float(values.std())
            results[f"{method}_{metric}_mean"] = float(values.mean())
            results[f"{method}_{metric}_std"] = float(values.std())
        results[f"{method}_seeds"] = len(found)
        per_seed = ("inference_samples_per_second", "search_seconds", "train_seconds")
        for metric in ("valid_auc", "test_auc", "parameters", *per_seed):
            by_seed = sorted((r["seed"], r[metric]) for r in found)
            results[f"{method}_{metric}_by_seed"] = json.dumps(dict(by_seed))
        stats[method] = entry
        table.append(
            [
                method,
                len(found),
                *(
                    f"{entry[m]:.4f} ± {spread[m]:.4f}"
                    for m in ("valid_auc", "test_auc", "test_logloss")
                ),
                int(entry["parameters"]),
                int(entry["inference_samples_per_second"]),
                entry["search_seconds"],
                entry["train_seconds"],
            ]
        )
    print_table(  # mean ± population std over the seeds
        [
            "model",
            "seeds",
            "valid AUC",
            "test AUC",
            "test log loss",
            "parameters",
            "samples/s",
            "search s",
            "train s",
        ],
        table,
    )
    baselines = [m for m in HAND_DESIGNED if m in stats]
    if "ameir" in stats and baselines:
        best = max(baselines, key=lambda m: stats[m]["valid_auc"])  # chosen on validation
        gain = stats["ameir"]["test_auc"] - stats[best]["test_auc"]
        results["best_baseline"] = best
        results["ameir_minus_best_baseline_test_auc"] = gain
        results["met: ameir >= best baseline + 0.001"] = bool(gain >= 0.001)
        results["met: ameir parameters <= best baseline"] = bool(
            stats["ameir"]["parameters"] <= stats[best]["parameters"]
        )
        print(
            f"\nbest hand-designed baseline (validation): {best}; AMEIR - {best} test AUC: "
            f"{gain:+.4f} (goal >= +0.001)"
        )
        for other in ("one_shot", "random"):
            if other in stats:
                better = stats["ameir"]["test_auc"] > stats[other]["test_auc"]
                results[f"met: ameir beats {other}"] = bool(better)
    print(f"written: {write_results('ameir_table', results, args.tag)}")


if __name__ == "__main__":
    main()
