"""leanrec against river (`python -m benchmarks.peers.vs_river`): both sides get the same number
of settings, the tower of a setting is the tower of the model it builds, and the per-tower view
of the tuning trials."""

from __future__ import annotations

import dataclasses

import pytest
from benchmarks.peers import vs_river as script
from torch import nn

from leanrec.train.stream import expand_grid


def test_both_sides_tune_the_same_number_of_settings() -> None:
    leanrec = [c for g in script.LEANREC_GRIDS for c in expand_grid(script.LEANREC_BASE, g)]
    assert len(leanrec) == len(script._grid(script.RIVER_FM_GRID)) == 12
    assert len(script._grid(script.RIVER_MF_GRID)) == 12
    assert len({dataclasses.astuple(c) for c in leanrec}) == 12  # no setting twice
    assert {c.mlp_dims for c in leanrec} == set(script.LEANREC_TOWERS)
    assert all(isinstance(c, script.LeanrecSetting) for c in leanrec)


@pytest.mark.parametrize("tower", [(200, 80), (32,), ()])
def test_a_setting_builds_deepfm_with_its_tower(tower: tuple[int, ...]) -> None:
    setting = dataclasses.replace(script.LEANREC_BASE, mlp_dims=tower)
    trainer = script._leanrec_trainer(setting, seed=0)
    linears = [m for m in trainer.model.model.modules() if isinstance(m, nn.Linear)]
    # the tower reads the m * d = 3 * 16 stacked field vectors and ends in one logit
    widths = [(m.in_features, m.out_features) for m in linears]
    inputs = [48, *tower]
    assert widths == list(zip(inputs, [*tower, 1], strict=True))
    assert trainer.config is setting


def test_tower_names() -> None:
    assert script.tower_name((200, 80)) == "200-80"
    assert script.tower_name([32]) == "32"
    assert script.tower_name(()) == "none"


def test_the_tower_view_keeps_each_towers_best_score_and_mean_speed() -> None:
    def trial(tower: list[int], score: float | None, cpu_seconds: float) -> dict:
        config = {"mlp_dims": tower, "objective": "mse"}
        return {"config": config, "score": score, "cpu_seconds": cpu_seconds}

    tuning = {
        "validation_events": [750, 1000],  # 1,000 warm-up events per trial
        "trials": [
            trial([200, 80], -0.90, 0.01),  # 100,000 events per CPU second
            trial([200, 80], -0.88, 0.02),  # 50,000
            trial([32], None, 0.004),  # diverged: no score, still timed (250,000)
            trial([32], -0.89, 0.005),  # 200,000
        ],
    }
    view = script._tower_view("leanrec_mse", tuning)
    assert view == {
        "leanrec_mse_tower_200-80_validation_mse": pytest.approx(0.88),
        "leanrec_mse_tower_200-80_cpu_events_per_second": pytest.approx(75_000.0),
        "leanrec_mse_tower_32_validation_mse": pytest.approx(0.89),
        "leanrec_mse_tower_32_cpu_events_per_second": pytest.approx(225_000.0),
    }
