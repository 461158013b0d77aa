"""The adaptive experiment's warm-up runs and rows as executor jobs: the same rows, bit for bit,
whether they run in this process, through pickle as Ray ships them, or on Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from leanrec.cli import _executor_options, make_parser
from leanrec.runner import init_ray, shutdown_ray
from leanrec.search.adaptive import experiment as experiment_module
from leanrec.search.adaptive import run_experiment
from tests.runner.pickling import PicklingExecutor, comparable
from tests.search.adaptive.test_contract import tiny_experiment, tiny_stream

TIMING = ("seconds", "cpu_seconds", "decision_seconds", "session_seconds", "session_cpu_seconds")
"""Fields that measure this run's speed, not its result (in rows and in their sessions)."""


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread (the experiment sets it; the fixture restores the default)."""


def _table(out_dir: Path, **fields: Any) -> Any:
    return tiny_experiment(out_dir, 0, methods=("fixed_small", "adaptive"), **fields)


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _read(out_dir: Path, name: str) -> list[dict[str, Any]]:
    return _untimed(comparable(json.loads((out_dir / name).read_text())))


def test_rows_through_pickle_are_the_serial_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial_log: list[str] = []
    run_experiment(_table(tmp_path / "serial"), log=serial_log.append, stream=tiny_stream())
    assert any("streaming" in line for line in serial_log)  # rows log in process

    shipped = PicklingExecutor()
    monkeypatch.setattr(experiment_module, "search_executor", lambda *args, **kw: shipped)
    run_experiment(_table(tmp_path / "shipped"), log=lambda m: None, stream=tiny_stream())
    for name in ("warmup_scores.json", "rows.json"):
        assert _read(tmp_path / "shipped", name) == _read(tmp_path / "serial", name)
    scores = json.loads((tmp_path / "serial" / "warmup_scores.json").read_text())
    rows = json.loads((tmp_path / "serial" / "rows.json").read_text())
    # every warm-up run (fixed large and the λ grid), then every row; warm-up and stream
    # shared once each; the headline model saved by the job
    assert len(shipped.records) == len(scores) + len(rows) and shipped.shared == 2
    assert (tmp_path / "shipped" / "model_adaptive.pt").exists()
    assert not (tmp_path / "shipped" / "checkpoints").exists()  # every row finished


def test_row_tags_name_the_checkpoint_folders_as_before() -> None:
    """A run killed mid-row resumes from ``checkpoints/<tag>``: the tags must not change."""
    assert experiment_module.RowJob("fixed_small", None, 0, 0.02).tag == "fixed_small-none-seed0"
    job = experiment_module.RowJob("adaptive_leanrec", 0.005, 2, 0.02)
    assert job.tag == "adaptive_leanrec-0.005-seed2"
    assert experiment_module.RowJob("adaptive", 0.0, 1, 0.0).tag == "adaptive-0-seed1"


def test_the_command_line_routes_the_executor() -> None:
    args, _ = make_parser().parse_known_args(["experiment", "adaptive", "--executor", "ray"])
    assert _executor_options(args) == ["--executor", "ray"]


@pytest.mark.ray
def test_rows_on_ray_are_the_serial_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    run_experiment(_table(tmp_path / "serial"), log=lambda m: None, stream=tiny_stream())
    temp_dir = init_ray(num_cpus=2, log_to_driver=False)
    try:
        run_experiment(_table(tmp_path / "ray", executor="ray"), log=lambda m: None,
                       stream=tiny_stream())  # fmt: skip
    finally:
        shutdown_ray(temp_dir)
    assert _read(tmp_path / "ray", "rows.json") == _read(tmp_path / "serial", "rows.json")
