"""CIESS's selective retraining and validation screen as executor jobs: the same rows, bit for
bit, whether the masks run in this process, through pickle as Ray ships them, or on Ray."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from leanrec.runner import SerialExecutor, init_ray, shutdown_ray
from leanrec.search.embedding_size import EmbeddingSizeExperiment, run_experiment
from leanrec.search.embedding_size import experiment as experiment_module
from leanrec.train.bpr import TrainerConfig
from tests.runner.pickling import PicklingExecutor, comparable
from tests.search.embedding_size.search_job import tiny_config


def two_mask_experiment(out_dir: Path, **search: Any) -> EmbeddingSizeExperiment:
    """A tiny LightGCN run: 3 candidates screened under both projections (6 screen jobs), the
    2 best retrained (2 retraining jobs), and SU's single mask (1 job)."""
    small = TrainerConfig(
        max_epochs=2,
        batch_size=2048,
        learning_rate=0.01,
        eval_every=1,
        ks=[20],
        progress=False,
        valid_metric="recall@20",
    )
    config = dataclasses.replace(
        tiny_config(),
        pretrain=small,
        retrain=small,
        target_sparsities=(0.8,),
        top_masks=2,
        screen_masks=3,
        budget_projection="both",
        **search,
    )
    return EmbeddingSizeExperiment(
        dataset="synthetic",
        model="lightgcn",
        out_dir=str(out_dir),
        methods=("ciess", "su"),
        search=config,
    )


def _rows(out_dir: Path) -> list[dict[str, Any]]:
    return comparable(json.loads((out_dir / "rows.json").read_text()))


def test_masks_through_pickle_give_the_serial_rows_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial_log: list[str] = []
    serial = run_experiment(two_mask_experiment(tmp_path / "serial"), log=serial_log.append)
    ciess = next(r for r in serial.rows if r["method"] == "ciess")
    assert ciess["screened"] == 6 and len(ciess["candidates_retrained"]) == 2
    assert any("mask 2/2: retraining" in line for line in serial_log)  # logged in process

    shipped = PicklingExecutor()
    monkeypatch.setattr(experiment_module, "search_executor", lambda *args, **kw: shipped)
    shipped_log: list[str] = []
    run_experiment(two_mask_experiment(tmp_path / "shipped"), log=shipped_log.append)
    assert _rows(tmp_path / "shipped") == _rows(tmp_path / "serial")
    # 6 screen jobs, 2 + 1 retraining jobs; the split and the warm start shared once each for
    # the retraining, the warm start and the split once for the screen
    assert len(shipped.records) == 9
    assert shipped.shared == 2
    assert any("mask 2/2: valid recall@20" in line for line in shipped_log)
    assert not list((tmp_path / "shipped" / "retrain").glob("*.pt"))  # checkpoints removed


def test_the_experiment_opens_the_executor_its_config_names() -> None:
    assert isinstance(experiment_module.search_executor("serial"), SerialExecutor)
    with pytest.raises(ValueError, match="executor"):
        dataclasses.replace(tiny_config(), executor="threads")


@pytest.mark.ray
def test_masks_on_ray_give_the_serial_rows_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    run_experiment(two_mask_experiment(tmp_path / "serial"), log=lambda m: None)
    temp_dir = init_ray(num_cpus=2, log_to_driver=False)  # 127.0.0.1, two jobs at once
    try:
        run_experiment(two_mask_experiment(tmp_path / "ray", executor="ray"), log=lambda m: None)
    finally:
        shutdown_ray(temp_dir)
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "serial")
