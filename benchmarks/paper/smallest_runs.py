"""The smallest run of each policy's experiment: one thread, fixed seed, about two minutes in all.

Each line below is a documented ``leanrec experiment`` command cut to its smallest useful size
(few episodes, one seed, one K, tiny one-shot budgets). Every run is deterministic, so its test
figures are a fingerprint of the code: a refactor that should not change behaviour must leave
``results/smallest_runs.json`` unchanged (``git diff`` shows any figure that moved). The peer
of each figure is the baseline of the same table in the same run (SU and MagPrune for CIESS,
Random and Influence for DiPS, DNN for AMEIR).

Run from the repository root (needs ``../shared/data`` or ``LEANREC_DATA``):

    python -m benchmarks.paper.smallest_runs [--out runs/smallest]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.cli import main as leanrec

SCRIPT = "smallest_runs"

COMMANDS: dict[str, list[str]] = {
    "embedding-size": [
        "experiment",
        "embedding-size",
        "--dataset",
        "ml-100k",
        "--model",
        "mf",
        "--methods",
        "ciess",
        "su",
        "magprune",
        "--seed",
        "0",
        "--episodes",
        "2",
        "--iterations",
        "2",
        "--updates_per_iteration",
        "5",
        "--rl_batch_size",
        "64",
        "--pretrain-max_epochs",
        "6",
        "--retrain-max_epochs",
        "4",
        "--top_masks",
        "1",
        "--num_threads",
        "1",
    ],
    "sketch": [
        "experiment",
        "sketch",
        "--dataset",
        "ml-100k",
        "--methods",
        "random",
        "influence",
        "dips1",
        "--sketch-sizes",
        "2",
        "--update-periods",
        "1",
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--num_threads",
        "1",
    ],
    "architecture": [
        "experiment",
        "architecture",
        "--dataset",
        "ml-1m-ctr",
        "--seeds",
        "0",
        "--baselines",
        "dnn",
        "--methods",
        "ameir",
        "--baseline_epochs",
        "1",
        "--supernet_epochs",
        "0.05",
        "--sampled_children",
        "6",
        "--top_children",
        "2",
        "--evolution_cycles",
        "1",
        "--keep_per_cycle",
        "5",
        "--interactions",
        "2",
        "--retrain_epochs",
        "1",
        "--validation_subset",
        "2048",
        "--num_threads",
        "1",
    ],
}
"""The smallest experiment of each policy, as ``leanrec`` command-line arguments."""

ROW_KEYS = {
    "embedding-size": ("method", "target_sparsity"),
    "sketch": ("method", "K", "tau", "seed"),
    "architecture": ("method", "seed"),
}
"""The fields that name a row of each experiment's ``rows.json``."""


def test_figures(policy: str, row: dict[str, Any]) -> dict[str, float]:
    """The test figures of one row, flat: ``test_*`` fields, or the ``test`` dict (sketch)."""
    if isinstance(row.get("test"), dict):
        return {f"test_{k}": float(v) for k, v in row["test"].items()}
    figures = {k: float(v) for k, v in row.items() if k.startswith("test_")}
    if policy == "embedding-size":
        figures["sparsity"] = float(row["sparsity"])
    if policy == "architecture":
        figures["parameters"] = float(row["parameters"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/smallest", help="parent of the run directories")
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    os.environ.setdefault("LEANREC_PROGRESS", "0")
    results: dict[str, Any] = {}
    table = []
    for policy, command in COMMANDS.items():
        out = Path(args.out) / policy
        status = leanrec([*command, "--data-dir", str(data_dir()), "--out", str(out)])
        if status != 0:
            raise SystemExit(f"{policy}: leanrec exited with {status}")
        for row in json.loads((out / "rows.json").read_text()):
            name = "/".join(str(row[k]) for k in ROW_KEYS[policy])
            for figure, value in test_figures(policy, row).items():
                results[f"{policy}:{name}:{figure}"] = value
                table.append([policy, name, figure, value])
    print_table(["policy", "row", "figure", "value"], table)
    print(write_results(SCRIPT, results, args.tag))


if __name__ == "__main__":
    main()
