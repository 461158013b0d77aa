"""DiPS's cells as executor jobs: the same rows and policies, bit for bit, whether the cells run
in this process, through pickle as Ray ships them, or on Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leanrec.runner import init_ray, shutdown_ray
from leanrec.search.sketch import SketchConfig, SketchExperiment, run_experiment
from leanrec.search.sketch import experiment as experiment_module
from tests.runner.pickling import PicklingExecutor, comparable
from tests.search.sketch.test_sketch import _synthetic_streams


def small_table(out_dir: Path, **fields: Any) -> SketchExperiment:
    """2 methods x 2 τ x 2 seeds = 8 cells of one epoch each."""
    return SketchExperiment(
        dataset="synthetic",
        out_dir=str(out_dir),
        methods=("random", "dips1"),
        sketch_sizes=(2,),
        update_periods=(1, 2),
        seeds=(0, 1),
        config=SketchConfig(epochs=1, batch_users=16, queue_size=2),
        **fields,
    )


def _rows(out_dir: Path) -> list[dict[str, Any]]:
    return comparable(json.loads((out_dir / "rows.json").read_text()))


def test_cells_through_pickle_give_the_serial_rows_and_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = _synthetic_streams()
    serial_log: list[str] = []
    run_experiment(small_table(tmp_path / "serial"), log=serial_log.append, streams=streams)
    assert any("training on" in line for line in serial_log)  # cells log in process

    shipped = PicklingExecutor()
    monkeypatch.setattr(experiment_module, "search_executor", lambda *args, **kw: shipped)
    run_experiment(small_table(tmp_path / "shipped"), log=lambda m: None, streams=streams)
    assert _rows(tmp_path / "shipped") == _rows(tmp_path / "serial")
    assert len(shipped.records) == 8 and shipped.shared == 2  # one split per seed
    for tau in (1, 2):
        name = f"policy_dips1_K2_tau{tau}.pt"
        assert (tmp_path / "shipped" / name).read_bytes() == (
            tmp_path / "serial" / name
        ).read_bytes()
    assert not list((tmp_path / "shipped" / "cells").glob("*.pt"))


def test_a_resumed_table_runs_only_the_missing_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams = _synthetic_streams()
    run_experiment(small_table(tmp_path / "run"), log=lambda m: None, streams=streams)
    rows_path = tmp_path / "run" / "rows.json"
    full = json.loads(rows_path.read_text())
    rows_path.write_text(json.dumps([r for r in full if r["seed"] == 0]))
    shipped = PicklingExecutor()
    monkeypatch.setattr(experiment_module, "search_executor", lambda *args, **kw: shipped)
    run_experiment(small_table(tmp_path / "run"), log=lambda m: None, streams=streams)
    assert len(shipped.records) == 4 and shipped.shared == 1  # seed 1's cells and split only
    assert comparable(json.loads(rows_path.read_text())) == comparable(full)


def test_the_executor_setting_is_checked() -> None:
    with pytest.raises(ValueError, match="executor"):
        small_table(Path("unused"), executor="threads")


@pytest.mark.ray
def test_cells_on_ray_give_the_serial_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    streams = _synthetic_streams()
    run_experiment(small_table(tmp_path / "serial"), log=lambda m: None, streams=streams)
    temp_dir = init_ray(num_cpus=2, log_to_driver=False)
    try:
        run_experiment(
            small_table(tmp_path / "ray", executor="ray"), log=lambda m: None, streams=streams
        )
    finally:
        shutdown_ray(temp_dir)
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "serial")
