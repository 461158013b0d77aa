"""CIESS as its paper wrote it (preset ``paper``) beside leanrec's variant (preset ``leanrec``),
and the ablation that turns leanrec's additions off one at a time.

Each variant is one resumable ``leanrec experiment embedding-size`` run in ``<out>/<variant>``:

- ``paper``: ``--preset paper`` with CIESS, SU, SR, PEP and MagPrune (every mask retrained
  from scratch to convergence, the pruners on an ordinary model);
- ``leanrec``: ``--preset leanrec`` with the same methods (the warm-start protocol);
- ``paper@baselines``, ``leanrec@baselines``: the same runs' baselines in a second process
  (own run directory, rows read as the preset's), so that two cores share the work;
- ``<variant>@c90``: one budget of a variant's CIESS in a process of its own, from the
  variant's finished search (copied in);
- ``without-<addition>``: ``--preset leanrec --without <addition>``, CIESS only. An addition
  that does not change the search (the screen, the rescaling, the projections, the retraining's
  start, epoch-0 validation) reuses the ``leanrec`` run's search, copied in; every variant
  copies the full-size models (``warm_start.pt``, ``ordinary.pt``) of the presets' runs.

``run`` runs one variant (two variants can run side by side, one per core); ``table`` reads the
run directories and writes ``results/ciess_presets[--TAG].json``: every row's test and
validation figures, its preset label, and for every compressed model its stored, file and
resident-at-serving bytes. A cell missing from the run directories' rows (its directory gone
with an earlier machine) keeps the figures the file recorded, marked
``<variant>:<method>:<c>:from_earlier_run`` (delete the file to drop such cells). Run from
the repository root::

    python -m benchmarks.paper.ciess_presets run --variant paper --out runs/presets-ml100k \\
        --dataset ml-100k --model lightgcn
    python -m benchmarks.paper.ciess_presets run --variant leanrec --out runs/presets-ml100k ...
    python -m benchmarks.paper.ciess_presets run --variant without-screen --out runs/presets-ml100k
    python -m benchmarks.paper.ciess_presets table --out runs/presets-ml100k --tag ml100k

Options after ``--`` go to every ``leanrec experiment`` command (e.g. ``-- --episodes 10``).
``--max-hours H`` stops a ``run`` at the first checkpoint after ``H`` hours (a search
iteration, a validated epoch of a pretraining or retraining), losing nothing: the same command
resumes it, so a long variant runs in pieces of ``H`` hours.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from benchmarks.common import (
    add_tag_argument,
    data_dir,
    print_table,
    results_path,
    write_results,
)
from leanrec.cli import main as leanrec
from leanrec.search.embedding_size.config import LEANREC_ADDITIONS
from leanrec.search.embedding_size.deadline import TimeLimitError, time_limit

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
REUSED_FILES = (
    "warm_start.pt",
    "search_state.pt",
    "search_history.json",
    "timings.json",
    *(f"ciess_c{c}_screen.pt" for c in (80, 90, 95)),
)
"""What those variants copy: the warm start, the search and the screens (a screen's cache is
used only for the same candidates, metric and ``l``, so a variant that changes them
screens again)."""
ABLATED = tuple(name for name in LEANREC_ADDITIONS if name != "pruning_base")
"""The ablation's variants (``pruning_base`` changes the pruning baselines only: it is the
difference between the two presets' PEP and MagPrune rows)."""


def split_budget(variant: str) -> tuple[str, float] | None:
    """``("leanrec", 0.9)`` for ``leanrec@c90``: one budget of a variant's CIESS in a process
    of its own, from the variant's finished search (copied in); None for other names."""
    base, _, budget = variant.partition("@c")
    return (base, int(budget) / 100) if budget.isdigit() else None


def variant_command(variant: str, out: Path, args: argparse.Namespace) -> list[str]:
    """The ``leanrec`` arguments of one variant."""
    common = [
        "experiment", "embedding-size", "--dataset", args.dataset, "--model", args.model,
        "--out", str(out / variant), "--seed", str(args.seed), "--num_threads", "1",
        "--data-dir", str(data_dir()),
    ]  # fmt: skip
    split = split_budget(variant)
    if split is not None:
        base, target = split
        command = variant_command(base, out, args)
        command[command.index("--out") + 1] = str(out / variant)
        methods = command.index("--methods")
        command[methods + 1 : methods + 1 + len(FULL_METHODS)] = ["ciess"]
        return [*command, "--target_sparsities", f"[{target}]"]
    if variant in ("paper", "leanrec"):
        return [*common, "--preset", variant, "--methods", *FULL_METHODS, *args.extra]
    if variant in ("paper@baselines", "leanrec@baselines"):  # the baselines in a second process
        preset = variant.split("@")[0]
        return [*common, "--preset", preset, "--methods", *FULL_METHODS[1:], *args.extra]
    addition = variant.removeprefix("without-")
    if addition not in ABLATED:
        raise SystemExit(f"unknown variant {variant!r}: paper, leanrec or without-<{ABLATED}>")
    return [*common, "--preset", "leanrec", "--without", addition, "--methods", "ciess",
            *args.extra]  # fmt: skip


def run_variant(args: argparse.Namespace) -> None:
    out = Path(args.out)
    target = out / args.variant
    split = split_budget(args.variant)
    if split is not None:
        base = split[0]
        keeps = base.startswith("without-") and base.removeprefix("without-") in SEARCH_KEEPING
        source = out / ("leanrec" if keeps else base)
        if not (source / "search_state.pt").exists():
            raise SystemExit(f"{args.variant} reuses {source.name}'s search: run it first")
        target.mkdir(parents=True, exist_ok=True)
        for name in (*REUSED_FILES, "ordinary.pt"):
            if (source / name).exists() and not (target / name).exists():
                shutil.copy2(source / name, target / name)
    addition = args.variant.split("@")[0].removeprefix("without-")
    if args.variant.startswith("without-") or args.variant.endswith("@baselines"):
        # the full-size models are the same for every variant (same split, seed and
        # pretraining): copied from the presets' runs when they are there
        target.mkdir(parents=True, exist_ok=True)
        for source, name in ((out / "leanrec", "warm_start.pt"), (out / "paper", "ordinary.pt")):
            if (source / name).exists() and not (target / name).exists():
                shutil.copy2(source / name, target / name)
    if args.variant.startswith("without-") and addition in SEARCH_KEEPING:
        source = out / "leanrec"
        if not (source / "search_state.pt").exists():
            raise SystemExit(f"{args.variant} reuses the leanrec variant's search: run it first")
        for name in REUSED_FILES:
            if (source / name).exists() and not (target / name).exists():
                shutil.copy2(source / name, target / name)
    seconds = None if args.max_hours is None else args.max_hours * 3600
    try:
        with time_limit(seconds):
            status = leanrec(variant_command(args.variant, out, args))
    except TimeLimitError as stop:
        print(f"{args.variant}: {stop}", flush=True)
        return
    if status != 0:
        raise SystemExit(f"{args.variant}: leanrec exited with {status}")


def _rows(directory: Path) -> list[dict[str, Any]]:
    path = directory / "rows.json"
    return json.loads(path.read_text()) if path.exists() else []


MEMORY = ("stored_bytes", "file_bytes", "serving_at_rest_bytes", "serving_while_scoring_bytes")


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    """A row's figures under fixed names (None where the row has none: MagPrune has no
    validation score, an unreached budget no test figures) and its ``status``: the sparsity
    reached, or why there is no model."""
    reached = row.get("reached") is not False
    out: dict[str, Any] = {
        f"test_{m}": float(row[f"test_{m}"]) if f"test_{m}" in row else None for m in METRICS
    }
    valid = row.get("valid", {})
    out["valid_recall@20"] = float(valid["recall@20"]) if "recall@20" in valid else None
    out["sparsity"] = float(row["sparsity"])
    out["status"] = (
        f"{row['sparsity']:.2%}"
        if reached
        else f"not reached (searched masks: {row['sparsity']:.2%} at most)"
    )
    memory = row.get("memory", {})
    for key in MEMORY:
        out[key] = float(memory[key]) if key in memory else None
    out["epochs"] = float(row["epochs"]) if "epochs" in row else None
    return out


def _recorded(args: argparse.Namespace) -> dict[str, Any]:
    """The results file as last written (empty when there is none): cells missing from the
    run directories' rows are kept from it.

    Raises:
        SystemExit: when it holds another dataset or model than ``args``'.
    """
    path = results_path(SCRIPT, args.tag)
    if not path.exists():
        return {}
    recorded: dict[str, Any] = json.loads(path.read_text())
    if (recorded.get("dataset"), recorded.get("model")) != (args.dataset, args.model):
        raise SystemExit(
            f"{path} holds {recorded.get('dataset')}/{recorded.get('model')}, not "
            f"{args.dataset}/{args.model}: give another --tag"
        )
    return recorded


def assemble(args: argparse.Namespace) -> None:
    out = Path(args.out)
    results: dict[str, Any] = {"dataset": args.dataset, "model": args.model}
    table = []
    for directory in sorted(p for p in out.iterdir() if (p / "rows.json").exists()):
        variant = directory.name.split("@")[0]  # paper@baselines: the paper variant's rows
        timings = json.loads((directory / "timings.json").read_text()) if (
            directory / "timings.json").exists() else {}  # fmt: skip
        for key in ("search_seconds", "seconds_per_iteration", "pretrain_seconds",
                    "ordinary_pretrain_seconds"):  # fmt: skip
            if key in timings and directory.name == variant:
                results[f"{variant}:{key}"] = float(timings[key])
        for row in _rows(directory):
            c = row["target_sparsity"]
            name = f"{variant}:{row['method']}:{c}"
            results[f"{name}:preset"] = row.get("preset", "")
            results[f"{name}:reached"] = row.get("reached") is not False
            figures = _figures(row)
            for key, value in figures.items():
                results[f"{name}:{key}"] = value
            shown = [f"{v:.4f}" if v is not None else "—" for v in
                     (figures[f"test_{m}"] for m in METRICS)]  # fmt: skip
            table.append([variant, row["method"], c, figures["status"], *shown])
    # a cell missing from the rows keeps what the results file recorded, marked; every other
    # expected cell has its keys (None, "not run") so the docs' tables name what is missing
    expected = [(v, m) for v in ("paper", "leanrec") for m in FULL_METHODS]
    expected += [(f"without-{name}", "ciess") for name in ABLATED]
    recorded = _recorded(args)
    for variant, method in expected:
        for c in args.targets:
            name = f"{variant}:{method}:{c}"
            if f"{name}:status" not in results and recorded.get(f"{name}:status", "not run") != (
                "not run"
            ):
                results.update({k: v for k, v in recorded.items() if k.startswith(f"{name}:")})
                results[f"{name}:from_earlier_run"] = True
            results.setdefault(f"{name}:from_earlier_run", False)
            if f"{name}:status" not in results:
                results.update({f"{name}:{key}": None for key in _figures({"sparsity": 0.0})})
                results[f"{name}:status"] = "not run"
                results[f"{name}:preset"] = ""
    print_table(["variant", "method", "c", "sparsity", "R@5", "R@20", "N@5", "N@20"], table)
    print(write_results(SCRIPT, results, args.tag))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "table"])
    parser.add_argument("--variant", default="paper")
    parser.add_argument("--out", default="runs/ciess-presets")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--targets", nargs="+", type=float, default=[0.8, 0.9, 0.95])
    parser.add_argument(
        "--max-hours",
        type=float,
        default=None,
        help="run: stop at the first checkpoint after this many hours (a search iteration or "
        "a validated epoch) and exit 0; the same command resumes (default: no limit)",
    )
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
