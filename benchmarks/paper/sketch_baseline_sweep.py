"""An equal tuning sweep for DiPS's static baselines on Beauty: Random, Hardest, Influence and
the sliding window.

DiPS's own settings under the `leanrec` preset were chosen over about 14 configurations on
validation (``PROPOSED_CONFIGURATIONS``); the static policies have no hyper-parameter of their
own, and the base model they share with DiPS (its step size, users per batch and Eq. 7 inner
steps) was chosen once, with Random in the loop. Here every static policy gets that base model
tuned for itself, over a grid of ``max(6, 14)`` or more configurations (16, the table's
setting among them):

1. **select**: every configuration runs one cell, ``K = 4``, online (``τ = 1``), user split 0,
   with the Beauty table's protocol otherwise (3 epochs, the epoch chosen on validation); the
   configuration with the best validation Recall@20 is kept (a tie keeps the table's setting).
   The runs also stream their test users, as every cell does, but this script never reads a
   selection run's test figures.
2. **final**: a policy whose choice is not the table's setting runs every cell of the table
   (``K`` 2 / 4 / 8, ``τ`` 1 / 4, splits 0-2) at its choice, and these are the test figures
   read, once; a policy that keeps the table's setting keeps the table's stored rows
   (``results/sketch_table--beauty.json``).

Resumable: each configuration is a ``leanrec experiment sketch`` run directory under
``<out>/select/<policy>/<configuration>`` (and ``<out>/final/<policy>/<configuration>``),
whose finished cells are kept in ``rows.json`` and whose cell in training checkpoints every
epoch; a rerun continues. ``--max-hours`` starts no
new run past the limit; ``--lane I N`` runs every N-th selection run in a process of its own.
Writes ``results/sketch_baseline_sweep[--TAG].json``: the grid, both configuration counts,
every configuration's validation figure, the choices, and the final test figures per cell
beside the table's. Run from the repository root::

    python -m benchmarks.paper.sketch_baseline_sweep --out runs/sketch-sweep-beauty \\
        --stage select --max-hours 2
    python -m benchmarks.paper.sketch_baseline_sweep --out runs/sketch-sweep-beauty --stage final
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, add_tag_argument, data_dir, print_table, write_results
from leanrec.search.sketch.config import SketchConfig, SketchExperiment

SCRIPT = "sketch_baseline_sweep"
Config = dict[str, Any]
"""One point of the grid: SketchConfig field -> value."""
Log = Callable[[str], None]

GRID: dict[str, tuple[Any, ...]] = {
    "learning_rate": (2e-3, 5e-3, 1e-2, 2e-2),
    "batch_users": (32, 64),
    "inner_steps": (1, 2),
}
"""The shared base model's step size, users per batch and Eq. 7 inner steps: 16 configurations."""
TABLE_SETTING: Config = {"learning_rate": 5e-3, "batch_users": 64, "inner_steps": 2}
"""The Beauty table's setting (the one every policy of the table ran with)."""
TABLE_PROTOCOL: Config = {
    "steps_per_update": 1,
    "policy_learning_rate": 1e-3,
    "model_state_features": True,
}
"""The rest of the Beauty table's command line (a static policy has no policy to train, so the
policy's fields only keep the runs' configuration equal to the table's)."""
PROPOSED_CONFIGURATIONS = 14
"""Configurations over which DiPS's `leanrec` preset settings were chosen on validation
(docs/results/sketch.md, "Equal tuning")."""
STATIC_POLICIES = ("random", "hardest", "influence", "recent")
SELECTION_CELL = {"K": 4, "tau": 1, "seed": 0}
TABLE_CELLS = {"sketch_sizes": (2, 4, 8), "update_periods": (1, 4), "seeds": (0, 1, 2)}
METRIC = "recall@20"
STORED_TABLE = "sketch_table--beauty.json"


def configurations() -> list[Config]:
    """Every point of :data:`GRID`, in grid order."""
    return [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]


def config_tag(config: Config) -> str:
    """``lr0.005-b64-in2``: a configuration's directory name."""
    return f"lr{config['learning_rate']:g}-b{config['batch_users']}-in{config['inner_steps']}"


def sketch_experiment(
    dataset: str, method: str, config: Config, out: Path, final: bool
) -> SketchExperiment:
    """The ``leanrec experiment sketch`` run of ``method`` at ``config``: the selection cell,
    or (``final``) every cell of the table."""
    cells = TABLE_CELLS if final else {
        "sketch_sizes": (SELECTION_CELL["K"],),
        "update_periods": (SELECTION_CELL["tau"],),
        "seeds": (SELECTION_CELL["seed"],),
    }  # fmt: skip
    training = dataclasses.replace(SketchConfig(), **TABLE_PROTOCOL, **config)
    return SketchExperiment(
        dataset=dataset,
        data_dir=str(data_dir()),
        out_dir=str(out),
        methods=(method,),
        config=training,
        **cells,
    )


def _rows(out: Path) -> list[dict[str, Any]]:
    path = out / "rows.json"
    return json.loads(path.read_text()) if path.is_file() else []


def selection_value(out: Path) -> float | None:
    """The selection run's validation Recall@20 at its chosen epoch (None: not finished)."""
    rows = [r for r in _rows(out) if all(r[k] == v for k, v in SELECTION_CELL.items())]
    return float(rows[0]["valid"][METRIC]) if rows else None


def choose(values: dict[str, float]) -> str:
    """The tag with the best validation figure; a tie keeps the table's setting, then grid
    order."""
    best = max(values.values())
    tied = [tag for tag, value in values.items() if value == best]
    table = config_tag(TABLE_SETTING)
    return table if table in tied else tied[0]


Runner = Callable[[SketchExperiment], Any]
"""Runs (or resumes) one experiment: :func:`~leanrec.search.sketch.experiment.run_experiment`
on the registry dataset (tests give synthetic streams)."""


def cells_of(final: bool) -> int:
    """Rows a finished run holds: one selection cell, or every cell of the table."""
    if not final:
        return 1
    return int(np.prod([len(values) for values in TABLE_CELLS.values()]))


def run_stage(
    runs: list[tuple[str, Config, Path, bool]],
    dataset: str,
    runner: Runner,
    deadline: float,
    log: Log,
) -> bool:
    """Run (or resume) each ``(method, config, out, final)``; False when the time ran out
    first."""
    for method, config, out, final in runs:
        if len(_rows(out)) >= cells_of(final):
            continue
        if time.time() > deadline:
            log(f"time limit reached before {method} {config_tag(config)}: rerun to continue")
            return False
        began = time.perf_counter()
        log(f"{method} {config_tag(config)}{' (every cell)' if final else ''}: running")
        runner(sketch_experiment(dataset, method, config, out, final))
        log(f"{method} {config_tag(config)}: done in {time.perf_counter() - began:.0f} s")
    return True


def stored_table() -> dict[str, Any]:
    path = RESULTS_DIR / STORED_TABLE
    return json.loads(path.read_text()) if path.is_file() else {}


def collect(out: Path, methods: tuple[str, ...]) -> dict[str, Any]:
    """The results file: grid, counts, validation figures, choices and final test figures
    (null where not measured yet), with the stored table's test figures of each policy and of
    DiPS beside them."""
    grid = configurations()
    stored = stored_table()
    table = config_tag(TABLE_SETTING)
    cells = list(itertools.product(TABLE_CELLS["sketch_sizes"], TABLE_CELLS["update_periods"]))
    results: dict[str, Any] = {
        "dataset": "beauty-s3rec",
        "metric": METRIC,
        **{f"grid:{name}": ",".join(f"{v:g}" for v in values) for name, values in GRID.items()},
        "table_setting": table,
        "configurations_per_baseline": len(grid),
        "proposed_configurations": PROPOSED_CONFIGURATIONS,
        "selection_cell": "K=4, tau=1, split 0",
        "table_protocol": json.dumps(TABLE_PROTOCOL),
    }
    for k, tau in cells:
        results[f"dips:K{k}_tau{tau}:table_test_{METRIC}"] = stored.get(
            f"dips_K{k}_tau{tau}_test_recall20_mean"
        )
    for method in methods:
        values = {}
        for config in grid:
            value = selection_value(out / "select" / method / config_tag(config))
            results[f"{method}:{config_tag(config)}:valid_{METRIC}"] = value
            if value is not None:
                values[config_tag(config)] = value
        results[f"{method}:selection_runs"] = len(values)
        chosen = choose(values) if len(values) == len(grid) else None
        results[f"{method}:chosen"] = chosen
        results[f"{method}:chosen_valid_{METRIC}"] = values[chosen] if chosen else None
        results[f"{method}:table_setting_valid_{METRIC}"] = values.get(table)
        for k, tau in cells:
            stored_test = stored.get(f"{method}_K{k}_tau{tau}_test_recall20_mean")
            results[f"{method}:K{k}_tau{tau}:table_test_{METRIC}"] = stored_test
            tuned = None
            if chosen == table:
                tuned = stored_test
            elif chosen is not None:
                rows = [
                    r
                    for r in _rows(out / "final" / method / chosen)
                    if r["K"] == k and r["tau"] == tau and r["method"] == method
                ]
                if len(rows) == len(TABLE_CELLS["seeds"]):
                    tuned = float(np.mean([r["test"][METRIC] for r in rows]))
            results[f"{method}:K{k}_tau{tau}:tuned_test_{METRIC}"] = tuned
    return results


def run_stages(
    stage: str,
    out: Path,
    methods: tuple[str, ...],
    dataset: str,
    runner: Runner,
    deadline: float = float("inf"),
    lane: tuple[int, int] = (0, 1),
    log: Log = print,
) -> bool:
    """``select``: this lane's share of the selection runs; ``final``: every cell at each
    policy's choice, for the policies whose choice is not the table's setting; ``collect``:
    nothing. False when the time ran out first."""
    if stage == "select":
        index, lanes = lane
        pairs = list(itertools.product(methods, configurations()))[index::lanes]
        runs = [(m, c, out / "select" / m / config_tag(c), False) for m, c in pairs]
        return run_stage(runs, dataset, runner, deadline, log)
    if stage == "final":
        chosen = collect(out, methods)
        missing = [m for m in methods if chosen[f"{m}:chosen"] is None]
        if missing:
            raise SystemExit(f"selection not finished for {missing}: run --stage select first")
        by_tag = {config_tag(c): c for c in configurations()}
        runs = [
            (m, by_tag[chosen[f"{m}:chosen"]], out / "final" / m / chosen[f"{m}:chosen"], True)
            for m in methods
            if chosen[f"{m}:chosen"] != config_tag(TABLE_SETTING)
        ]
        return run_stage(runs, dataset, runner, deadline, log)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="beauty-s3rec")
    parser.add_argument("--out", default="runs/sketch-sweep-beauty")
    parser.add_argument("--methods", nargs="+", default=list(STATIC_POLICIES))
    parser.add_argument("--stage", choices=("select", "final", "collect"), default="select")
    parser.add_argument("--max-hours", type=float, default=float("inf"))
    parser.add_argument("--lane", nargs=2, type=int, default=(0, 1), metavar=("I", "N"))
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    os.environ.setdefault("LEANREC_PROGRESS", "0")
    out, methods = Path(args.out), tuple(args.methods)
    deadline = time.time() + args.max_hours * 3600

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    def runner(experiment: SketchExperiment) -> None:
        from leanrec.search.sketch.experiment import run_experiment

        run_experiment(experiment, log=lambda message: None)

    run_stages(args.stage, out, methods, args.dataset, runner, deadline, tuple(args.lane), log)
    results = collect(out, methods)
    rows = [
        [
            m,
            results[f"{m}:selection_runs"],
            results[f"{m}:chosen"] or "—",
            results[f"{m}:chosen_valid_{METRIC}"] or "—",
            results[f"{m}:table_setting_valid_{METRIC}"] or "—",
        ]
        for m in methods
    ]
    print_table(["policy", "selection runs", "chosen", "valid (chosen)", "valid (table's)"], rows)
    print(write_results(SCRIPT, results, args.tag))


if __name__ == "__main__":
    main()
