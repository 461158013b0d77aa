"""``leanrec tune`` on a tiny dataset: the outputs, the choice on validation, the best config
trained again by ``leanrec train``, and a killed tuning run resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from leanrec.cli import build_train_config, main, make_parser
from leanrec.train.bpr import TrainerConfig

REPO = Path(__file__).resolve().parents[2]
SPACE = "lr: {loguniform: [0.002, 0.05]}\nl2: {loguniform: [1.0e-6, 1.0e-3]}\n"

pytestmark = pytest.mark.ray


@pytest.fixture(autouse=True)
def _needs_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local cluster of its own
    if ray.is_initialized():
        ray.shutdown()


def _tune_args(tmp_path: Path, trials: int, *more: str) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return [
        "tune",
        "--dataset",
        "synthetic",
        "--model",
        "mf",
        "--space",
        str(space),
        "--out",
        str(tmp_path / "out"),
        "--trials",
        str(trials),
        "--max-epochs",
        "3",
        "--grace",
        "1",
        "--time-budget",
        "300",
        "--embedding_dim",
        "8",
        *more,
    ]


def _finished_trials(experiment: Path) -> dict[str, list[dict[str, Any]]]:
    """``{trial id: its reports}`` of the trials Tune marked done."""
    done = {}
    for result in experiment.glob("*/result.json"):
        reports = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if reports and reports[-1].get("done"):
            done[reports[-1]["trial_id"]] = reports
    return done


def test_tune_writes_the_trials_and_the_best_config_chosen_on_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_tune_args(tmp_path, 4)) == 0
    out = tmp_path / "out"
    rows = json.loads((out / "trials.json").read_text())
    best = json.loads((out / "best_config.json").read_text())
    assert len(rows) == 4
    # the best config is the trial with the best validation, and the table is sorted by it
    values = [row["best_valid"] for row in rows]
    assert values == sorted(values, reverse=True)
    assert best["trial"] == rows[0]["trial"] == max(rows, key=lambda r: r["best_valid"])["trial"]
    assert best["valid"]["ndcg@20"] == rows[0]["best_valid"]  # synthetic: ndcg@20 selects
    assert "test" not in json.dumps(best)  # chosen on validation, test never read
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("rank,trial,valid,")
    assert set(rows[0]["options"]) == {"learning_rate", "l2"}
    assert "best config" in capsys.readouterr().out

    # the best config is what `leanrec train` trains: same settings, same validation
    args, extra = make_parser().parse_known_args(["train", *best["train_args"]])
    config = build_train_config(args, extra)
    resolved = {"valid_metric": None, "ks": None, "progress": None}  # leanrec train's own
    assert config.trainer == TrainerConfig(**{**best["trainer"], **resolved})
    assert config.model_options == best["model_options"] == {"embedding_dim": 8}
    run_dir = tmp_path / "train"
    assert main(["train", *best["train_args"], "--run-dir", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["valid_ndcg@20"] == best["valid"]["ndcg@20"]  # bit for bit
    assert (out / "best_train_args.txt").read_text().startswith("leanrec train --dataset synthetic")

    # an existing run is not overwritten without --resume
    assert main(_tune_args(tmp_path, 4)) == 2
    assert "holds a tuning run" in capsys.readouterr().err


def test_a_killed_tuning_run_resumes_keeping_its_finished_trials(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-m", "leanrec.cli", *_tune_args(tmp_path, 6, "--max-epochs", "6")],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its local Ray cluster too: all stopped by the group's id
    )
    deadline = time.monotonic() + 240
    try:
        while len(_finished_trials(out / "trials")) < 2:
            assert first.poll() is None, "the tuning run ended before it could be killed"
            assert time.monotonic() < deadline, "no two trials finished in time"
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    before = _finished_trials(out / "trials")
    assert not (out / "trials.json").exists()  # killed before the end
    assert main([*_tune_args(tmp_path, 6, "--max-epochs", "6"), "--resume"]) == 0
    rows = {row["trial"]: row for row in json.loads((out / "trials.json").read_text())}
    assert len(rows) == 6
    after = _finished_trials(out / "trials")
    for trial, reports in before.items():  # kept, not trained again
        assert after[trial] == reports
        assert rows[trial]["best_valid"] == max(r["valid"] for r in reports)
    (tmp_path / "nothing").mkdir()
    assert main([*_tune_args(tmp_path / "nothing", 2), "--resume"]) == 2  # nothing to resume
