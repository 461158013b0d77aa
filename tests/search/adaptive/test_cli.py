"""``leanrec experiment adaptive``: options reach the experiment, bad ones are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import leanrec.search.adaptive as adaptive
from leanrec.cli import main
from leanrec.runner.rundir import RunDirectory
from leanrec.search.base import ExperimentResult


def _capture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    seen: list[Any] = []

    def fake_run(experiment: Any, log: Any, **_: Any) -> ExperimentResult:
        seen.append(experiment)
        return ExperimentResult("adaptive", RunDirectory(tmp_path, log=None), [{}], {})

    monkeypatch.setattr(adaptive, "run_experiment", fake_run)
    return seen


def test_options_reach_the_experiment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = _capture(monkeypatch, tmp_path)
    argv = ["experiment", "adaptive", "--dataset", "ml-100k", "--seeds", "0", "1",
            "--methods", "fixed_small", "adaptive", "--sessions", "5", "--session_by", "week",
            "--lambda_grid", "[0,0.1]", "--controller_protection", "ewc",
            "--trainer_batch_size", "128"]  # fmt: skip
    assert main(argv) == 0
    experiment = seen[0]
    assert (experiment.dataset, experiment.model) == ("ml-100k", "deepfm")
    assert experiment.seeds == (0, 1) and experiment.methods == ("fixed_small", "adaptive")
    assert (experiment.sessions, experiment.session_by) == (5, "week")
    assert experiment.lambda_grid == (0.0, 0.1)
    assert experiment.controller.protection == "ewc"
    assert experiment.trainer.batch_size == 128
    assert experiment.out_dir == "runs/adaptive-ml-100k-deepfm"
    assert main(["experiment", "adaptive", "--dataset", "ml-100k"]) == 0
    assert seen[1].methods == adaptive.METHODS.names() and seen[1].seeds == (0, 1, 2)


def test_bad_options_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = _capture(monkeypatch, tmp_path)
    base = ["experiment", "adaptive", "--dataset", "ml-100k"]
    assert main([*base, "--controller_protection", "dropout"]) == 2
    assert "expected one of 'none', 'freeze', 'ewc'" in capsys.readouterr().err
    assert main([*base, "--controller_protectio", "ewc"]) == 2
    assert "did you mean 'controller_protection'" in capsys.readouterr().err
    assert main([*base, "--model", "lightgcn2"]) == 2
    assert "deep tower" in capsys.readouterr().err
    assert seen == []
