"""AMEIR under its two presets on ML-1M CTR, beside DeepFM, and the ablation of leanrec's
additions, from ``leanrec experiment architecture`` run directories and the stored tables.

The ``paper`` preset's rows (and the DeepFM rows trained in the same directories, which set its
parameter cap) come from ``--paper``; the ``leanrec`` preset's rows from the run directories
given as ``--ablation leanrec=DIR`` (and each addition turned off alone from ``--ablation
NAME=DIR``), beside the stored five-seed headline (``results/ameir_table--keep-best.json``,
``leanrec`` preset with Step 1 off and 6 one-shot epochs per step; its ``keep_best`` ablation
``results/ameir_table--fm-5seeds.json``). Writes ``results/ameir_presets.json``
(``--tag T``: ``results/ameir_presets--T.json``) with the preset each run's fields amount to
and the tuning counts of the equal-tuning record. Run from the repository root:

    python -m benchmarks.paper.ameir_presets --paper runs/ameir-e1-paper \\
        --ablation leanrec=runs/ameir-e1-leanrec --ablation no_fm_term=runs/ameir-e1-nofm \\
        --ablation no_carried_embeddings=runs/ameir-e1-nocarry \\
        --ablation no_keep_best=runs/ameir-e1-nokeepbest

``--keep-stored`` keeps the rows of the file it overwrites for the seeds (and ablations) the
given directories lack, e.g. after a run directory was deleted:

    python -m benchmarks.paper.ameir_presets --keep-stored --paper runs/ameir-e1-paper-s1 \
        runs/ameir-e1-paper-s2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_tag_argument, print_table, results_path, write_results
from leanrec.options import build_config
from leanrec.search.architecture.config import ArchitectureSearchConfig, preset_label

METRICS = ("valid_auc", "test_auc", "test_logloss", "parameters", "search_seconds",
           "train_seconds")  # fmt: skip
OPTIONAL_METRICS = ("inference_samples_per_second",)
"""Summarised over the seeds whose rows have them (rows kept from a stored file do not)."""

TUNING: dict[str, Any] = {
    "tuning_ameir_leanrec_configurations": 14,
    "tuning_ameir_leanrec_detail": (
        "AMEIR configurations run on ML-1M CTR before the headline, one results file each "
        "(benchmarks/results/ameir_table*.json): the first pass and readouts (pass1, pass2, "
        "ameir_table), Step 1 off (no-blocks, no-blocks-e6), 25 one-shot epochs (e25), "
        "re-runs (rerun, 3seeds), the FM term (fm, fm-5seeds), carried embeddings "
        "(fm-no-carry), top 50 re-scored (fm-top50), cosine schedule (cosine-one-shot), "
        "keep-best (keep-best); several read their test figures before the next choice"
    ),
    "tuning_ameir_paper_configurations": 0,
    "tuning_ameir_paper_detail": (
        "none of its own: the paper's settings and the budgets of the headline command "
        "(50 children, 4,096 validation samples), one-shot epochs per step as given"
    ),
}
"""The equal-tuning record of the two AMEIR presets: how many configurations each one's own
hyper-parameters were chosen over. The baseline's side is read from its sweep
(:func:`deepfm_tuning`)."""


def deepfm_tuning() -> dict[str, Any]:
    """DeepFM's side of the equal-tuning record, from its validation sweep
    (``results/ameir_baseline_sweep.json``, ``benchmarks/paper/ameir_baseline_sweep.py``)."""
    path = results_path("ameir_baseline_sweep")
    sweep = json.loads(path.read_text())
    return {
        "tuning_deepfm_configurations": sweep["baseline_configurations"],
        "tuning_deepfm_detail": (
            f"validation sweep over {sweep['grid']} on seed {sweep['selection_seed']}, chosen "
            f"{sweep['chosen']}, then trained on {sweep['seeds']} seeds and tested once "
            f"(test AUC {sweep['test_auc_mean']:.4f}); the headline's DeepFM rows are its "
            f"default configuration {sweep['default']}"
        ),
        "tuning_deepfm_sweep": f"results/{path.name}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paper", nargs="+", required=True, help="paper-preset run directories")
    parser.add_argument(
        "--ablation",
        action="append",
        default=[],
        help="NAME=DIR: AMEIR under the leanrec preset (NAME leanrec) or with one addition off",
    )
    parser.add_argument(
        "--keep-stored",
        action="store_true",
        help="keep the per-seed rows of the results file this run overwrites for every seed "
        "and ablation the given directories lack (a run directory since deleted)",
    )
    add_tag_argument(parser, "ameir_presets")
    args = parser.parse_args()
    previous: dict[str, Any] = {}
    if args.keep_stored:
        stored_path = results_path("ameir_presets", args.tag)
        if not stored_path.is_file():
            raise SystemExit(f"--keep-stored: no results file {stored_path}")
        previous = json.loads(stored_path.read_text())
    headline = json.loads(results_path("ameir_table", "keep-best").read_text())
    no_keep_best = json.loads(results_path("ameir_table", "fm-5seeds").read_text())
    results: dict[str, Any] = {
        "stored_headline": "results/ameir_table--keep-best.json",
        "stored_headline_no_keep_best": "results/ameir_table--fm-5seeds.json",
        **TUNING,
        **deepfm_tuning(),
    }
    rows, labels = _rows(args.paper)
    for name, method in (("paper", "ameir"), ("deepfm_rerun", "deepfm")):
        kept = _stored_rows(previous, name, method, rows)
        rows += kept
        if kept and name == "paper":
            _note_stored(results, previous, "paper", "paper_runs", kept)
            labels.add(previous["paper_preset"])
    results["paper_runs"] = ",".join(args.paper)
    results["paper_preset"] = ";".join(sorted(labels))
    table = []
    for method, name in (("ameir", "paper"), ("deepfm", "deepfm_rerun")):
        found = sorted((r for r in rows if r["method"] == method), key=lambda r: r["seed"])
        _summarise(results, name, found)
        if found:
            table.append(_line(results, name, len(found)))
    given = [spec.partition("=")[::2] for spec in args.ablation]
    stored_names = [key[: -len("_run")] for key in previous if key.endswith("_run")]
    for name in stored_names:
        if name not in {n for n, _ in given}:
            given.append((name, ""))
    for name, directory in given:
        found, ablation_labels = _rows([directory]) if directory else ([], set())
        found = [r for r in found if r["method"] == "ameir"]
        kept = _stored_rows(previous, name, "ameir", found)
        searched = sorted(found + kept, key=lambda r: r["seed"])
        if kept:
            _note_stored(results, previous, name, f"{name}_run", kept)
            ablation_labels.add(previous[f"{name}_preset"])
        results[f"{name}_run"] = directory or previous[f"{name}_run"]
        results[f"{name}_preset"] = ";".join(sorted(ablation_labels))
        _summarise(results, name, searched)
        if searched:
            table.append(_line(results, name, len(searched)))
    seeds = [str(r["seed"]) for r in rows if r["method"] == "ameir"]
    stored = (
        ("headline", headline, "ameir"),
        ("headline_no_keep_best", no_keep_best, "ameir"),
        ("deepfm_headline", headline, "deepfm"),
    )
    for name, source, method in stored:
        for metric in ("valid_auc", "test_auc", "parameters"):
            by_seed = json.loads(source[f"{method}_{metric}_by_seed"])
            results[f"{name}_{metric}_by_seed"] = json.dumps(by_seed)
            results[f"{name}_{metric}_mean"] = float(np.mean(list(by_seed.values())))
            for seed, value in by_seed.items():
                results[f"{name}_seed{seed}_{metric}"] = value
            if seeds:
                results[f"{name}_{metric}_same_seeds_mean"] = float(
                    np.mean([by_seed[s] for s in seeds])
                )
                results[f"{name}_{metric}_same_seeds_by_seed"] = json.dumps(
                    {s: by_seed[s] for s in seeds}
                )
        if seeds:
            table.append(
                [f"{name} (stored, same seeds)", len(seeds),
                 results[f"{name}_valid_auc_same_seeds_mean"],
                 results[f"{name}_test_auc_same_seeds_mean"], "", "", ""]
            )  # fmt: skip
    print_table(["method", "seeds", "valid AUC", "test AUC", "log loss", "params", "search s"],
                table)  # fmt: skip
    path = write_results("ameir_presets", results, args.tag)
    print(f"results: {path}")


def _summarise(results: dict[str, Any], name: str, rows: list[dict[str, Any]]) -> None:
    """``<name>_<metric>_mean`` / ``_std`` (sample std; 0 for one seed) / ``_by_seed``."""
    results[f"{name}_seeds"] = len(rows)
    if not rows:
        return
    for metric in METRICS:
        values = np.array([r[metric] for r in rows], dtype=float)
        results[f"{name}_{metric}_mean"] = float(values.mean())
        results[f"{name}_{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        results[f"{name}_{metric}_by_seed"] = json.dumps({str(r["seed"]): r[metric] for r in rows})
        for row in rows:
            results[f"{name}_seed{row['seed']}_{metric}"] = row[metric]
    for metric in OPTIONAL_METRICS:
        having = [r for r in rows if metric in r]
        if having:
            results[f"{name}_{metric}_by_seed"] = json.dumps(
                {str(r["seed"]): r[metric] for r in having}
            )


def _stored_rows(
    previous: dict[str, Any], name: str, method: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of ``name`` in a stored results file (``<name>_seed<s>_<metric>``) for the
    seeds ``rows`` has no ``method`` row of."""
    have = {r["seed"] for r in rows if r["method"] == method}
    by_seed = json.loads(previous.get(f"{name}_test_auc_by_seed", "{}"))
    kept = []
    for seed in sorted(int(s) for s in by_seed):
        if seed in have:
            continue
        row: dict[str, Any] = {"method": method, "seed": seed}
        for metric in METRICS:
            row[metric] = previous[f"{name}_seed{seed}_{metric}"]
        kept.append(row)
    return kept


def _note_stored(
    results: dict[str, Any],
    previous: dict[str, Any],
    name: str,
    runs_key: str,
    kept: list[dict[str, Any]],
) -> None:
    """Record which seeds of ``name`` come from the stored file, and the run directories they
    were first collected from."""
    results[f"{name}_stored_seeds"] = ",".join(str(r["seed"]) for r in kept)
    results[f"{name}_stored_from"] = previous.get(f"{name}_stored_from", previous[runs_key])


def _line(results: dict[str, Any], name: str, seeds: int) -> list[Any]:
    return [
        name,
        seeds,
        *(results[f"{name}_{m}_mean"] for m in ("valid_auc", "test_auc", "test_logloss")),
        int(results[f"{name}_parameters_mean"]),
        results[f"{name}_search_seconds_mean"],
    ]


def _rows(directories: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """The rows of every directory (a (method, seed) row from the first that has it) and the
    presets their search configs amount to."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    labels: set[str] = set()
    for directory in directories:
        path = Path(directory)
        saved = json.loads((path / "config.json").read_text())["config"]
        labels.add(preset_label(build_config(ArchitectureSearchConfig, saved)))
        if not (path / "rows.json").is_file():
            continue
        for row in json.loads((path / "rows.json").read_text()):
            merged.setdefault((row["method"], row["seed"]), row)
    return list(merged.values()), labels


if __name__ == "__main__":
    main()
