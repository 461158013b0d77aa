"""CIESS as its paper wrote it (preset ``paper``) beside leanrec's variant (preset ``leanrec``),
and the ablation that turns leanrec's additions off one at a time.

Each variant is one resumable ``leanrec experiment embedding-size`` run in ``<out>/<variant>``:

- ``paper``: ``--preset paper`` with CIESS, SU, SR, PEP and MagPrune (every mask retrained
  from scratch to convergence, the pruners on an ordinary model);
- ``leanrec``: ``--preset leanrec`` with the same methods (the warm-start protocol);
- ``without-<addition>``: ``--preset leanrec --without <addition>``, CIESS only. An addition
  that does not change the search (the screen, the rescaling, the projections, the retraining's
  start, epoch-0 validation) reuses the ``leanrec`` run's warm start and search, copied in.

``run`` runs one variant (two variants can run side by side, one per core); ``table`` reads the
run directories and writes ``results/ciess_presets[--TAG].json``: every row's test and
validation figures, its preset label, and for every compressed model its stored, file and
resident-at-serving bytes. Run from the repository root::

    python -m benchmarks.paper.ciess_presets run --variant paper --out runs/presets-ml100k \\
        --dataset ml-100k --model lightgcn
    python -m benchmarks.paper.ciess_presets run --variant leanrec --out runs/presets-ml100k ...
    python -m benchmarks.paper.ciess_presets run --variant without-screen --out runs/presets-ml100k
    python -m benchmarks.paper.ciess_presets table --out runs/presets-ml100k --tag ml100k

Options after ``--`` go to every ``leanrec experiment`` command (e.g. ``-- --episodes 10``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.cli import main as leanrec
from leanrec.search.embedding_size.config import LEANREC_ADDITIONS

SCRIPT = "ciess_presets"
METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
FULL_METHODS = ("ciess", "su", "sr", "pep", "magprune")
SEARCH_KEEPING = (
    "screen",
    "rescaling",
    "both_projections",
    "retrain_from_warm_start",
    "validate_initial",
)
"""Additions whose removal leaves the search as it was: their variants reuse its state."""
REUSED_FILES = ("warm_start.pt", "search_state.pt", "search_history.json", "timings.json")
ABLATED = tuple(name for name in LEANREC_ADDITIONS if name != "pruning_base")
"""The ablation's variants (``pruning_base`` changes the pruning baselines only: it is the
difference between the two presets' PEP and MagPrune rows)."""


def variant_command(variant: str, out: Path, args: argparse.Namespace) -> list[str]:
    """The ``leanrec`` arguments of one variant."""
    common = [
        "experiment", "embedding-size", "--dataset", args.dataset, "--model", args.model,
        "--out", str(out / variant), "--seed", str(args.seed), "--num_threads", "1",
        "--data-dir", str(data_dir()),
    ]  # fmt: skip
    if variant in ("paper", "leanrec"):
        return [*common, "--preset", variant, "--methods", *FULL_METHODS, *args.extra]
    addition = variant.removeprefix("without-")
    if addition not in ABLATED:
        raise SystemExit(f"unknown variant {variant!r}: paper, leanrec or without-<{ABLATED}>")
    return [*common, "--preset", "leanrec", "--without", addition, "--methods", "ciess",
            *args.extra]  # fmt: skip


def run_variant(args: argparse.Namespace) -> None:
    out = Path(args.out)
    target = out / args.variant
    addition = args.variant.removeprefix("without-")
    if args.variant.startswith("without-") and addition in SEARCH_KEEPING:
        source = out / "leanrec"
        if not (source / "search_state.pt").exists():
            raise SystemExit(f"{args.variant} reuses the leanrec variant's search: run it first")
        target.mkdir(parents=True, exist_ok=True)
        for name in REUSED_FILES:
            if (source / name).exists() and not (target / name).exists():
                shutil.copy2(source / name, target / name)
    status = leanrec(variant_command(args.variant, out, args))
    if status != 0:
        raise SystemExit(f"{args.variant}: leanrec exited with {status}")


def _rows(directory: Path) -> list[dict[str, Any]]:
    path = directory / "rows.json"
    return json.loads(path.read_text()) if path.exists() else []


def _figures(row: dict[str, Any]) -> dict[str, float]:
    out = {f"test_{m}": float(row[f"test_{m}"]) for m in METRICS if f"test_{m}" in row}
    valid = row.get("valid", {})
    if "recall@20" in valid:
        out["valid_recall@20"] = float(valid["recall@20"])
    out["sparsity"] = float(row["sparsity"])
    for key, value in row.get("memory", {}).items():
        out[key] = float(value)
    if "dense_bytes" in row:
        out["dense_bytes"] = float(row["dense_bytes"])
    if "epochs" in row:
        out["epochs"] = float(row["epochs"])
    return out


def assemble(args: argparse.Namespace) -> None:
    out = Path(args.out)
    results: dict[str, Any] = {"dataset": args.dataset, "model": args.model}
    table = []
    for directory in sorted(p for p in out.iterdir() if (p / "rows.json").exists()):
        variant = directory.name
        timings = json.loads((directory / "timings.json").read_text()) if (
            directory / "timings.json").exists() else {}  # fmt: skip
        for key in ("search_seconds", "seconds_per_iteration", "pretrain_seconds",
                    "ordinary_pretrain_seconds"):  # fmt: skip
            if key in timings:
                results[f"{variant}:{key}"] = float(timings[key])
        for row in _rows(directory):
            c = row["target_sparsity"]
            name = f"{variant}:{row['method']}:{c}"
            results[f"{name}:preset"] = row.get("preset", "")
            if row.get("reached") is False:
                results[f"{name}:reached"] = False
                results[f"{name}:searched_max_sparsity"] = float(row["sparsity"])
                table.append([variant, row["method"], c, "not reached", "", "", "", ""])
                continue
            for key, value in _figures(row).items():
                results[f"{name}:{key}"] = value
            figures = _figures(row)
            table.append(
                [variant, row["method"], c, row.get("preset", "—")]
                + [f"{figures.get('test_' + m, float('nan')):.4f}" for m in METRICS]
            )
    print_table(["variant", "method", "c", "preset", "R@5", "R@20", "N@5", "N@20"], table)
    print(write_results(SCRIPT, results, args.tag))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "table"])
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--out", default="runs/ciess-presets")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--seed", type=int, default=2024)
    add_tag_argument(parser, SCRIPT)
    args, extra = parser.parse_known_args()
    args.extra = [e for e in extra if e != "--"]
    os.environ.setdefault("LEANREC_PROGRESS", "0")
    if args.action == "run":
        run_variant(args)
    else:
        assemble(args)


if __name__ == "__main__":
    main()
