"""DiPS under its two presets, beside the static policies, and the ablation of leanrec's
additions, from ``leanrec experiment sketch`` run directories and a stored sketch table.

The ``paper`` preset's rows come from its run directories (``--paper``); the other rows from the
stored table of the same protocol (the same user splits, base-model step, batch, epochs and
evaluation), over the splits the ``paper`` preset ran. ``--dataset beauty`` (the default) reads
``results/sketch_table--beauty.json``, whose DiPS rows are the ``leanrec`` preset's; ``--dataset
ml-1m`` reads ``results/sketch_table.json``, whose DiPS rows are the ``paper`` preset but for an
outer update every 2 steps (keyed ``every2``), beside DiPS@1. Each ablation directory (``--ablation
NAME=DIR``; a name given again adds directories) holds DiPS under the ``leanrec`` preset with one
addition off. ``--leanrec`` directories hold DiPS under the ``leanrec`` preset where the stored
table has no such column (ML-1M): their cells are set beside every other policy over the splits
they ran; ``--choose-prior NAME`` then keeps, per cell and split, whichever of them and the
ablation ``NAME`` (the recency prior off) validates better. Writes ``results/sketch_presets.json``
(``--tag T``: ``results/sketch_presets--T.json``), with the preset each run's fields amount to and
the tuning counts of the equal-tuning record. Run from the repository root:

    python -m benchmarks.paper.sketch_presets --paper runs/sketch-beauty-paper \\
        --ablation no_influence_start=runs/sketch-beauty-abl-noinfluence \\
        --ablation no_recency_prior=runs/sketch-beauty-abl-noprior --tag beauty
    python -m benchmarks.paper.sketch_presets --dataset ml-1m --tag ml1m \\
        --paper runs/sketch-ml1m-paper-s{0,1,2}-tau{1,4} \\
        --leanrec runs/sketch-ml1m-leanrec-s{0,1,2}-tau{1,4} \\
        $(printf -- '--ablation no_recency_prior=%s ' runs/sketch-ml1m-noprior-s?-tau?) \\
        --choose-prior no_recency_prior
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_tag_argument, print_table, results_path, write_results
from leanrec.options import build_config
from leanrec.search.sketch.config import SketchConfig, preset_label

STATIC = ("random", "hardest", "influence", "recent")

TUNING: dict[str, Any] = {
    "tuning_dips_leanrec_configurations": 14,
    "tuning_dips_leanrec_detail": (
        "DiPS's own hyper-parameters, configurations scored on validation before the Beauty "
        "headline (docs/design/dips-training.md, dips-recency-prior.md, history/sketch.md): "
        "queue policy step {5e-5, 2e-4} on ML-1M (2); on Beauty the recency prior "
        "beta {0, 1} for DiPS (2), and the DiPS@1 probes beta {0.3, 1, 3} (3), standardised "
        "scores (1), Q = 8 at step 1e-3 (1), Q = 50 at step 1e-3 (1), policy step 5e-3 (1), "
        "the model-free scorer (1), model-state features (1), stochastic training (1)"
    ),
    "tuning_dips_paper_configurations": 0,
    "tuning_dips_paper_detail": (
        "none of its own: the paper preset takes the paper's mechanism and the protocol's "
        "shared settings (Beauty: base-model step 5e-3, batch 64, 3 epochs, policy step "
        "1e-3 / 5e-5; ML-1M: base-model step 1e-3, batch 256, 3 epochs, policy step "
        "2e-4 / 5e-5)"
    ),
    "tuning_shared_protocol_configurations": 7,
    "tuning_shared_protocol_detail": (
        "settings every policy shares, chosen with Random in the loop: base-model step "
        "{1e-3, 2e-3, 5e-3, 1e-2} on ML-1M (4); on Beauty {1e-3 with 256 users, 5e-3 with 64, "
        "2e-2 with 64} (3)"
    ),
    "tuning_baselines_configurations": 0,
    "tuning_baselines_detail": (
        "Random, Hardest, Influence and the sliding window have no hyper-parameter of their "
        "own: they are scored with the shared protocol's base model"
    ),
}
"""The equal-tuning record: how many configurations each method's own hyper-parameters were
chosen over (on ML-1M and Beauty)."""

BEAUTY_FAIR_SWEEP: dict[str, Any] = {
    "fair_sweep": (
        "an equal sweep for the static policies has nothing of their own to tune; what they "
        "share with DiPS is the base model: base-model step {2e-3, 5e-3, 1e-2, 2e-2} x users "
        "per batch {32, 64} x inner steps {1, 2} (16 >= 14 configurations) per policy, chosen "
        "on validation Recall@20 at one cell (online K = 4, split 0), then the table's cells "
        "again where the choice moved: benchmarks/paper/sketch_baseline_sweep.py"
    ),
    "fair_sweep_cpu_hours": 5.0,
    "fair_sweep_cost_detail": (
        "16 configurations x 4 static policies x about 2 minutes a cell on an idle core "
        "(about 2 CPU-h), then 18 cells (3 K x 2 tau x 3 splits) x each policy whose choice "
        "moved (at most 4: about 2.5 CPU-h)"
    ),
}
"""What a fair sweep of the static policies on Beauty would be, and its cost."""

RECORD_PREFIXES = ("tuning_", "fair_sweep")
"""The keys of the equal-tuning record (not measured: rewritten by ``--record-only``)."""


def tuning_record(dataset: str) -> dict[str, Any]:
    """The equal-tuning record of ``dataset``'s results: :data:`TUNING`, and on Beauty the fair
    sweep's plan and, once ``results/sketch_baseline_sweep--beauty.json`` exists, the number of
    configurations it swept per static policy."""
    record = dict(TUNING)
    if dataset != "beauty":
        return record
    record.update(BEAUTY_FAIR_SWEEP)
    sweep = results_path("sketch_baseline_sweep", "beauty")
    if sweep.exists():
        swept = int(json.loads(sweep.read_text())["configurations_per_baseline"])
        record["tuning_baselines_configurations"] = swept
        record["tuning_baselines_detail"] = (
            "no hyper-parameter of their own; the base-model settings they share with DiPS "
            f"swept per policy over {swept} configurations on validation "
            f"(results/{sweep.name})"
        )
    return record


def rewrite_record(path: Path, dataset: str) -> None:
    """Replace the equal-tuning record of the results file ``path`` by today's
    (:func:`tuning_record`), keeping its measured keys, machine and time as they are; the time
    of the rewrite is ``record_rewritten``.

    Raises:
        ValueError: the file's rows were set beside another dataset's stored table.
    """
    results = json.loads(path.read_text())
    stored = f"results/{results_path('sketch_table', DATASETS[dataset].tag).name}"
    if results.get("stored") != stored:
        raise ValueError(
            f"{path} holds rows beside {results.get('stored')}, not {dataset}'s {stored}: "
            "give its --dataset"
        )
    kept = {k: v for k, v in results.items() if not k.startswith(RECORD_PREFIXES)}
    record = {
        **kept,
        **tuning_record(dataset),
        "record_rewritten": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    path.write_text(json.dumps(record, indent=2, sort_keys=True))


@dataclass(frozen=True)
class StoredTable:
    """A stored ``sketch_table`` results file the ``paper`` preset's rows are set beside."""

    tag: str | None
    """``results/sketch_table[--tag].json``."""
    metric: str
    """The rows' test metric: ``"recall@20"`` (implicit feedback) or ``"rmse"`` (ratings)."""
    stored_dips: str
    """What the stored file's ``dips`` column is, as its name in this script's keys."""
    learned: tuple[str, ...] = ()
    """Other learned policies of the stored file set beside (their own names)."""

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller metric is better (RMSE) rather than a larger one (Recall)."""
        return self.metric == "rmse"

    @property
    def short(self) -> str:
        """The metric as result keys spell it: ``recall20``, ``rmse``."""
        return self.metric.replace("@", "")


DATASETS: dict[str, StoredTable] = {
    "beauty": StoredTable(tag="beauty", metric="recall@20", stored_dips="leanrec"),
    "ml-1m": StoredTable(tag=None, metric="rmse", stored_dips="every2", learned=("dips1",)),
}
"""Per dataset, the stored table: Beauty's ``dips`` column is the ``leanrec`` preset; ML-1M's
is the ``paper`` preset but for an outer update every 2 steps (``every2``), beside DiPS@1."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paper", nargs="+", help="paper-preset run directories")
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="rewrite only the equal-tuning record (tuning counts, the fair sweep) of the "
        "existing results file, keeping its measured rows",
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="beauty")
    parser.add_argument(
        "--ablation", action="append", default=[], help="NAME=DIR: leanrec with one addition off"
    )
    parser.add_argument(
        "--leanrec",
        nargs="+",
        default=[],
        help="leanrec-preset run directories, where the stored table has no leanrec column",
    )
    parser.add_argument(
        "--splits", nargs="+", type=int, default=None, help="only these user splits (seeds)"
    )
    parser.add_argument(
        "--choose-prior",
        metavar="NAME",
        default=None,
        help="an --ablation name whose runs are the leanrec preset without the recency prior "
        "(β = 0): per cell and split, keep whichever of it and the --leanrec run (β = 1) "
        "validates better, and record the chosen column (prior_chosen_*)",
    )
    add_tag_argument(parser, "sketch_presets")
    args = parser.parse_args()
    if args.record_only:
        path = results_path("sketch_presets", args.tag)
        if not path.exists():
            parser.error(f"--record-only rewrites {path}, which does not exist")
        rewrite_record(path, args.dataset)
        print(f"record rewritten: {path}")
        return
    if not args.paper:
        parser.error("--paper is required (paper-preset run directories)")
    spec = DATASETS[args.dataset]
    stored_path = results_path("sketch_table", spec.tag)
    stored = json.loads(stored_path.read_text())
    results: dict[str, Any] = {
        "stored": f"results/{stored_path.name}",
        **tuning_record(args.dataset),
    }
    paper_rows, labels = _rows(args.paper, args.splits)
    results["paper_runs"] = ",".join(args.paper)
    results["paper_preset"] = ";".join(sorted(labels))
    table = preset_cells(results, stored, paper_rows, spec)
    print_table(
        ["τ", "K", "splits", *STATIC, *spec.learned, f"DiPS {spec.stored_dips}", "DiPS paper"],
        table,
    )
    leanrec_rows: list[dict[str, Any]] = []
    if args.leanrec:
        clashing = [
            item for item in args.ablation if item.partition("=")[0] in ("paper", "leanrec")
        ]
        if clashing:
            parser.error(f"--ablation {clashing[0]}: the name is taken by a preset's column")
        leanrec_rows, leanrec_labels = _rows(args.leanrec, args.splits)
        if leanrec_labels != {"leanrec"}:
            raise ValueError(f"--leanrec runs are not the leanrec preset: {sorted(leanrec_labels)}")
        results["leanrec_runs"] = ",".join(args.leanrec)
        results["leanrec_preset"] = "leanrec"
        columns = [*STATIC, *spec.learned, f"DiPS {spec.stored_dips}", "DiPS paper", "DiPS leanrec"]
        lines = leanrec_cells(results, stored, leanrec_rows, spec)
        print_table(["τ", "K", "splits", *columns], lines)
    ablation_table = []
    short = spec.short
    ablations: dict[str, list[str]] = {}
    for item in args.ablation:  # a name given again adds directories (other splits, τ)
        name, _, directory = item.partition("=")
        ablations.setdefault(name, []).append(directory)
    ablation_rows: dict[str, list[dict[str, Any]]] = {}
    for name, directories in ablations.items():
        rows, ablation_labels = _rows(directories, args.splits)
        ablation_rows[name] = rows
        results[f"{name}_run"] = ",".join(directories)
        results[f"{name}_preset"] = ";".join(sorted(ablation_labels))
        for row in rows:
            key = f"{name}_K{row['K']}_tau{row['tau']}_seed{row['seed']}"
            results[f"{key}_test_{short}"] = row["test"][spec.metric]
            results[f"{key}_valid_{short}"] = row["valid"][spec.metric]
            results[f"{key}_seconds"] = row["seconds"]
            ablation_table.append(
                [name, row["K"], row["tau"], row["seed"], row["valid"][spec.metric],
                 row["test"][spec.metric]]
            )  # fmt: skip
    if ablation_table:
        print_table(["ablation", "K", "τ", "split", "valid", "test"], ablation_table)
    if args.choose_prior is not None:
        if not args.leanrec or args.choose_prior not in ablation_rows:
            parser.error("--choose-prior needs --leanrec runs and --ablation NAME=DIR runs of it")
        lines = prior_chosen_cells(
            results, leanrec_rows, ablation_rows[args.choose_prior], args.choose_prior, spec
        )
        print_table(["τ", "K", "splits", "β = 1 chosen", "chosen on validation"], lines)
    path = write_results("sketch_presets", results, args.tag)
    print(f"results: {path}")


def preset_cells(
    results: dict[str, Any],
    stored: dict[str, Any],
    paper_rows: list[dict[str, Any]],
    spec: StoredTable,
) -> list[list[Any]]:
    """Add the ``paper`` preset's rows (``paper_*`` keys: per split and mean ± std per cell) and
    the stored policies' rows over the same splits to ``results``; return the printed table's
    lines (one per (τ, K) cell the ``paper`` preset ran).

    Raises:
        KeyError: the stored file lacks a split the ``paper`` preset ran.
    """
    short = spec.short
    compared = _compared(spec)
    table = []
    for tau, k, cell, found in _cells(paper_rows):
        seeds = [r["seed"] for r in found]
        results[f"paper_{cell}_seeds"] = len(seeds)
        if not found:
            continue
        _record_runs(results, "paper", cell, found, spec)
        # the stored rows over the same splits, for a like-for-like comparison
        for method, name in compared:
            same = [stored[f"{method}_{cell}_seed{s}_test_{short}"] for s in seeds]
            results[f"{name}_{cell}_same_splits_test_{short}_mean"] = float(np.mean(same))
            for s in seeds:
                stem = f"{method}_{cell}_seed{s}"
                results[f"{name}_{cell}_seed{s}_test_{short}"] = stored[f"{stem}_test_{short}"]
                # "0.1341,0.1542,0.1565": the validation metric after each epoch
                curve = str(stored[f"{stem}_valid_{short}_by_epoch"]).split(",")
                best = stored[f"{stem}_best_epoch"]
                results[f"{name}_{cell}_seed{s}_valid_{short}"] = float(curve[best - 1])
        table.append(
            [
                tau,
                k,
                len(seeds),
                *(results[f"{n}_{cell}_same_splits_test_{short}_mean"] for _, n in compared),
                results[f"paper_{cell}_test_{short}_mean"],
            ]
        )
    return table


def leanrec_cells(
    results: dict[str, Any],
    stored: dict[str, Any],
    leanrec_rows: list[dict[str, Any]],
    spec: StoredTable,
) -> list[list[Any]]:
    """Add the ``leanrec`` preset's rows (``leanrec_*`` keys: per split, mean ± std per cell,
    and the splits it ran) and every other policy's mean over those same splits
    (``<name>_<cell>_leanrec_splits_test_<metric>_mean``; the ``paper`` preset's from the keys
    :func:`preset_cells` wrote) to ``results``; return the printed table's lines.

    Raises:
        KeyError: the stored file or the ``paper`` preset lacks a split the ``leanrec`` preset ran.
        ValueError: the stored file's DiPS column is already the ``leanrec`` preset (Beauty).
    """
    if spec.stored_dips == "leanrec":
        raise ValueError("the stored table's DiPS column is already the leanrec preset")
    short = spec.short
    compared = _compared(spec)
    table = []
    for tau, k, cell, found in _cells([r for r in leanrec_rows if r["method"] == "dips"]):
        results[f"leanrec_{cell}_seeds"] = len(found)
        if not found:
            continue
        seeds = [r["seed"] for r in found]
        mean = _record_runs(results, "leanrec", cell, found, spec)
        results[f"leanrec_{cell}_splits"] = ",".join(str(s) for s in seeds)
        means = []
        for method, name in (*compared, ("paper", "paper")):
            source = results if method == "paper" else stored
            same = [source[f"{method}_{cell}_seed{s}_test_{short}"] for s in seeds]
            results[f"{name}_{cell}_leanrec_splits_test_{short}_mean"] = float(np.mean(same))
            means.append(float(np.mean(same)))
        table.append([tau, k, len(seeds), *means, mean])
    return table


def prior_chosen_cells(
    results: dict[str, Any],
    with_prior: list[dict[str, Any]],
    without_prior: list[dict[str, Any]],
    name: str,
    spec: StoredTable,
) -> list[list[Any]]:
    """The recency prior chosen on validation: for every cell either run has (both must have run
    the same splits of it) and each of its splits, keep whichever of the ``leanrec`` preset
    (β = 1, ``with_prior``) and the same preset without the prior (β = 0, ``without_prior``, the
    ablation ``name``) has the better validation metric (a tie keeps β = 1), and add
    ``prior_chosen_<cell>_seed<s>_beta`` / ``_test_<metric>`` and the cell's
    ``prior_chosen_<cell>_test_<metric>_mean`` / ``_std`` / ``_beta1_count`` to ``results``;
    return the printed table's lines (τ, K, splits, how many chose β = 1, mean).

    Raises:
        ValueError: a cell's two runs cover different splits, or a validation figure is NaN.
    """
    short = spec.short
    sign = -1.0 if spec.lower_is_better else 1.0
    table = []
    dips = [r for r in with_prior if r["method"] == "dips"]
    ablated = [r for r in without_prior if r["method"] == "dips"]
    for (tau, k, cell, kept), (_, _, _, dropped) in zip(_cells(dips), _cells(ablated), strict=True):
        if not kept and not dropped:
            continue
        splits = [r["seed"] for r in kept]
        if splits != [r["seed"] for r in dropped]:
            raise ValueError(
                f"{cell}: the leanrec runs have splits {splits}, {name} has "
                f"{[r['seed'] for r in dropped]}"
            )
        tests, betas = [], []
        for one, zero in zip(kept, dropped, strict=True):
            if np.isnan(one["valid"][spec.metric]) or np.isnan(zero["valid"][spec.metric]):
                raise ValueError(f"{cell}, split {one['seed']}: a validation figure is NaN")
            beta1 = sign * one["valid"][spec.metric] >= sign * zero["valid"][spec.metric]
            chosen = one if beta1 else zero
            betas.append(1 if beta1 else 0)
            tests.append(chosen["test"][spec.metric])
            results[f"prior_chosen_{cell}_seed{one['seed']}_beta"] = betas[-1]
            results[f"prior_chosen_{cell}_seed{one['seed']}_test_{short}"] = tests[-1]
        mean = _record_mean(results, f"prior_chosen_{cell}_test_{short}", tests)
        results[f"prior_chosen_{cell}_beta1_count"] = sum(betas)
        table.append([tau, k, len(splits), sum(betas), mean])
    return table


def _compared(spec: StoredTable) -> tuple[tuple[str, str], ...]:
    """The stored policies as (name in the stored file, name in this script's keys)."""
    return (*((m, m) for m in (*STATIC, *spec.learned)), ("dips", spec.stored_dips))


def _cells(
    rows: list[dict[str, Any]],
) -> Iterator[tuple[int, int, str, list[dict[str, Any]]]]:
    """``(τ, K, "K<k>_tau<τ>", the rows of that cell by split)`` for every cell of the tables."""
    for tau in (1, 4):
        for k in (2, 4, 8):
            found = [r for r in rows if r["K"] == k and r["tau"] == tau]
            yield tau, k, f"K{k}_tau{tau}", sorted(found, key=lambda r: r["seed"])


def _record_runs(
    results: dict[str, Any], name: str, cell: str, found: list[dict[str, Any]], spec: StoredTable
) -> float:
    """Add one preset's runs of ``cell`` to ``results`` (``<name>_<cell>_seed<s>_*`` per split,
    ``<name>_<cell>_test_<metric>_mean`` / ``_std``); return the mean."""
    short = spec.short
    for row in found:
        seed = f"{cell}_seed{row['seed']}"
        results[f"{name}_{seed}_test_{short}"] = row["test"][spec.metric]
        if "mrr@20" in row["test"]:
            results[f"{name}_{seed}_test_mrr20"] = row["test"]["mrr@20"]
        results[f"{name}_{seed}_valid_{short}"] = row["valid"][spec.metric]
        results[f"{name}_{seed}_best_epoch"] = row["best_epoch"]
        results[f"{name}_{seed}_seconds"] = row["seconds"]
    tests = [r["test"][spec.metric] for r in found]
    return _record_mean(results, f"{name}_{cell}_test_{short}", tests)


def _record_mean(results: dict[str, Any], stem: str, values: list[float]) -> float:
    """Add ``<stem>_mean`` and ``<stem>_std`` (sample spread, 0 for one value) to ``results``;
    return the mean."""
    array = np.array(values, dtype=float)
    results[f"{stem}_mean"] = float(array.mean())
    results[f"{stem}_std"] = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return float(array.mean())


def _rows(
    directories: list[str], splits: list[int] | None = None
) -> tuple[list[dict[str, Any]], set[str]]:
    """The rows of every directory (a (method, K, τ, seed) cell from the first that has it;
    only the user splits ``splits`` when given) and the presets their configs amount to."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    labels: set[str] = set()
    for directory in directories:
        path = Path(directory)
        saved = json.loads((path / "config.json").read_text())["config"]
        labels.add(preset_label(build_config(SketchConfig, saved)))
        for row in json.loads((path / "rows.json").read_text()):
            merged.setdefault((row["method"], row["K"], row["tau"], row["seed"]), row)
    rows = list(merged.values())
    if splits is not None:
        rows = [r for r in rows if r["seed"] in splits]
    return rows, labels


if __name__ == "__main__":
    main()
