"""CIESS exploration ablation (paper Table 2) from finished experiment runs.

Each variant is one ``leanrec experiment embedding-size --methods ciess`` run sharing the same
warm start (copy ``warm_start.pt`` into the new run directory first), e.g.::

    leanrec experiment embedding-size --dataset ml-1m --model lightgcn --methods ciess \\
        --out runs/es-ml1m-lightgcn-norw --no-random-walk
    leanrec experiment embedding-size ... --out runs/es-ml1m-lightgcn-ou --noise ou

Reads their ``rows.json``, prints the four test metrics (and validation Recall@20) per target
sparsity and variant, the mean user and item size of each retrained CIESS mask, and how many
search iterations met each target (the candidates of Eq. 15). Writes
``results/ciess_ablation.json`` and ``results/ciess_ablation.png`` (every search's mean sparsity
per episode against the targets); ``--tag T`` writes ``results/ciess_ablation--T.json`` and
``.png`` instead. Run from the repository root:

    python -m benchmarks.paper.ciess_ablation --variant "G+RW=runs/es-ml1m-lightgcn" \\
        --variant "G, no RW=runs/es-ml1m-lightgcn-norw" [--tag converged]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import add_tag_argument, print_table, results_path, write_results

METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
nan = float("nan")


def by_episode(history: list[dict[str, float]]) -> dict[int, list[dict[str, float]]]:
    """The search history's iteration records grouped by episode, in episode order."""
    episodes: dict[int, list[dict[str, float]]] = {}
    for record in history:
        episodes.setdefault(int(record["episode"]), []).append(record)
    return dict(sorted(episodes.items()))


def last_episode(history: list[dict[str, float]]) -> dict[str, float]:
    """Mean reward, size and sparsity over the search's last episode (paper Fig. 3's end)."""
    last = list(by_episode(history).values())[-1]
    return {
        key: sum(h[key] for h in last) / len(last)
        for key in ("mean_reward", "user_mean_size", "item_mean_size", "sparsity")
    }


def sparsity_per_episode(history: list[dict[str, float]]) -> tuple[list[int], list[float]]:
    episodes = by_episode(history)
    means = [sum(h["sparsity"] for h in records) / len(records) for records in episodes.values()]
    return list(episodes), means


def visits(history: list[dict[str, float]], targets: list[float]) -> dict[str, int]:
    """Search iterations whose sizes met each target (Eq. 15's candidates, before projection)."""
    return {f"c{round(c * 100)}": sum(h["sparsity"] >= c for h in history) for c in targets}


def mask_sizes(run: Path, target: float) -> tuple[float, float]:
    """Mean user and item size of the retrained CIESS mask at ``target`` (nan if not saved)."""
    path = run / f"ciess_c{round(target * 100)}_sizes.npz"
    if not path.exists():
        return nan, nan
    sizes = np.load(path)
    return float(sizes["users"].mean()), float(sizes["items"].mean())


def lambda_label(config: dict) -> str:
    final = config.get("reward_lambda_final")
    start = config["reward_lambda"]
    return f"{start:g}" if final is None else f"{start:g}→{final:g}"


def plot(curves: dict[str, tuple[list[int], list[float]]], targets: list[float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    labels: dict[tuple[float, ...], list[str]] = {}  # runs sharing one search: one curve
    for label, (_, values) in curves.items():
        labels.setdefault(tuple(values), []).append(label)
    for label, (episodes, values) in curves.items():
        names = labels[tuple(values)]
        if names[0] == label:
            ax.plot(episodes, values, marker="o", markersize=3, label=" = ".join(names))
    for c in targets:
        ax.axhline(c, color="grey", ls=":", lw=1)
    ax.set_ylim(top=max([*targets, *(v for _, vs in curves.values() for v in vs)]) + 0.02)
    ax.set_xlabel("episode")
    ax.set_ylabel("mean sparsity of the search's sizes")
    ax.set_title("Where each search spent its episodes (dotted: target c)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--variant",
        action="append",
        required=True,
        help="label=run directory, optionally @method for a baseline row (default @ciess)",
    )
    add_tag_argument(parser, "ciess_ablation")
    args = parser.parse_args()
    table = []
    results: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, tuple[list[int], list[float]]] = {}
    targets: set[float] = set()
    for spec in args.variant:
        label, _, run_spec = spec.partition("=")
        run, _, method = run_spec.partition("@")
        method = method or "ciess"
        rows = json.loads((Path(run) / "rows.json").read_text())
        config = json.loads((Path(run) / "config.json").read_text())["search"]
        searched = method == "ciess"
        results[label] = {}
        run_targets = [float(c) for c in config["target_sparsities"]]
        targets.update(run_targets)
        if searched:
            history = json.loads((Path(run) / "search_history.json").read_text())
            results[label]["search"] = last_episode(history)
            met = visits(history, run_targets)
            results[label]["visits"] = {k: float(v) for k, v in met.items()}
            curves[label] = sparsity_per_episode(history)
        for row in rows:
            if row["method"] != method:
                continue
            target = f"c{round(row['target_sparsity'] * 100)}"
            valid = row.get("valid", {}).get("recall@20", float("nan"))
            users_d, items_d = (
                mask_sizes(Path(run), row["target_sparsity"]) if searched else (nan, nan)
            )
            results[label][target] = {
                "sparsity": row["sparsity"],
                **{m: row[f"test_{m}"] for m in METRICS},
                "valid_recall@20": valid,
                "users_mean_size": users_d,
                "items_mean_size": items_d,
                "masks_retrained": float(len(row.get("candidates_retrained", [])) or 1),
            }
            table.append(
                [
                    target,
                    label,
                    config["noise"] if searched else "—",
                    ("yes" if config["random_walk"] else "no") if searched else "—",
                    lambda_label(config) if searched else "—",
                    row["sparsity"],
                    *(row[f"test_{m}"] for m in METRICS),
                    valid,
                    f"{users_d:.1f} / {items_d:.1f}" if searched else "—",
                ]
            )
    table.sort(key=lambda r: (r[0], r[1]))
    searches = [
        [label, *parts["search"].values(), *(int(v) for v in parts["visits"].values())]
        for label, parts in results.items()
        if "search" in parts
    ]
    if searches:
        ordered = sorted(targets)
        print_table(
            [
                "variant",
                "last-episode reward",
                "users d",
                "items d",
                "sparsity",
                *(f"iterations >= {c:.0%}" for c in ordered),
            ],
            searches,
        )
        plot(curves, ordered, results_path("ciess_ablation", args.tag, ".png"))
    header = ["c", "variant", "noise", "random walk", "λ", "sparsity", "R@5", "R@20", "N@5"]
    print_table([*header, "N@20", "valid R@20", "users / items d"], table)
    flat = {
        f"{label}|{target}|{metric}": value
        for label, targets in results.items()
        for target, metrics in targets.items()
        for metric, value in metrics.items()
    }
    write_results("ciess_ablation", flat, args.tag)


if __name__ == "__main__":
    main()
