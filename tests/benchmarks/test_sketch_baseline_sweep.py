"""The equal-tuning sweep of DiPS's static baselines (`python -m
benchmarks.paper.sketch_baseline_sweep`, docs/results/sketch.md): the grid, the choice on
validation, resume, the final cells only where the choice moved, and one real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.paper import sketch_baseline_sweep as sweep

from leanrec.data.interactions import Interactions
from leanrec.data.streams import UserStreams
from leanrec.search.sketch.config import SketchExperiment
from leanrec.search.sketch.experiment import run_experiment


def test_the_grid_has_at_least_the_proposed_methods_count_and_the_tables_setting() -> None:
    grid = sweep.configurations()
    assert len(grid) == 16 >= max(6, sweep.PROPOSED_CONFIGURATIONS)
    tags = [sweep.config_tag(c) for c in grid]
    assert len(set(tags)) == 16
    assert sweep.config_tag(sweep.TABLE_SETTING) == "lr0.005-b64-in2" and "lr0.005-b64-in2" in tags


def test_a_tie_keeps_the_tables_setting() -> None:
    table = sweep.config_tag(sweep.TABLE_SETTING)
    assert sweep.choose({"lr0.002-b32-in1": 0.2, table: 0.2, "lr0.01-b64-in1": 0.1}) == table
    assert sweep.choose({"lr0.002-b32-in1": 0.3, table: 0.2}) == "lr0.002-b32-in1"


class FakeRunner:
    """Writes the rows a run would hold: validation Recall@20 peaks at ``best_rate[method]``,
    test = validation + 0.5 (so a test figure read by mistake would show)."""

    def __init__(self, best_rate: dict[str, float]) -> None:
        self.best_rate = best_rate
        self.runs: list[SketchExperiment] = []

    def __call__(self, experiment: SketchExperiment) -> None:
        self.runs.append(experiment)
        (method,) = experiment.methods
        rate = experiment.config.learning_rate
        value = 0.3 - abs(np.log(rate / self.best_rate[method])) / 100
        rows = [
            {"method": method, "K": k, "tau": tau, "seed": seed,
             "valid": {"recall@20": value}, "test": {"recall@20": value + 0.5 + seed / 100}}
            for seed in experiment.seeds
            for tau in experiment.update_periods
            for k in experiment.sketch_sizes
        ]  # fmt: skip
        out = Path(experiment.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows.json").write_text(json.dumps(rows))


def test_select_then_final_reads_test_only_of_the_final_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table_key = "random_K2_tau1_test_recall20_mean"
    monkeypatch.setattr(
        sweep, "stored_table", lambda: {table_key: 0.11, "recent_K2_tau1_test_recall20_mean": 0.12}
    )
    monkeypatch.setattr(
        sweep, "TABLE_CELLS", {"sketch_sizes": (2,), "update_periods": (1,), "seeds": (0, 1)}
    )
    # random does best at the table's step (5e-3), recent at 2e-2
    runner = FakeRunner({"random": 5e-3, "recent": 2e-2})
    methods = ("random", "recent")
    with pytest.raises(SystemExit, match="selection not finished"):
        sweep.run_stages("final", tmp_path, methods, "beauty-s3rec", runner)
    assert sweep.run_stages("select", tmp_path, methods, "beauty-s3rec", runner)
    assert len(runner.runs) == 32
    cell = runner.runs[0]
    assert (cell.sketch_sizes, cell.update_periods, cell.seeds) == ((4,), (1,), (0,))
    assert cell.config.steps_per_update == 1 and cell.config.model_state_features is True
    # a rerun finds every selection run finished
    sweep.run_stages("select", tmp_path, methods, "beauty-s3rec", runner)
    assert len(runner.runs) == 32
    results = sweep.collect(tmp_path, methods)
    # random ties at its best step across batch and inner steps: the table's setting is kept
    assert results["random:chosen"] == "lr0.005-b64-in2"
    assert results["recent:chosen"] == "lr0.02-b32-in1"  # a tie without it: grid order
    # no test figure of a run before its final cells; random's is the table's stored one
    assert results["recent:K2_tau1:tuned_test_recall@20"] is None
    assert results["random:K2_tau1:tuned_test_recall@20"] == 0.11
    sweep.run_stages("final", tmp_path, methods, "beauty-s3rec", runner)
    finals = runner.runs[32:]
    assert [r.methods for r in finals] == [("recent",)]  # random keeps the table's rows
    assert finals[0].seeds == (0, 1) and finals[0].sketch_sizes == (2,)
    assert finals[0].config.learning_rate == 2e-2
    results = sweep.collect(tmp_path, methods)
    assert results["random:K2_tau1:tuned_test_recall@20"] == 0.11
    assert results["recent:K2_tau1:tuned_test_recall@20"] == pytest.approx(0.3 + 0.5 + 0.005)
    assert results["recent:K2_tau1:table_test_recall@20"] == 0.12
    assert results["configurations_per_baseline"] == 16 and results["proposed_configurations"] == 14
    assert results["grid:batch_users"] == "32,64"
    assert not any(isinstance(v, (dict, list)) for v in results.values())  # a flat results file


def test_a_policy_keeping_the_tables_setting_keeps_the_tables_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sweep, "GRID", {"learning_rate": (5e-3, 2e-2), "batch_users": (64,), "inner_steps": (2,)}
    )
    monkeypatch.setattr(sweep, "stored_table", lambda: {"random_K2_tau1_test_recall20_mean": 0.11})
    runner = FakeRunner({"random": 5e-3})
    sweep.run_stages("select", tmp_path, ("random",), "beauty-s3rec", runner)
    sweep.run_stages("final", tmp_path, ("random",), "beauty-s3rec", runner)
    assert len(runner.runs) == 2  # no final run
    results = sweep.collect(tmp_path, ("random",))
    assert results["random:chosen"] == "lr0.005-b64-in2"
    assert results["random:K2_tau1:tuned_test_recall@20"] == 0.11


def test_a_selection_run_trains_and_validates_for_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    users, length = 40, 8
    data = Interactions.from_raw(
        np.repeat(np.arange(users), length),
        rng.integers(0, 15, users * length),
        timestamps=np.tile(np.arange(length), users),
    )
    streams = UserStreams.from_interactions(data, min_length=2)
    monkeypatch.setattr(
        sweep, "GRID", {"learning_rate": (5e-3,), "batch_users": (64,), "inner_steps": (2,)}
    )

    def runner(experiment: SketchExperiment) -> Any:
        import dataclasses

        quick = dataclasses.replace(experiment.config, epochs=1)
        return run_experiment(
            dataclasses.replace(experiment, config=quick), log=lambda m: None, streams=streams
        )

    sweep.run_stages("select", tmp_path, ("influence",), "beauty-s3rec", runner)
    value = sweep.selection_value(tmp_path / "select" / "influence" / "lr0.005-b64-in2")
    assert value is not None and 0.0 <= value <= 1.0
    assert sweep.collect(tmp_path, ("influence",))["influence:chosen"] == "lr0.005-b64-in2"
