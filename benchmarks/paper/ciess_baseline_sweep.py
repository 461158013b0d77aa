"""An equal tuning sweep for CIESS's baselines: SU, SR, popularity and PEP under the paper's
protocol.

Each baseline gets a validation sweep over its main hyper-parameters (SU, SR and popularity
sizes: the retraining's learning rate x L2; PEP: its threshold learning's L2 x learning rate),
at least as many configurations as CIESS's own documented tuning and at least 6. Every mask is
retrained from scratch to convergence (PEP: from the pruned model's trained values, as the
experiment does) and scored on validation only; for each (baseline, ``c``) the configuration
with the best validation Recall@20 is chosen, and only then is its model tested, once.

Resumable: every finished (baseline, configuration, ``c``) is written to ``<out>/sweep.json``
and the best model of each cell so far to ``<out>/best_<cell>.pt``; a retraining in progress
checkpoints every validation to ``<out>/retraining.pt``; a rerun continues. ``--max-hours H``
stops at the first of those checkpoints after ``H`` hours (exit 0), so the sweep runs in
pieces of ``H`` hours, each resumed by the same command. ``--progress FILE`` also keeps every
scored configuration and tested cell in one small file, read first: a sweep that outlives its
directory (on a machine that keeps only the repository) continues from it in a new one; a cell
whose best model went with the old directory retrains its chosen configuration (seeded: the
validation figure must come back) and tests that. ``--tune-at c`` sweeps the grid at one
budget only and retrains its choice at the others (each baseline tuned once). PEP
reads the ordinary full-size model of a finished ``paper`` run (``--ordinary``). Writes
``results/ciess_baseline_sweep[--TAG].json`` with every configuration's validation figures, the
choice, the chosen model's test figures, both configuration counts, the budget tuned at
(``tuned_at``) and each cell's number of configurations (``configurations:<baseline>:<c>``).
Run from the repository root::

    python -m benchmarks.paper.ciess_baseline_sweep --dataset ml-100k --model lightgcn \\
        --out runs/presets-ml100k/sweep --ordinary runs/presets-ml100k/paper/ordinary.pt \\
        --tag ml100k
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.registry import model_from_checkpoint
from leanrec.runner.final import final_evaluation
from leanrec.runner.rundir import atomic_write_json
from leanrec.search.embedding_size.baselines import (
    apply_element_masks,
    pep_masks,
    popularity_sizes,
    random_sizes,
    uniform_sizes,
)
from leanrec.search.embedding_size.config import FROM_SCRATCH_MIN_EPOCHS, CIESSConfig, PEPConfig
from leanrec.search.embedding_size.deadline import TimeLimitError, time_limit
from leanrec.search.embedding_size.experiment import epoch_logger
from leanrec.search.embedding_size.retrain import (
    RetrainedModel,
    build_masked_model,
    retrain_model,
    retrain_with_sizes,
    test_metrics,
)
from leanrec.train.checkpoint import load_checkpoint

SCRIPT = "ciess_baseline_sweep"
Grid = dict[str, tuple[float, ...]]
"""Values to try per field (a configuration: one value of each)."""
TARGETS = (0.9, 0.8, 0.95)
"""The order the cells run in: the middle budget first, so a cut-short sweep has it."""
RETRAIN_GRID: Grid = {"learning_rate": (0.002, 0.005, 0.01), "l2": (1e-5, 1e-4)}
"""SU and SR: the retraining's step size and L2 (6 configurations)."""
PEP_GRID: Grid = {"l2": (1e-3, 1e-2, 1e-1), "learning_rate": (0.005, 0.01)}
"""PEP: its threshold learning's L2 (what pushes the thresholds up) and step (6)."""
WIDE_RETRAIN_GRID: Grid = {"learning_rate": (0.002, 0.005, 0.01), "l2": (1e-5, 1e-4, 1e-3)}
WIDE_PEP_GRID: Grid = {"l2": (1e-3, 1e-2, 1e-1), "learning_rate": (0.002, 0.005, 0.01)}
"""``--wide``: 9 configurations each, as many as CIESS's documented tuning on ML-1M."""
CIESS_DOCUMENTED_TUNING = (
    "lambda 0.4 fixed",
    "lambda 1.0 fixed",
    "lambda 0.4 -> 3",
    "lambda 0.4 -> 12",
    "item quality hits",
    "projection per_role",
    "projection both",
    "screen 300 masks",
    "validate_initial",
)
"""Settings of CIESS's own hyper-parameters run on ML-1M (docs/history/embedding-size.md),
not counting the masks it searches; on this sweep's data neither preset was tuned (each ran
once, with the values fixed before the run)."""
METRIC = "recall@20"
BASELINES = ("su", "sr", "popularity", "pep")
"""The baselines the sweep tunes: uniform (SU), random (SR) and popularity sizes, retrained
from scratch, and PEP's element masks, retrained from the pruned weights."""


def _grid(grid: Grid) -> list[dict[str, float]]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


WIDENINGS = 2
"""``--widen-corner``: at most this many widenings of a tuned cell's grid."""


def widened(grid: Grid, chosen: dict[str, float]) -> Grid | None:
    """``grid`` one step wider beyond each end ``chosen`` sits at, or None when the choice sits
    inside on every field of two or more values. The step repeats the ratio of the two values
    at that end (step sizes 0.005, 0.01 -> 0.02; L2 1e-4, 1e-3 -> 1e-2), to 3 digits."""
    wider: Grid = {}
    moved = False
    for field, values in grid.items():
        ordered = sorted(values)
        if len(ordered) > 1 and chosen[field] == ordered[-1]:
            ordered.append(float(f"{ordered[-1] * ordered[-1] / ordered[-2]:.3g}"))
            moved = True
        elif len(ordered) > 1 and chosen[field] == ordered[0]:
            ordered.insert(0, float(f"{ordered[0] * ordered[0] / ordered[1]:.3g}"))
            moved = True
        wider[field] = tuple(ordered)
    return wider if moved else None


def _key(method: str, config: dict[str, float], target: float) -> str:
    return f"{method}|{json.dumps(config, sort_keys=True)}|{target}"


def _in_cell(key: str, method: str, target: float) -> bool:
    return key.startswith(f"{method}|") and key.endswith(f"|{target}")


def _log(line: str) -> None:
    print(line, flush=True)


_ON_EPOCH = epoch_logger(_log)
"""The retraining's epoch hook: one line per validated epoch, which has just been
checkpointed, so the sweep may stop there (``--max-hours``)."""


def _check_warm_up(state: dict[str, Any], where: object, min_epochs: int) -> None:
    """A sweep's retrainings share one warm-up: the one ``state`` (a ``sweep.json``) was swept
    with, 0 for a sweep written before ``--retrain-min-epochs`` existed, must be ``min_epochs``.

    Raises:
        ValueError: naming ``where`` and both values.
    """
    swept = state.get("retrain_min_epochs", 0)
    if swept != min_epochs:
        raise ValueError(
            f"{where} was swept with --retrain-min-epochs {swept}, this one with {min_epochs}: "
            "give the same value, or a new --out"
        )


def _chosen_model(best_path: Path, key: str) -> Any:
    """The model ``best_path`` keeps if it is the chosen configuration's (``key``), else None
    (its configuration was scored in an earlier run directory, carried by ``--progress``)."""
    if not best_path.exists():
        return None
    kept = torch.load(best_path, weights_only=False)
    return kept["model"] if isinstance(kept, dict) and kept.get("key") == key else None


def _check_same_model(again: float, scored: float, cell: str) -> None:
    """A chosen configuration retrained to be tested must be the model that was scored: the
    retraining is seeded, so its validation figure must come back (to float rounding).

    Raises:
        RuntimeError: naming the cell and both figures.
    """
    if abs(again - scored) > 1e-6:
        raise RuntimeError(
            f"{cell}: the chosen configuration retrained to validation {METRIC} {again:.6f}, "
            f"not the {scored:.6f} it was chosen with: the retraining is not reproducible here "
            "(threads or library versions differ), so it is not tested"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--out", default="runs/ciess-sweep")
    parser.add_argument("--ordinary", default=None, help="ordinary.pt of a paper-preset run")
    parser.add_argument("--methods", nargs="+", choices=BASELINES, default=list(BASELINES))
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--retrain-max-epochs", type=int, default=None, help="cap (default: the experiment's)"
    )
    parser.add_argument(
        "--retrain-min-epochs",
        type=int,
        default=FROM_SCRATCH_MIN_EPOCHS,
        help="epochs before early stopping may end a retraining from scratch (default: the "
        "paper preset's warm-up, %(default)s)",
    )
    parser.add_argument(
        "--also",
        nargs="*",
        default=[],
        help="sweep directories or --progress files of other processes (e.g. one per "
        "baseline) whose scored configurations and choices join this one's results",
    )
    parser.add_argument(
        "--progress",
        default=None,
        help="a file that also keeps every scored configuration and tested cell, read first: "
        "a sweep that outlives its directory continues from it in a new one",
    )
    parser.add_argument(
        "--tune-at",
        type=float,
        default=None,
        help="sweep the grid at this c only and retrain its choice at the other budgets "
        "(each baseline tuned once, as CIESS's own settings were); default: every c",
    )
    parser.add_argument("--no-run", action="store_true", help="only write the results")
    parser.add_argument("--wide", action="store_true", help="9 configurations per baseline")
    parser.add_argument(
        "--widen-corner",
        action="store_true",
        help="where a tuned cell's choice sits at an end of its grid, widen the grid one step "
        f"beyond that end and score the new configurations (at most {WIDENINGS} times); a cell "
        "chosen at an end without this is reopened",
    )
    parser.add_argument(
        "--max-hours",
        type=float,
        default=None,
        help="stop at the first retraining checkpoint after this many hours and exit 0; the "
        "same command resumes (default: no limit)",
    )
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    if args.tune_at is not None and args.tune_at not in TARGETS:
        parser.error(f"--tune-at must be one of {TARGETS}, got {args.tune_at}")
    try:
        with time_limit(None if args.max_hours is None else args.max_hours * 3600):
            sweep(args)
    except TimeLimitError as stop:
        print(stop, flush=True)


def sweep(args: argparse.Namespace) -> None:
    """Score every configuration not yet scored, choose and test each finished cell, write
    the results (see the module docstring)."""
    os.environ.setdefault("LEANREC_PROGRESS", "0")
    torch.set_num_threads(1)
    retrain_grid = WIDE_RETRAIN_GRID if args.wide else RETRAIN_GRID
    pep_grid = WIDE_PEP_GRID if args.wide else PEP_GRID
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "sweep.json"
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    done: dict[str, Any] = state.setdefault("valid", {})
    tests: dict[str, Any] = state.setdefault("test", {})
    split, _ = prepare_split(args.dataset, "ciess", data_dir(), args.seed)
    n_users, n_items = split.train.n_users, split.train.n_items
    search = CIESSConfig(seed=args.seed)
    base_retrain = dataclasses.replace(search.retrain, progress=False)
    if args.retrain_max_epochs is not None:
        base_retrain = dataclasses.replace(base_retrain, max_epochs=args.retrain_max_epochs)
    base_retrain = dataclasses.replace(base_retrain, min_epochs=args.retrain_min_epochs)
    if done or "retrain_min_epochs" in state:
        _check_warm_up(state, state_path, base_retrain.min_epochs)
    state["retrain_min_epochs"] = base_retrain.min_epochs
    max_dim = search.max_dim

    retraining = out / "retraining.pt"
    """The checkpoint of the retraining in progress (the first configuration not scored)."""
    progress = None if args.progress is None else Path(args.progress)
    if progress is not None and progress.exists():
        carried = json.loads(progress.read_text())
        _check_warm_up(carried, progress, base_retrain.min_epochs)
        if None not in (state.get("tuned_at"), carried.get("tuned_at")) and (
            state["tuned_at"] != carried["tuned_at"]
        ):
            raise ValueError(
                f"{state_path} was swept with --tune-at {state['tuned_at']}, {progress} with "
                f"{carried['tuned_at']}: they are not one sweep"
            )
        own = set(done)
        for name in ("valid", "test"):  # this directory's own records win
            state[name] = {**carried.get(name, {}), **state[name]}
        if state.get("tuned_at") is None:
            state["tuned_at"] = carried.get("tuned_at")
        done, tests = state["valid"], state["test"]
        if set(done) - own:  # the file is ahead: a retraining left here may be one it scored
            retraining.unlink(missing_ok=True)

    if state.get("tuned_at") not in (None, args.tune_at):
        raise ValueError(
            f"{progress or state_path} was swept with --tune-at {state['tuned_at']}, this one "
            f"with {args.tune_at}: give the same value, or a new --out and --progress"
        )
    if args.tune_at is not None:
        state["tuned_at"] = args.tune_at

    def save() -> None:
        atomic_write_json(state_path, state)
        if progress is not None:
            atomic_write_json(progress, state)

    def retrain(method: str, config: dict[str, float], target: float) -> RetrainedModel:
        """One configuration's mask, retrained from scratch (PEP: from the pruned weights)."""
        # the grids' keys are float fields of PEPConfig and TrainerConfig
        settings = cast(dict[str, Any], config)
        if method == "pep":
            masks_path = out / f"pep_masks_{config['l2']}_{config['learning_rate']}.pt"
            if masks_path.exists():
                masks = {float(k): v for k, v in load_checkpoint(masks_path).items()}
            else:
                if not args.ordinary:
                    raise SystemExit("PEP needs --ordinary (ordinary.pt of a paper-preset run)")
                ordinary = model_from_checkpoint(load_checkpoint(args.ordinary))
                pep = dataclasses.replace(PEPConfig(), max_epochs=8, **settings)
                masks = pep_masks(ordinary, split.train, TARGETS, pep, args.seed)
                torch.save({str(k): v for k, v in masks.items()}, masks_path)
            model = build_masked_model(split, args.model, {}, max_dim, args.seed)
            model.load_state_dict(load_checkpoint(args.ordinary)["state_dict"])
            apply_element_masks(model, masks[target])
            return retrain_model(
                model, split, base_retrain, checkpoint_path=retraining,
                on_epoch=_ON_EPOCH, evaluate_test=False,
            )  # fmt: skip
        if method == "su":
            users, items = uniform_sizes(n_users, n_items, max_dim, target)
        elif method == "popularity":
            users, items = popularity_sizes(
                split.train.user_popularity(), split.train.item_popularity(), max_dim, target
            )
        else:
            rng = np.random.default_rng(args.seed + 1)
            users, items = random_sizes(n_users, n_items, max_dim, target, rng)
        trainer = dataclasses.replace(base_retrain, **settings)
        return retrain_with_sizes(
            split, args.model, {}, max_dim, users, items, trainer, args.seed,
            checkpoint_path=retraining, on_epoch=_ON_EPOCH, evaluate_test=False,
        )  # fmt: skip

    def _cell_grid(method: str, target: float, grid: Grid) -> list[dict[str, float]]:
        """The configurations a cell scores: the whole grid, or with ``--tune-at`` (at
        another ``c``) the one chosen there; none while that choice is not made."""
        if args.tune_at is None or target == args.tune_at:
            return _grid(grid)
        tuned = tests.get(f"{method}|{args.tune_at}")
        return [] if tuned is None else [tuned["config"]]

    def score(method: str, target: float, grid: list[dict[str, float]], best_path: Path) -> None:
        """Retrain and score every configuration of ``grid`` not scored yet, keeping the
        cell's best model so far in ``best_path``."""
        for config in grid:
            key = _key(method, config, target)
            if key in done:
                continue
            print(f"{method} c = {target:.0%} {config}", flush=True)
            retrained = retrain(method, config, target)
            figure = float(retrained.valid.get(METRIC, -1.0))
            earlier = [v["valid"][METRIC] for k, v in done.items() if _in_cell(k, method, target)]
            if figure > max(earlier, default=-1.0):
                torch.save({"key": key, "model": retrained.model}, best_path)
            done[key] = {
                "config": config,
                "valid": retrained.valid,
                "epochs": retrained.train_result.epochs_run,
                "sparsity": retrained.sparsity,
            }
            save()
            retraining.unlink(missing_ok=True)

    def best_scored(method: str, target: float, grid: list[dict[str, float]]) -> dict[str, Any]:
        """The configuration of ``grid`` with the best validation figure, and its record."""
        scored = [done[_key(method, config, target)] for config in grid]
        return max(scored, key=lambda v: v["valid"][METRIC])

    def tuned(target: float) -> bool:
        return args.tune_at is None or target == args.tune_at

    if args.widen_corner:  # a choice made at the grid's edge before: reopen its cells
        for method in args.methods:
            base = pep_grid if method == "pep" else retrain_grid
            for target in TARGETS:
                made = tests.get(f"{method}|{target}")
                if not tuned(target) or made is None or "widened" in made:
                    continue
                if widened(base, made["config"]) is not None:
                    print(f"{method}|{target}: its choice sits at the grid's edge: reopened")
                    for other in TARGETS if args.tune_at is not None else (target,):
                        tests.pop(f"{method}|{other}", None)
        save()

    # the budget tuned at goes first: the others retrain its choice
    order = TARGETS if args.tune_at is None else (
        args.tune_at, *(t for t in TARGETS if t != args.tune_at))  # fmt: skip
    for target in order if not args.no_run else ():
        for method in args.methods:
            cell = f"{method}|{target}"
            if cell in tests:
                continue
            base = pep_grid if method == "pep" else retrain_grid
            grid = _cell_grid(method, target, base)
            if not grid:
                print(f"{cell}: waits for the choice at c = {args.tune_at:.0%}", flush=True)
                continue
            best_path = out / f"best_{method}_c{round(target * 100)}.pt"
            score(method, target, grid, best_path)
            widenings = 0
            while args.widen_corner and tuned(target) and widenings < WIDENINGS:
                wider = widened(base, best_scored(method, target, grid)["config"])
                if wider is None:
                    break
                widenings, base, grid = widenings + 1, wider, _grid(wider)
                print(f"{cell}: the choice sits at the grid's edge: widened to {wider}")
                score(method, target, grid, best_path)
            # every configuration of the cell scored: choose on validation, test once
            chosen = best_scored(method, target, grid)
            model = _chosen_model(best_path, _key(method, chosen["config"], target))
            if model is None:  # scored in an earlier run directory (--progress): retrain it
                print(f"{cell}: retraining the chosen {chosen['config']} to test it", flush=True)
                again = retrain(method, chosen["config"], target)
                _check_same_model(again.valid.get(METRIC, -1.0), chosen["valid"][METRIC], cell)
                retraining.unlink(missing_ok=True)
                model = again.model
            with final_evaluation():
                test = test_metrics(model, split)
            tests[cell] = {"config": chosen["config"], "valid": chosen["valid"], "test": test}
            if args.widen_corner and tuned(target):
                tests[cell].update(widened=widenings, configurations=len(grid))
            save()
            print(f"{cell}: chose {chosen['config']}, test R@20 {test['recall@20']:.4f}")

    tunings: set[float | None] = {state.get("tuned_at")}
    for other in args.also:  # read only: the other process writes its own file
        path = Path(other)  # a sweep directory, or a progress file (the same records)
        stored = json.loads((path if path.is_file() else path / "sweep.json").read_text())
        _check_warm_up(stored, other, base_retrain.min_epochs)
        done = {**done, **stored.get("valid", {})}
        tests = {**tests, **stored.get("test", {})}
        tunings.add(stored.get("tuned_at"))
    tunings.discard(None)
    if len(tunings) > 1:
        raise ValueError(f"the joined sweeps were tuned at different budgets: {tunings}")
    tuned_at = next(iter(tunings), None)
    results: dict[str, Any] = {
        "dataset": args.dataset,
        "model": args.model,
        "ciess_documented_tuning_configurations": len(CIESS_DOCUMENTED_TUNING),
        "ciess_tuning_configurations_on_this_data": 0,
        "su_sweep_configurations": len(_grid(retrain_grid)),
        "sr_sweep_configurations": len(_grid(retrain_grid)),
        "popularity_sweep_configurations": len(_grid(retrain_grid)),
        "pep_sweep_configurations": len(_grid(pep_grid)),
        "selection": "validation recall@20; test evaluated once per (baseline, c), after choosing",
        "retrain_max_epochs": base_retrain.max_epochs,
        "retrain_min_epochs": base_retrain.min_epochs,
        "tuned_at": tuned_at,
    }
    rows = []
    for key, value in done.items():
        method, config_json, at = key.split("|")  # at: c as written in the key
        results[f"valid:{method}:{at}:{config_json}:recall@20"] = value["valid"][METRIC]
        results[f"valid:{method}:{at}:{config_json}:epochs"] = value["epochs"]
    for cell, value in tests.items():
        method, at = cell.split("|")
        results[f"chosen:{method}:{at}:config"] = json.dumps(value["config"], sort_keys=True)
        results[f"chosen:{method}:{at}:widened"] = value.get("widened")
        results[f"chosen:{method}:{at}:valid_recall@20"] = value["valid"][METRIC]
        for metric, figure in value["test"].items():
            results[f"chosen:{method}:{at}:test_{metric}"] = figure
        rows.append([method, at, json.dumps(value["config"]), value["valid"][METRIC],
                     value["test"]["recall@20"], value["test"]["ndcg@20"]])  # fmt: skip
    for method in BASELINES:  # a sweep in pieces: how far each cell has got
        for target in TARGETS:
            scored = [v for k, v in done.items() if _in_cell(k, method, target)]
            results[f"scored:{method}:{target}"] = len(scored)
            whole = len(_grid(pep_grid if method == "pep" else retrain_grid))
            results[f"configurations:{method}:{target}"] = (
                len(scored) if f"{method}|{target}" in tests else 1 if (
                    tuned_at is not None and target != tuned_at) else whole
            )  # fmt: skip
            best = max(scored, key=lambda v: v["valid"][METRIC], default=None)
            results[f"best_so_far:{method}:{target}:config"] = (
                "none yet" if best is None else json.dumps(best["config"], sort_keys=True)
            )
            results[f"best_so_far:{method}:{target}:valid_recall@20"] = (
                None if best is None else best["valid"][METRIC]
            )
    for method in BASELINES:  # cells not run keep their keys, marked
        for target in TARGETS:
            if f"chosen:{method}:{target}:config" not in results:
                results[f"chosen:{method}:{target}:config"] = "not run"
                results[f"chosen:{method}:{target}:valid_recall@20"] = None
                for metric in ("recall@5", "recall@20", "ndcg@5", "ndcg@20"):
                    results[f"chosen:{method}:{target}:test_{metric}"] = None
    print_table(["baseline", "c", "chosen", "valid R@20", "test R@20", "test N@20"], rows)
    print(write_results(SCRIPT, results, args.tag))


if __name__ == "__main__":
    main()
