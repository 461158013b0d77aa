"""AutoAssign+'s table as executor jobs: the same warm-up scores and rows, bit for bit, whether
they run in this process, through pickle as Ray ships them, or on Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leanrec.cli import _executor_options, make_parser
from leanrec.options import build_configs
from leanrec.runner import init_ray, shutdown_ray
from leanrec.search.shared_embedding import (
    AutoAssignConfig,
    SharedEmbeddingExperiment,
    run_experiment,
)
from leanrec.search.shared_embedding import experiment as experiment_module
from tests.runner.pickling import PicklingExecutor, comparable
from tests.search.shared_embedding.test_contract import tiny_experiment, tiny_stream

TIMING = ("events_per_second", "seconds")
"""Row fields that measure this run's speed, not its result."""


def small_table(out_dir: Path, **fields: Any) -> Any:
    """3 methods x 2 seeds: 4 warm-up scores per seed (the hierarchy has two knobs), 6 rows."""
    return tiny_experiment(
        out_dir, 0, methods=("all_unique", "threshold_hierarchy", "autoassign_leanrec"),
        seeds=(0, 1), levels_grid=(1,), agent=AutoAssignConfig(batch_size=64, replay_size=2000),
        **fields,
    )  # fmt: skip


def _read(out_dir: Path, name: str) -> list[dict[str, Any]]:
    rows = comparable(json.loads((out_dir / name).read_text()))
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_rows_through_pickle_are_the_serial_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial_log: list[str] = []
    run_experiment(small_table(tmp_path / "serial"), log=serial_log.append, stream=tiny_stream())
    assert any("streaming" in line for line in serial_log)  # rows log in process

    shipped = PicklingExecutor()
    monkeypatch.setattr(experiment_module, "search_executor", lambda *args, **kw: shipped)
    run_experiment(small_table(tmp_path / "shipped"), log=lambda m: None, stream=tiny_stream())
    for name in ("warmup_scores.json", "rows.json"):
        assert _read(tmp_path / "shipped", name) == _read(tmp_path / "serial", name)
    # 2 seeds x (1 + 2 + 1) knobs scored, then 2 x 3 rows; the warm-up and the stream are
    # shared once each
    assert len(shipped.records) == 8 + 6 and shipped.shared == 2
    assert not (tmp_path / "shipped" / "checkpoints").exists()


def test_a_resumed_table_runs_only_the_missing_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_experiment(small_table(tmp_path / "run"), log=lambda m: None, stream=tiny_stream())
    rows_path = tmp_path / "run" / "rows.json"
    full = json.loads(rows_path.read_text())
    rows_path.write_text(json.dumps([r for r in full if r["seed"] == 0]))
    shipped = PicklingExecutor()
    monkeypatch.setattr(experiment_module, "search_executor", lambda *args, **kw: shipped)
    run_experiment(small_table(tmp_path / "run"), log=lambda m: None, stream=tiny_stream())
    # the warm-up scores are cached: only seed 1's three rows run, with the stream shared once
    assert len(shipped.records) == 3 and shipped.shared == 1
    assert _read(tmp_path / "run", "rows.json") == [
        {k: v for k, v in row.items() if k not in TIMING} for row in comparable(full)
    ]


def test_row_tags_name_the_checkpoint_folders_as_before() -> None:
    """A run killed mid-row resumes from ``checkpoints/<tag>``: the tags must not change."""
    job = experiment_module.RowJob("bce", "autoassign", 2.0, 0, chosen=True, warmup_score=0.7)
    assert job.tag == "bce-autoassign-2-seed0"
    job = experiment_module.RowJob("mse", "qr", 0.25, 3, chosen=False, warmup_score=None)
    assert job.tag == "mse-qr-0.25-seed3"


def test_the_executor_setting_is_checked_and_the_command_line_routes_it() -> None:
    with pytest.raises(ValueError, match="executor"):
        small_table(Path("unused"), executor="threads")
    args, _ = make_parser().parse_known_args(
        ["experiment", "shared-embedding", "--executor", "ray", "--executor-cpus-per-job", "2"]
    )
    options = _executor_options(args)
    assert options == ["--executor", "ray", "--executor_cpus_per_job", "2.0"]
    (config,) = build_configs({"executor": "ray", "executor_cpus_per_job": 2.0},
                              [SharedEmbeddingExperiment])  # fmt: skip
    assert (config.executor, config.executor_cpus_per_job) == ("ray", 2.0)


@pytest.mark.ray
def test_rows_on_ray_are_the_serial_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    run_experiment(small_table(tmp_path / "serial"), log=lambda m: None, stream=tiny_stream())
    temp_dir = init_ray(num_cpus=2, log_to_driver=False)
    try:
        run_experiment(
            small_table(tmp_path / "ray", executor="ray"), log=lambda m: None, stream=tiny_stream()
        )
    finally:
        shutdown_ray(temp_dir)
    assert _read(tmp_path / "ray", "rows.json") == _read(tmp_path / "serial", "rows.json")


def test_a_knob_grid_may_grow_on_resume_but_not_change(tmp_path: Path) -> None:
    def table(grid: tuple[int, ...]) -> Any:
        return tiny_experiment(tmp_path / "run", 0, methods=("threshold",), curves=True,
                               threshold_grid=grid)  # fmt: skip

    first = run_experiment(table((2,)), log=lambda m: None, stream=tiny_stream())
    grown = run_experiment(table((2, 5)), log=lambda m: None, stream=tiny_stream())
    assert [r["knob"] for r in first.rows] == [2.0]
    assert sorted(r["knob"] for r in grown.rows) == [2.0, 5.0]
    assert _read(tmp_path / "run", "rows.json")[0] == {
        k: v for k, v in comparable(first.rows)[0].items() if k not in TIMING
    }  # the stored row is kept, not run again
    with pytest.raises(ValueError, match="threshold_grid"):
        run_experiment(table((5,)), log=lambda m: None, stream=tiny_stream())
