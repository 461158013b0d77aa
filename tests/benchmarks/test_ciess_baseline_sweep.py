"""The equal tuning sweep of CIESS's baselines stops at a time limit only at a retraining's
checkpoint, and a sweep run in pieces reaches the uninterrupted sweep's figures
(`python -m benchmarks.paper.ciess_baseline_sweep --max-hours H`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.paper import ciess_baseline_sweep


def _sweep(out: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict[str, Any]:
    """One call of the script on a tiny synthetic split (SU only, 2 of its step sizes, 2
    epochs a retraining); returns what it would write to ``results/``."""
    written: dict[str, Any] = {}
    monkeypatch.setattr(
        ciess_baseline_sweep, "RETRAIN_GRID", {"learning_rate": (0.005, 0.01), "l2": (1e-4,)}
    )
    monkeypatch.setattr(
        ciess_baseline_sweep, "write_results", lambda script, results, tag: written.update(results)
    )
    argv = ["ciess_baseline_sweep", "--dataset", "synthetic", "--model", "mf", "--methods", "su",
            "--out", str(out), "--retrain-max-epochs", "2", *extra]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    ciess_baseline_sweep.main()
    return written


def test_a_sweep_stopped_at_every_checkpoint_ends_with_the_uninterrupted_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _sweep(tmp_path / "whole", monkeypatch)
    legs = 0
    while True:
        legs += 1
        assert legs <= 60, "the sweep made no progress between stops"
        pieces = _sweep(tmp_path / "pieces", monkeypatch, "--max-hours", "0")
        if pieces:  # only a sweep that ran to its end writes its results
            break
        assert (tmp_path / "pieces" / "retraining.pt").exists()  # stopped at its checkpoint
    configurations = len(ciess_baseline_sweep.TARGETS) * 2
    # every retraining validates (and checkpoints) once, at its last epoch (eval_every = 2):
    # one stop each, then the leg that chooses and tests
    assert legs == configurations + 1
    assert pieces == whole
    state = json.loads((tmp_path / "pieces" / "sweep.json").read_text())
    assert len(state["valid"]) == configurations and len(state["test"]) == 3
    assert not (tmp_path / "pieces" / "retraining.pt").exists()
    # how far each cell got: all of it here, the choice the best validated so far
    for target in ciess_baseline_sweep.TARGETS:
        assert whole[f"scored:su:{target}"] == 2 and whole[f"scored:sr:{target}"] == 0
        assert whole[f"best_so_far:su:{target}:config"] == whole[f"chosen:su:{target}:config"]
        assert whole[f"best_so_far:sr:{target}:config"] == "none yet"


def test_a_sweep_in_pieces_reports_how_far_each_cell_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "partial"
    for _ in range(2):  # the first configuration of the first cell (c = 90%) ends in leg 2
        assert _sweep(out, monkeypatch, "--max-hours", "0") == {}
    # a background sweep can be followed: a line per validated epoch, each before its stop
    # (leg 1 validates the first configuration, leg 2 records it and validates the second)
    lines = capsys.readouterr().out.splitlines()
    validated = [i for i, line in enumerate(lines) if line.startswith("  epoch 2: loss ")]
    stops = [i for i, line in enumerate(lines) if line.startswith("time limit reached")]
    assert len(validated) == 2 and len(stops) == 2
    assert all(line < stop for line, stop in zip(validated, stops, strict=True))
    assert all("valid recall@20" in lines[i] for i in validated)
    written = _sweep(out, monkeypatch, "--no-run")
    assert written["scored:su:0.9"] == 1 and written["scored:su:0.8"] == 0
    assert written["best_so_far:su:0.9:config"] == '{"l2": 0.0001, "learning_rate": 0.005}'
    assert written["best_so_far:su:0.9:valid_recall@20"] > 0
    assert written["chosen:su:0.9:config"] == "not run"  # not tested before it is complete


def test_the_sweep_retrains_with_the_paper_presets_warm_up_and_keeps_one_per_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leanrec.search.embedding_size.config import FROM_SCRATCH_MIN_EPOCHS

    seen: list[int] = []
    real = ciess_baseline_sweep.retrain_with_sizes

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[6].min_epochs)  # the trainer configuration
        return real(*args, **kwargs)

    monkeypatch.setattr(ciess_baseline_sweep, "retrain_with_sizes", spy)
    written = _sweep(tmp_path / "sweep", monkeypatch)
    assert written["retrain_min_epochs"] == FROM_SCRATCH_MIN_EPOCHS
    assert seen and set(seen) == {FROM_SCRATCH_MIN_EPOCHS}
    # the same directory refuses another warm-up, naming the one it was swept with
    with pytest.raises(ValueError, match="swept with --retrain-min-epochs 30"):
        _sweep(tmp_path / "sweep", monkeypatch, "--retrain-min-epochs", "0")
    # a sweep written before the option had none: it resumes only with 0
    state_path = tmp_path / "sweep" / "sweep.json"
    state = json.loads(state_path.read_text())
    del state["retrain_min_epochs"]
    state_path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="swept with --retrain-min-epochs 0"):
        _sweep(tmp_path / "sweep", monkeypatch)
    assert (
        _sweep(tmp_path / "sweep", monkeypatch, "--retrain-min-epochs", "0")["retrain_min_epochs"]
        == 0
    )
    # and a sweep joined with --also must share it
    with pytest.raises(ValueError, match="swept with --retrain-min-epochs 0, this one with 30"):
        _sweep(tmp_path / "fresh", monkeypatch, "--no-run", "--also", str(tmp_path / "sweep"))


def test_a_sweep_that_outlives_its_directory_continues_from_its_progress_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    progress = tmp_path / "progress.json"
    whole = _sweep(tmp_path / "first", monkeypatch, "--progress", str(progress))
    kept = json.loads(progress.read_text())
    assert kept == json.loads((tmp_path / "first" / "sweep.json").read_text())
    # the directory goes, and with it the best models, before any cell was tested
    shutil.rmtree(tmp_path / "first")
    progress.write_text(json.dumps({**kept, "test": {}}))
    capsys.readouterr()
    again = _sweep(tmp_path / "second", monkeypatch, "--progress", str(progress))
    lines = capsys.readouterr().out.splitlines()
    # nothing is scored twice: each cell retrains its chosen configuration only, to test it
    assert not [line for line in lines if line.startswith("su c = ")]
    assert len([line for line in lines if "retraining the chosen" in line]) == 3
    assert {k: v for k, v in again.items() if k != "written"} == {
        k: v for k, v in whole.items() if k != "written"
    }
    assert json.loads(progress.read_text())["test"].keys() == kept["test"].keys()
    # a progress file joins another sweep's results as a sweep directory does
    joined = _sweep(tmp_path / "empty", monkeypatch, "--no-run", "--also", str(progress))
    assert joined["chosen:su:0.9:test_recall@20"] == whole["chosen:su:0.9:test_recall@20"]


def test_a_chosen_configuration_that_does_not_retrain_to_its_figure_is_not_tested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = tmp_path / "progress.json"
    _sweep(tmp_path / "first", monkeypatch, "--progress", str(progress))
    kept = json.loads(progress.read_text())
    key = next(k for k in kept["valid"] if k.endswith("|0.9"))
    kept["valid"][key]["valid"]["recall@20"] += 0.5  # the chosen one, and not what it retrains to
    progress.write_text(json.dumps({**kept, "test": {}}))
    with pytest.raises(RuntimeError, match=r"su\|0.9: the chosen configuration retrained to"):
        _sweep(tmp_path / "second", monkeypatch, "--progress", str(progress))


@pytest.mark.parametrize("budget", ["0.9", "0.8"])
def test_tuned_at_one_budget_each_other_budget_retrains_that_choice_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: str
) -> None:
    whole = _sweep(tmp_path / "whole", monkeypatch)
    tuned = _sweep(tmp_path / "tuned", monkeypatch, "--tune-at", budget)
    assert tuned["tuned_at"] == float(budget) and whole["tuned_at"] is None
    assert tuned[f"scored:su:{budget}"] == 2 and tuned[f"configurations:su:{budget}"] == 2
    choice = tuned[f"chosen:su:{budget}:config"]
    assert choice == whole[f"chosen:su:{budget}:config"]
    for c in {"0.8", "0.9", "0.95"} - {budget}:  # every cell tested, in one run
        assert tuned[f"scored:su:{c}"] == 1 and tuned[f"configurations:su:{c}"] == 1
        assert tuned[f"chosen:su:{c}:config"] == choice
        # the same seeded retraining as the whole sweep's for that configuration
        assert tuned[f"chosen:su:{c}:valid_recall@20"] == whole[f"valid:su:{c}:{choice}:recall@20"]
    with pytest.raises(ValueError, match=rf"swept with --tune-at {budget}, this one with None"):
        _sweep(tmp_path / "tuned", monkeypatch)
    with pytest.raises(SystemExit):
        _sweep(tmp_path / "other", monkeypatch, "--tune-at", "0.85")


def test_a_tuned_cell_chooses_among_its_own_configurations_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configurations scored at a budget before the sweep was tuned elsewhere do not compete
    with the tuned choice there."""
    progress = tmp_path / "progress.json"
    whole = _sweep(tmp_path / "whole", monkeypatch, "--progress", str(progress))
    kept = json.loads(progress.read_text())
    tuned_choice = whole["chosen:su:0.9:config"]
    other = next(k for k in kept["valid"] if k.endswith("|0.95") and tuned_choice not in k)
    kept["valid"][other]["valid"]["recall@20"] = 1.0  # the best at 95%, but not the choice
    kept["test"] = {"su|0.9": kept["test"]["su|0.9"]}
    progress.write_text(json.dumps(kept))
    tuned = _sweep(tmp_path / "tuned", monkeypatch, "--progress", str(progress), "--tune-at", "0.9")
    assert tuned["chosen:su:0.95:config"] == tuned_choice


def test_popularity_sizes_are_swept_like_uniform_ones_but_are_not_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    su = _sweep(tmp_path / "su", monkeypatch, "--tune-at", "0.9")
    popularity = _sweep(
        tmp_path / "popularity", monkeypatch, "--methods", "popularity", "--tune-at", "0.9"
    )
    assert popularity["popularity_sweep_configurations"] == popularity["su_sweep_configurations"]
    # the grid at 90%, its choice retrained at 80% and 95%, each tested once
    assert popularity["scored:popularity:0.9"] == 2 and popularity["scored:su:0.9"] == 0
    for target in (0.8, 0.95):
        assert popularity[f"configurations:popularity:{target}"] == 1
        assert (
            popularity[f"chosen:popularity:{target}:config"]
            == (popularity["chosen:popularity:0.9:config"])
        )
    for target in ciess_baseline_sweep.TARGETS:
        assert popularity[f"chosen:popularity:{target}:test_recall@20"] is not None
    # other sizes than SU's: the same configuration validates differently
    config = '{"l2": 0.0001, "learning_rate": 0.005}'
    assert (
        popularity[f"valid:popularity:0.9:{config}:recall@20"]
        != su[f"valid:su:0.9:{config}:recall@20"]
    )


def test_a_grid_widens_one_step_beyond_the_end_its_choice_sits_at() -> None:
    grid = {"learning_rate": (0.002, 0.005, 0.01), "l2": (1e-5, 1e-4, 1e-3)}
    corner = ciess_baseline_sweep.widened(grid, {"learning_rate": 0.01, "l2": 1e-3})
    assert corner == {"learning_rate": (0.002, 0.005, 0.01, 0.02), "l2": (1e-5, 1e-4, 1e-3, 0.01)}
    low = ciess_baseline_sweep.widened(grid, {"learning_rate": 0.002, "l2": 1e-4})
    assert low == {"learning_rate": (0.0008, 0.002, 0.005, 0.01), "l2": grid["l2"]}
    assert ciess_baseline_sweep.widened(grid, {"learning_rate": 0.005, "l2": 1e-4}) is None
    # a field of one value has no end to widen beyond
    assert ciess_baseline_sweep.widened({"learning_rate": (0.01,)}, {"learning_rate": 0.01}) is None


def test_widening_a_corner_choice_reopens_its_cells_and_scores_beyond_the_edge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress = tmp_path / "progress.json"
    first = _sweep(tmp_path / "first", monkeypatch, "--tune-at", "0.9", "--progress", str(progress))
    assert first["scored:su:0.9"] == 2  # a choice of two step sizes always sits at an end
    wide = _sweep(
        tmp_path / "wide", monkeypatch, "--tune-at", "0.9", "--progress", str(progress),
        "--widen-corner",
    )  # fmt: skip
    # one or two steps beyond the edge scored at 90% only; every budget tested again
    widened = wide["chosen:su:0.9:widened"]
    assert widened in (1, 2) and wide["scored:su:0.9"] == 2 + widened
    chosen = json.loads(wide["chosen:su:0.9:config"])
    moved = chosen != json.loads(first["chosen:su:0.9:config"])
    for target in (0.8, 0.95):  # the new choice retrained beside the first one's record
        assert json.loads(wide[f"chosen:su:{target}:config"]) == chosen
        assert wide[f"scored:su:{target}"] == 1 + moved
    steps = {
        json.loads(key.split(":", 3)[3].rsplit(":", 1)[0])["learning_rate"]
        for key in wide
        if key.startswith("valid:su:0.9:") and key.endswith(":recall@20")
    }
    assert steps - {0.005, 0.01} <= {0.0025, 0.00125, 0.02, 0.04} and len(steps) == 2 + widened
    # the best validation figure of the widened cell is the choice's
    best = max(
        value
        for key, value in wide.items()
        if key.startswith("valid:su:0.9:") and key.endswith(":recall@20")
    )
    assert wide["chosen:su:0.9:valid_recall@20"] == best
    # widened once, the cell stays closed: a rerun changes nothing
    again = _sweep(
        tmp_path / "wide", monkeypatch, "--tune-at", "0.9", "--progress", str(progress),
        "--widen-corner",
    )  # fmt: skip
    assert {k: v for k, v in again.items() if k != "written"} == {
        k: v for k, v in wide.items() if k != "written"
    }
