"""AMEIR on Beauty, next-item retrieval: the paper's Table 2 rows and the checks of its goal.

Reads the ``rows.json`` of one or more ``leanrec experiment architecture --dataset beauty`` output
directories (e.g. one per seed, run in parallel), prints mean ± std over seeds of test HR@5 /
NDCG@5 (100 uniform negatives), the popularity-negative and full-ranking figures, parameters,
speed and search cost, checks the goal (AMEIR at HR@5 >= 0.33 and NDCG@5 >= 0.25, above
GRU4Rec and SASRec both in their default configuration and tuned on validation, the latter from
``results/ameir_baseline_sweep--<model>.json`` where it exists) and writes
``results/ameir_beauty_table.json`` (``--tag T``: ``results/ameir_beauty_table--T.json``). Run
from the repository root:

    python -m benchmarks.paper.ameir_beauty_table runs/architecture-beauty-s0 \\
        runs/architecture-beauty-s1

``--recheck`` rebuilds the checks of a written file from its stored means (after a sweep lands).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    RESULTS_DIR,
    add_tag_argument,
    print_table,
    results_path,
    write_results,
)

PAPER = {"gru4rec": "0.300 / 0.215 (GRU4Rec+)", "ameir": "0.341 / 0.257 (AMEIR-A)"}
TARGET_HIT, TARGET_NDCG = 0.33, 0.25


Check = tuple[str, str, bool]
"""One goal: its name, what was measured, whether it is met."""

RIVALS = ("gru4rec", "sasrec")


def tuned_rivals(results_dir: Path) -> dict[str, dict[str, float]]:
    """Test HR@5 / NDCG@5 means of each rival tuned on validation.

    Read from ``ameir_baseline_sweep--<rival>.json``; a rival without one is left out.
    """
    tuned = {}
    for rival in RIVALS:
        path = results_dir / f"ameir_baseline_sweep--{rival}.json"
        if path.is_file():
            sweep = json.loads(path.read_text())
            tuned[rival] = {m: float(sweep[f"{m}_mean"]) for m in ("test_hit@5", "test_ndcg@5")}
    return tuned


def goal_checks(
    means: dict[str, dict[str, float]], tuned: dict[str, dict[str, float]]
) -> list[Check]:
    """The goal's checks from per-method test means (``means[method]["test_hit@5"]``).

    A rival is compared twice where it can be: in its default configuration (the same runs as
    AMEIR) and tuned on validation (``tuned``, from its equal sweep).
    """
    if "ameir" not in means:
        return []
    ours = means["ameir"]
    checks: list[Check] = [
        (
            f"AMEIR HR@5 >= {TARGET_HIT}",
            f"{ours['test_hit@5']:.4f}",
            ours["test_hit@5"] >= TARGET_HIT,
        ),
        (
            f"AMEIR NDCG@5 >= {TARGET_NDCG}",
            f"{ours['test_ndcg@5']:.4f}",
            ours["test_ndcg@5"] >= TARGET_NDCG,
        ),
    ]
    for rival in RIVALS:
        for how, theirs in (
            ("in its default configuration", means.get(rival)),
            ("tuned on validation", tuned.get(rival)),
        ):
            if theirs is None:
                continue
            checks.append(
                (
                    f"AMEIR above {rival} {how} (HR@5 and NDCG@5)",
                    f"{ours['test_hit@5']:.4f} / {ours['test_ndcg@5']:.4f} vs "
                    f"{theirs['test_hit@5']:.4f} / {theirs['test_ndcg@5']:.4f}",
                    ours["test_hit@5"] > theirs["test_hit@5"]
                    and ours["test_ndcg@5"] > theirs["test_ndcg@5"],
                )
            )
    return checks


def met_keys(checks: list[Check]) -> dict[str, bool]:
    """``{"met: <goal>": met}`` for the results file."""
    return {f"met: {name}": bool(met) for name, _, met in checks}


def recheck(path: Path, results_dir: Path) -> list[Check]:
    """Rebuild the ``met:`` keys of a written results file from its stored test means.

    Every other key is kept as written; ``rechecked`` records when.
    """
    stored = json.loads(path.read_text())
    means: dict[str, dict[str, float]] = {}
    for key, value in stored.items():
        for metric in ("test_hit@5", "test_ndcg@5"):
            suffix = f"_{metric}_mean"
            if key.endswith(suffix):
                means.setdefault(key[: -len(suffix)], {})[metric] = float(value)
    checks = goal_checks(means, tuned_rivals(results_dir))
    kept = {k: v for k, v in stored.items() if not k.startswith("met: ")}
    record = {**kept, **met_keys(checks), "rechecked": time.strftime("%Y-%m-%dT%H:%M:%S")}
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="*", help="experiment output directories")
    add_tag_argument(parser, "ameir_beauty_table")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="rebuild the goal checks of the written results file (by --tag) from its stored "
        "means and the rivals' sweep files, without run directories",
    )
    args = parser.parse_args()
    if args.recheck:
        path = results_path("ameir_beauty_table", args.tag)
        if not path.is_file():
            raise SystemExit(f"no results file to recheck: {path}")
        print_table(["goal", "measured", "met"], recheck(path, RESULTS_DIR))
        print(f"\nrewritten: {path}")
        return
    if not args.runs:
        parser.error("give experiment output directories (or --recheck)")
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
    checks = goal_checks(means, tuned_rivals(RESULTS_DIR))
    print()
    print_table(["goal", "measured", "met"], checks)
    results.update(met_keys(checks))
    print(f"\nwritten: {write_results('ameir_beauty_table', results, args.tag)}")


if __name__ == "__main__":
    main()
