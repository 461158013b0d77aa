"""Choose a learned policy's setting on validation, cell by cell, from runs that differ only in it.

DiPS' recency prior ``β`` (``--recency_prior``) is a hyperparameter: this script takes the
policy's rows from several sources (a ``leanrec experiment sketch`` run directory, or an
earlier ``results/sketch_table[--T].json``), labelled by their setting, and for every (K, τ) keeps
the setting with the best mean **validation** metric over the user splits (each split's
validation value at its chosen epoch). Test values are only reported. The chosen rows are
written to ``OUT/rows.json``, ready for ``benchmarks.paper.sketch_table OUT --previous ...``, and
the comparison to ``results/sketch_prior_choice.json`` (``--tag T``:
``results/sketch_prior_choice--T.json``). Run from the repository root:

    python -m benchmarks.paper.sketch_prior_choice --method dips \\
        --candidate 0=benchmarks/results/sketch_table--beauty.json \\
        --candidate 1=runs/sketch-beauty-dips-b1 --out runs/sketch-beauty-dips-chosen \\
        --tag beauty-recency
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import add_tag_argument, print_table, write_results
from benchmarks.paper.sketch_table import rows_from_results


def load_rows(source: Path, method: str) -> dict[tuple[int, int, int], dict]:
    """``(K, τ, seed) -> row`` of ``method`` from a run directory or a results file."""
    if source.is_dir():
        path = source / "rows.json"
        if not path.is_file():
            raise SystemExit(f"no rows.json in {source}")
        rows = json.loads(path.read_text())
    elif source.is_file():
        rows = list(rows_from_results(json.loads(source.read_text())).values())
    else:
        raise SystemExit(f"no such run directory or results file: {source}")
    return {(r["K"], r["tau"], r["seed"]): r for r in rows if r["method"] == method}


def validation_value(row: dict, metric: str) -> float:
    """The split's validation metric at the epoch the run kept."""
    if "valid" in row and metric in row["valid"]:
        return float(row["valid"][metric])
    history = row.get("history", [])
    if not history or row.get("best_epoch", 0) < 1:
        raise SystemExit(f"row {row['method']} K={row['K']} seed={row['seed']} has no validation")
    return float(history[row["best_epoch"] - 1][metric])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="dips")
    parser.add_argument(
        "--candidate",
        action="append",
        required=True,
        help="LABEL=SOURCE (a run directory or a results file of sketch_table); repeat",
    )
    parser.add_argument("--out", required=True, help="directory for the chosen rows.json")
    add_tag_argument(parser, "sketch_prior_choice")
    args = parser.parse_args()
    sources = dict(spec.split("=", 1) for spec in args.candidate)
    rows = {label: load_rows(Path(source), args.method) for label, source in sources.items()}
    first = next(iter(next(iter(rows.values())).values()))
    explicit = "rmse" in first["test"]
    metric = "rmse" if explicit else "recall@20"
    better = np.argmin if explicit else np.argmax
    cells = sorted({(k, tau) for by_cell in rows.values() for k, tau, _ in by_cell})
    chosen_rows: list[dict] = []
    results: dict[str, float | int | str] = {"method": args.method, "metric": metric}
    table = []
    labels = list(rows)
    for k, tau in cells:
        seeds = sorted(
            set.intersection(*({s for kk, t, s in r if (kk, t) == (k, tau)} for r in rows.values()))
        )
        if not seeds:
            continue
        valid = [
            np.mean([validation_value(rows[la][(k, tau, s)], metric) for s in seeds])
            for la in labels
        ]
        test = [np.mean([rows[la][(k, tau, s)]["test"][metric] for s in seeds]) for la in labels]
        pick = labels[int(better(valid))]
        for label, v, t in zip(labels, valid, test, strict=True):
            results[f"K{k}_tau{tau}_{label}_valid"] = float(v)
            results[f"K{k}_tau{tau}_{label}_test"] = float(t)
        results[f"K{k}_tau{tau}_chosen"] = pick
        results[f"K{k}_tau{tau}_seeds"] = len(seeds)
        chosen_rows += [dict(rows[pick][(k, tau, s)], setting=pick) for s in seeds]
        table.append(
            [tau, k, *(f"{v:.4f} / {t:.4f}" for v, t in zip(valid, test, strict=True)), pick]
        )
    print(f"{args.method}: mean validation / test {metric} over the splits present in every source")
    print_table(["tau", "K", *labels, "chosen"], table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(chosen_rows, indent=2))
    results["sources"] = ",".join(f"{la}={src}" for la, src in sources.items())
    print(
        f"written: {write_results('sketch_prior_choice', results, args.tag)}, {out / 'rows.json'}"
    )


if __name__ == "__main__":
    main()
