"""An equal tuning sweep for AMEIR's hand-designed CTR baseline (DeepFM by default) on ML-1M CTR.

AMEIR's `leanrec` preset had its settings chosen over 14 configurations; the baseline it is
compared with kept one. Here the baseline gets a validation sweep over its three main
hyper-parameters, learning rate x batch size x dropout of the deep tower (16 configurations,
today's default among them). The architecture (embedding width, tower widths) stays fixed, so
the parameter count, and with it AMEIR's parameter budget, does not move. Each configuration
is trained as the experiment trains its baselines (early stopping on validation AUC, at most
``--epochs`` epochs, patience ``--patience``) on the first seed only; the configuration with
the best validation AUC is chosen, and only then is it trained on every seed and tested, once.

Resumable: each finished configuration is written to ``<out>/sweep.json`` and each chosen-seed
row to ``<out>/final.json``; a rerun continues. Writes ``results/ameir_baseline_sweep[--TAG].json``
with every configuration's validation figures, the choice, its test figures per seed, both
configuration counts, and the test figures of the default configuration from the same seeds'
rows of the headline run when ``--headline`` names its results file. Run from the repository
root::

    python -m benchmarks.paper.ameir_baseline_sweep --out runs/ameir-sweep-deepfm \\
        --seeds 0 1 2 3 4 --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.registry import load_behavior_dataset
from leanrec.models.ctr import build_ctr_model
from leanrec.runner.final import final_evaluation
from leanrec.runner.rundir import atomic_write_json
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr

SCRIPT = "ameir_baseline_sweep"
GRID: dict[str, tuple[Any, ...]] = {
    "learning_rate": (5e-4, 1e-3, 2e-3, 4e-3),
    "batch_size": (1024, 4096),
    "dropout": (0.0, 0.3),
}
"""The baseline's sweep (16 configurations); the experiment's default is lr 1e-3, batch 1024,
no dropout."""
DEFAULT = {"learning_rate": 1e-3, "batch_size": 1024, "dropout": 0.0}
PROPOSED_CONFIGURATIONS = 14
"""Configurations over which AMEIR's `leanrec` preset settings were chosen on ML-1M CTR
(docs/results/architecture.md, "The paper's AMEIR beside leanrec's presets")."""


def configurations() -> list[dict[str, Any]]:
    """Every point of :data:`GRID`, in a fixed order."""
    names = list(GRID)
    return [dict(zip(names, values)) for values in itertools.product(*GRID.values())]


def config_key(config: dict[str, Any]) -> str:
    return ",".join(f"{k}={config[k]}" for k in sorted(config))


def fit(split: Any, model_name: str, config: dict[str, Any], seed: int, args: Any) -> Any:
    """Train ``model_name`` with ``config`` as the experiment trains its baselines."""
    model = build_ctr_model(
        model_name, split.feature_map, seed=seed, dropout=float(config["dropout"])
    )
    trainer = CTRTrainer(
        CTRTrainerConfig(
            embedding_optimizer="dense_adam",  # as the experiment's baselines are trained
            learning_rate=float(config["learning_rate"]),
            batch_size=int(config["batch_size"]),
            max_epochs=args.epochs,
            patience=args.patience,
            seed=seed,
            num_threads=args.threads,
            progress=False,
        )
    )
    started = time.perf_counter()
    trained = trainer.fit(model, split.train, split.valid)
    return model, trained, time.perf_counter() - started


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _merged(folder: Path, stem: str) -> dict[str, Any]:
    """The entries of ``<stem>.json`` and of every lane's ``<stem>-lane<i>.json`` in ``folder``."""
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob(f"{stem}*.json")):
        merged.update(_load(path))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m-ctr")
    parser.add_argument("--model", default="deepfm")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--epochs", type=int, default=25, help="the headline command's --baseline_epochs"
    )
    parser.add_argument("--patience", type=int, default=3, help="its --retrain_patience")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--headline",
        type=Path,
        default=Path("benchmarks/results/ameir_table--keep-best.json"),
        help="results file of the headline table (its default-configuration baseline rows)",
    )
    parser.add_argument(
        "--lane",
        type=int,
        nargs=2,
        metavar=("I", "N"),
        default=None,
        help="run only configurations and seeds whose position is I modulo N (N processes "
        "side by side, each writing its own files); a lane stops where the others' results are "
        "still missing: rerun it, or once without --lane, to finish",
    )
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    split = load_behavior_dataset(args.dataset, data_dir())
    lane, lanes = args.lane if args.lane is not None else (0, 1)
    suffix = "" if args.lane is None else f"-lane{lane}"
    sweep_file = args.out / f"sweep{suffix}.json"
    final_file = args.out / f"final{suffix}.json"

    own = _load(sweep_file)
    sweep = {**_merged(args.out, "sweep"), **own}
    grid = configurations()
    for i, config in enumerate(grid, 1):
        key = config_key(config)
        if key in sweep or (i - 1) % lanes != lane:
            continue
        _, trained, seconds = fit(split, args.model, config, args.seeds[0], args)
        sweep[key] = own[key] = {
            **config,
            "valid_auc": float(trained.best_valid["auc"]),
            "best_epoch": int(trained.best_epoch),
            "train_seconds": seconds,
        }
        atomic_write_json(sweep_file, own)
        print(
            f"[{i}/{len(grid)}] {key}: valid AUC {sweep[key]['valid_auc']:.4f} "
            f"(epoch {trained.best_epoch}, {seconds:.0f} s)",
            flush=True,
        )
    sweep = _merged(args.out, "sweep")
    if len(sweep) < len(grid):
        print(f"{len(grid) - len(sweep)} configurations still to run in other lanes", flush=True)
        return
    chosen_key = max(sweep, key=lambda k: sweep[k]["valid_auc"])
    chosen = {name: sweep[chosen_key][name] for name in GRID}
    print(f"chosen on validation (seed {args.seeds[0]}): {chosen_key}", flush=True)

    for path in args.out.glob("final*.json"):
        if _load(path).get("chosen") != chosen_key:
            raise RuntimeError(
                f"{path} holds rows of {_load(path).get('chosen')}, not {chosen_key}"
            )
    final = _load(final_file)
    final["chosen"] = chosen_key
    own_rows: dict[str, Any] = final.setdefault("rows", {})
    rows = {
        seed: row
        for path in args.out.glob("final*.json")
        for seed, row in _load(path)["rows"].items()
    }
    for position, seed in enumerate(args.seeds):
        if str(seed) in rows or position % lanes != lane:
            continue
        model, trained, seconds = fit(split, args.model, chosen, seed, args)
        with final_evaluation():
            test = evaluate_ctr(model, split.test)
        rows[str(seed)] = own_rows[str(seed)] = {
            "valid_auc": float(trained.best_valid["auc"]),
            "test_auc": test["auc"],
            "test_logloss": test["logloss"],
            "best_epoch": int(trained.best_epoch),
            "train_seconds": seconds,
        }
        atomic_write_json(final_file, final)
        print(
            f"seed {seed}: valid AUC {rows[str(seed)]['valid_auc']:.4f}, test AUC "
            f"{test['auc']:.4f}",
            flush=True,
        )

    seeds = [str(s) for s in args.seeds]
    if any(s not in rows for s in seeds):
        print("seeds still to run in other lanes", flush=True)
        return
    test_auc = np.array([rows[s]["test_auc"] for s in seeds])
    results: dict[str, Any] = {
        "dataset": args.dataset,
        "model": args.model,
        "grid": json.dumps(GRID),
        "baseline_configurations": len(grid),
        "proposed_configurations": PROPOSED_CONFIGURATIONS,
        "selection_seed": args.seeds[0],
        "selection_metric": "valid_auc",
        "chosen": chosen_key,
        "default": config_key(DEFAULT),
        "default_valid_auc": sweep.get(config_key(DEFAULT), {}).get("valid_auc"),
        "chosen_valid_auc": sweep[chosen_key]["valid_auc"],
        "seeds": len(seeds),
        "test_auc_mean": float(test_auc.mean()),
        "test_auc_std": float(test_auc.std()),
        "test_logloss_mean": float(np.mean([rows[s]["test_logloss"] for s in seeds])),
        "valid_auc_mean": float(np.mean([rows[s]["valid_auc"] for s in seeds])),
        "test_auc_by_seed": json.dumps({s: rows[s]["test_auc"] for s in seeds}),
        "epochs": args.epochs,
        "patience": args.patience,
    }
    for key, entry in sweep.items():
        results[f"sweep_valid_auc[{key}]"] = entry["valid_auc"]
    if args.headline.is_file():
        headline = json.loads(args.headline.read_text())
        name = args.model
        for field in ("test_auc_mean", "test_auc_std", "valid_auc_mean"):
            if f"{name}_{field}" in headline:
                results[f"default_{field}"] = headline[f"{name}_{field}"]
        if "ameir_test_auc_mean" in headline:
            results["ameir_test_auc_mean"] = headline["ameir_test_auc_mean"]
        results["headline"] = str(args.headline)
    print_table(
        ["configuration", "valid AUC"],
        [[k, f"{v['valid_auc']:.4f}"] for k, v in sorted(sweep.items())],
    )
    print(
        f"{args.model}, chosen {chosen_key}: test AUC {test_auc.mean():.4f} ± {test_auc.std():.4f}"
    )
    write_results(SCRIPT, results, args.tag)


if __name__ == "__main__":
    main()
