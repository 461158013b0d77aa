"""Several CIESS searches with the same settings against the baselines: per search, best of k, mean.

One CIESS search is one draw: its seed sets the networks, the exploration and the inner
training. This script puts ``k`` finished runs with the same settings (``--search``) beside
the baseline rows (``--baseline``), all read from ``rows.json`` of
``leanrec experiment embedding-size`` run directories that share one warm start. For every
target ``c`` it prints and saves, on test (R@5, R@20, N@5, N@20) and validation Recall@20:

- every search, and how many of the 4 metrics it beats each baseline on;
- **best of k**: the search with the highest validation Recall@20 at that ``c`` (model
  selection on validation only, as a user with ``k`` searches would choose);
- **mean of k** (± sample standard deviation) and how many of the ``k`` searches beat each
  baseline on at least 3 of the 4 metrics.

``--byte-matched`` adds an element-mask baseline compared at equal *bytes* instead of equal
kept weights: run at the sparsity ``c'`` whose best exact storage
(:func:`leanrec.models.memory.element_mask_bytes`) takes what CIESS's packed tables take at
``c`` (:func:`leanrec.models.memory.byte_matched_sparsity`; 83.1 / 92 / 96% on ML-1M).

Writes ``results/ciess_seeds.json`` and ``results/ciess_seeds.png`` (test Recall@20 and NDCG@20
against ``c``: every search as a dot, the baselines as lines); ``--tag T`` writes
``results/ciess_seeds--T.json`` and ``.png``. Run from the repository root:

    python -m benchmarks.paper.ciess_seeds --search "seed 2024=runs/vi-C2" \\
        --search "seed 2025=runs/screen-s2025" --baseline "PEP=runs/vi-prune@pep" \\
        --baseline "SU=runs/vi-su@su"
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmarks.common import add_tag_argument, print_table, results_path, write_results
from leanrec.models.memory import byte_matched_sparsity, element_mask_bytes, prefix_mask_bytes

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
SHORT = {"recall@5": "R@5", "recall@20": "R@20", "ndcg@5": "N@5", "ndcg@20": "N@20"}

Scores = dict[str, float]
"""Test metrics of one row, plus ``valid_recall@20``."""


def read_rows(spec: str, default_method: str) -> tuple[str, dict[float, Scores]]:
    """``label=run[@method]`` -> ``(label, {target c: scores})`` from the run's ``rows.json``
    (with ``rows``, users + items times ``d_max``, when the row records its parameters)."""
    label, _, run_spec = spec.partition("=")
    if not run_spec:
        raise SystemExit(f"ciess_seeds: expected label=run[@method], got {spec!r}")
    run, _, method = run_spec.partition("@")
    method = method or default_method
    path = Path(run) / "rows.json"
    if not path.exists():
        raise SystemExit(f"ciess_seeds: {path} not found")
    rows: dict[float, Scores] = {}
    for row in json.loads(path.read_text()):
        if row["method"] == method and row.get("target_sparsity"):
            rows[round(float(row["target_sparsity"]), 4)] = {
                **{m: float(row[f"test_{m}"]) for m in METRICS},
                "valid_recall@20": float(row.get("valid", {}).get("recall@20", float("nan"))),
                "sparsity": float(row["sparsity"]),
                **(
                    {"rows": row["embedding_parameters"] / (1 - row["sparsity"])}
                    if "embedding_parameters" in row
                    else {}
                ),
            }
    if not rows:
        raise SystemExit(f"ciess_seeds: no {method!r} rows in {path}")
    return label, rows


def wins(row: Scores, baseline: Scores) -> int:
    """On how many of the 4 test metrics ``row`` is strictly above ``baseline``."""
    return sum(row[m] > baseline[m] for m in METRICS)


def best_by_validation(searches: dict[str, Scores]) -> str:
    """The label of the search with the highest validation Recall@20 (ties: the first)."""
    return max(searches, key=lambda label: searches[label]["valid_recall@20"])


def mean_and_sd(searches: dict[str, Scores]) -> tuple[Scores, Scores]:
    """Mean and sample standard deviation (0 for one search) of every score over the searches."""
    keys = [*METRICS, "valid_recall@20"]
    values = {key: [s[key] for s in searches.values()] for key in keys}
    mean = {key: statistics.fmean(v) for key, v in values.items()}
    sd = {key: statistics.stdev(v) if len(v) > 1 else 0.0 for key, v in values.items()}
    return mean, sd


def line(
    c: float,
    label: str,
    scores: Scores,
    baselines: dict[str, Scores],
    spread: Scores | None = None,
) -> list[str]:
    """A table row: the four test metrics (± ``spread``), validation R@20, wins per baseline."""
    shown = [f"{scores[m]:.4f}" + (f" ± {spread[m]:.4f}" if spread else "") for m in METRICS]
    won = ", ".join(f"{wins(scores, b)}" for b in baselines.values())
    return [f"{c:.0%}", label, *shown, f"{scores['valid_recall@20']:.4f}", won]


def plot(
    targets: list[float],
    searches: dict[float, dict[str, Scores]],
    baselines: dict[float, dict[str, Scores]],
    out: Path,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = [100 * c for c in targets]
    for ax, metric in zip(axes, ("recall@20", "ndcg@20"), strict=True):
        for label in next(iter(baselines.values())):
            ax.plot(
                xs, [baselines[c][label][metric] for c in targets], marker="s", ms=3, label=label
            )
        for i, c in enumerate(targets):
            values = [s[metric] for s in searches[c].values()]
            ax.scatter(
                [xs[i]] * len(values), values, color="black", s=14, zorder=3,
                label="CIESS searches" if i == 0 else None,
            )  # fmt: skip
        ax.set_xlabel("target sparsity c (%)")
        ax.set_ylabel(f"test {SHORT[metric]}")
        ax.set_xticks(xs)
    axes[0].legend(fontsize=7)
    fig.suptitle("CIESS searches (dots) against the baselines, LightGCN on ML-1M")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--search", action="append", required=True, help="label=run (CIESS)")
    parser.add_argument("--baseline", action="append", required=True, help="label=run@method")
    parser.add_argument(
        "--byte-matched",
        action="append",
        default=[],
        help="label=run@method: an element-mask baseline run at the byte-matched sparsities "
        "(see byte_matched_sparsity); its row nearest each c' stands for c",
    )
    add_tag_argument(parser, "ciess_seeds")
    args = parser.parse_args()

    search_rows = dict(read_rows(spec, "ciess") for spec in args.search)
    baseline_rows = dict(read_rows(spec, "ciess") for spec in args.baseline)
    first_run = Path(args.search[0].partition("=")[2])
    max_dim = int(json.loads((first_run / "config.json").read_text())["search"]["max_dim"])
    any_search = next(iter(next(iter(search_rows.values())).values()))
    rows_total = round(any_search["rows"] / max_dim)
    matched: dict[str, float] = {}
    for spec in args.byte_matched:
        label, rows = read_rows(spec, "pep")
        baseline_rows[label] = {}
        for c in sorted(set.intersection(*(set(r) for r in search_rows.values()))):
            wanted = byte_matched_sparsity(c, rows_total, max_dim)
            nearest = min(rows, key=lambda t: abs(t - wanted))
            if abs(nearest - wanted) > 1e-3:
                raise SystemExit(
                    f"ciess_seeds: {spec} has no row near the byte-matched sparsity {wanted:.4f} "
                    f"of c = {c:.0%} (nearest {nearest}); run it with that target"
                )
            baseline_rows[label][c] = rows[nearest]
            kept = round((1 - rows[nearest]["sparsity"]) * rows_total * max_dim)
            matched[f"c{round(c * 100)}|{label}|target_sparsity"] = nearest
            matched[f"c{round(c * 100)}|{label}|byte_matched_sparsity"] = wanted
            matched[f"c{round(c * 100)}|{label}|element_mask_bytes"] = element_mask_bytes(
                kept, rows_total, max_dim
            )
            matched[f"c{round(c * 100)}|prefix_mask_bytes"] = prefix_mask_bytes(
                round((1 - c) * rows_total * max_dim), rows_total
            )
    targets = sorted(
        set.intersection(*(set(r) for r in [*search_rows.values(), *baseline_rows.values()]))
    )
    if not targets:
        raise SystemExit("ciess_seeds: no target sparsity is shared by every run")

    results: dict[str, float | str] = {"k": len(search_rows), **matched}
    table = []
    per_target_searches: dict[float, dict[str, Scores]] = {}
    per_target_baselines: dict[float, dict[str, Scores]] = {}
    for c in targets:
        tag = f"c{round(c * 100)}"
        searches = {label: rows[c] for label, rows in search_rows.items()}
        baselines = {label: rows[c] for label, rows in baseline_rows.items()}
        per_target_searches[c], per_target_baselines[c] = searches, baselines
        best = best_by_validation(searches)
        mean, sd = mean_and_sd(searches)

        for label, scores in searches.items():
            table.append(line(c, label, scores, baselines))
            for metric, value in scores.items():
                results[f"{tag}|{label}|{metric}"] = value
            for base, b in baselines.items():
                results[f"{tag}|{label}|wins_over|{base}"] = wins(scores, b)
        table.append(
            line(c, f"best of {len(searches)} on valid ({best})", searches[best], baselines)
        )
        table.append(line(c, f"mean of {len(searches)}", mean, baselines, sd))
        results[f"{tag}|best_of_k"] = best
        for metric in mean:
            results[f"{tag}|mean|{metric}"] = mean[metric]
            results[f"{tag}|sd|{metric}"] = sd[metric]
        for base, b in baselines.items():
            results[f"{tag}|best_of_k|wins_over|{base}"] = wins(searches[best], b)
            results[f"{tag}|mean|wins_over|{base}"] = wins(mean, b)
            results[f"{tag}|searches_with_3_of_4_over|{base}"] = sum(
                wins(s, b) >= 3 for s in searches.values()
            )
            for metric, value in b.items():
                results[f"{tag}|{base}|{metric}"] = value
            table.append([f"{c:.0%}", base, *(f"{b[m]:.4f}" for m in METRICS),
                          f"{b['valid_recall@20']:.4f}", ""])  # fmt: skip
    header = ["c", "row", *(SHORT[m] for m in METRICS), "valid R@20"]
    print_table([*header, "wins over " + ", ".join(baseline_rows)], table)
    for key, value in matched.items():
        if key.endswith("byte_matched_sparsity"):
            print(f"{key}: {value:.4f}")
    for c in targets:
        tag = f"c{round(c * 100)}"
        summary = ", ".join(
            f"{base} {results[f'{tag}|searches_with_3_of_4_over|{base}']}/{len(search_rows)}"
            for base in baseline_rows
        )
        print(f"{c:.0%}: searches beating each baseline on >= 3/4 metrics: {summary}")
    results["searches"] = ", ".join(args.search)
    results["baselines"] = ", ".join(args.baseline)
    png = plot(
        targets,
        per_target_searches,
        per_target_baselines,
        results_path("ciess_seeds", args.tag, ".png"),
    )
    print(f"results: {write_results('ciess_seeds', results, args.tag)}; plot: {png}")


if __name__ == "__main__":
    main()
