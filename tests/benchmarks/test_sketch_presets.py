"""The DiPS presets collector sets the ``paper`` rows beside the stored rows of the same splits."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.paper.sketch_presets import (
    DATASETS,
    leanrec_cells,
    preset_cells,
    prior_chosen_cells,
)

METHODS = ("random", "hardest", "influence", "recent", "dips1", "dips")


def _stored(seeds: tuple[int, ...]) -> dict[str, Any]:
    """ML-1M-like stored keys: method m, split s scores 0.9 + 0.01 m + 0.001 s; validation
    curve of three epochs, best at epoch 2."""
    stored: dict[str, Any] = {}
    for m, method in enumerate(METHODS):
        for s in seeds:
            stem = f"{method}_K2_tau1_seed{s}"
            stored[f"{stem}_test_rmse"] = 0.9 + 0.01 * m + 0.001 * s
            stored[f"{stem}_valid_rmse_by_epoch"] = f"0.99,{0.95 + s / 100:.4f},0.97"
            stored[f"{stem}_best_epoch"] = 2
    return stored


def _paper_row(seed: int, rmse: float) -> dict[str, Any]:
    return {
        "method": "dips", "K": 2, "tau": 1, "seed": seed, "test": {"rmse": rmse},
        "valid": {"rmse": rmse + 0.01}, "best_epoch": 1, "seconds": 60.0 + seed,
    }  # fmt: skip


def test_ml1m_cells_compare_the_same_splits() -> None:
    results: dict[str, Any] = {}
    stored = _stored((0, 1, 2))
    table = preset_cells(
        results, stored, [_paper_row(0, 0.95), _paper_row(2, 0.93)], DATASETS["ml-1m"]
    )
    assert results["paper_K2_tau1_seeds"] == 2
    assert results["paper_K2_tau1_test_rmse_mean"] == pytest.approx(0.94)
    assert results["paper_K2_tau1_test_rmse_std"] == pytest.approx(0.0141421, abs=1e-6)
    # the stored dips column is the every-2-steps variant; only splits 0 and 2 are averaged
    assert results["every2_K2_tau1_same_splits_test_rmse_mean"] == pytest.approx(0.951)
    assert results["dips1_K2_tau1_same_splits_test_rmse_mean"] == pytest.approx(0.941)
    assert "every2_K2_tau1_seed1_test_rmse" not in results
    assert results["random_K2_tau1_seed2_valid_rmse"] == pytest.approx(0.97)  # epoch 2 of 3
    assert results["paper_K2_tau1_seed2_seconds"] == 62.0
    assert "paper_K4_tau1_test_rmse_mean" not in results and results["paper_K4_tau1_seeds"] == 0
    (line,) = table
    assert line[:3] == [1, 2, 2] and len(line) == 3 + 4 + 1 + 1 + 1
    assert line[-1] == pytest.approx(0.94) and line[-2] == pytest.approx(0.951)


def test_a_split_missing_from_the_stored_table_is_an_error() -> None:
    with pytest.raises(KeyError, match="seed3"):
        preset_cells({}, _stored((0,)), [_paper_row(3, 0.9)], DATASETS["ml-1m"])


def test_beauty_keeps_its_keys() -> None:
    stored = {key.replace("rmse", "recall20"): value for key, value in _stored((0,)).items()}
    row = _paper_row(0, 0.1)
    row["test"] = {"recall@20": 0.1, "mrr@20": 0.05}
    row["valid"] = {"recall@20": 0.11}
    results: dict[str, Any] = {}
    preset_cells(results, stored, [row], DATASETS["beauty"])
    assert results["paper_K2_tau1_seed0_test_mrr20"] == 0.05
    assert results["leanrec_K2_tau1_same_splits_test_recall20_mean"] == pytest.approx(0.95)
    assert not any(key.startswith("dips1_") for key in results)


def test_ml1m_leanrec_cells_compare_the_splits_they_ran() -> None:
    """A ``leanrec`` column run on split 1 only is set beside every policy's split-1 figure,
    the ``paper`` preset's included, though those ran splits 0-2."""
    results: dict[str, Any] = {}
    stored = _stored((0, 1, 2))
    stored["random_K2_tau1_seed2_test_rmse"] = 0.99  # so no mean over 0-2 equals split 1's
    stored["dips_K2_tau1_seed0_test_rmse"] = 0.90
    spec = DATASETS["ml-1m"]
    preset_cells(
        results, stored, [_paper_row(s, rmse) for s, rmse in enumerate((0.9, 0.96, 1.0))], spec
    )
    leanrec = _paper_row(1, 0.92)
    (line,) = leanrec_cells(results, stored, [leanrec], spec)
    assert results["leanrec_K2_tau1_splits"] == "1" and results["leanrec_K2_tau1_seeds"] == 1
    assert results["leanrec_K2_tau1_test_rmse_mean"] == pytest.approx(0.92)
    assert results["leanrec_K2_tau1_test_rmse_std"] == 0.0
    assert results["random_K2_tau1_leanrec_splits_test_rmse_mean"] == pytest.approx(0.901)
    assert results["every2_K2_tau1_leanrec_splits_test_rmse_mean"] == pytest.approx(0.951)
    assert results["paper_K2_tau1_leanrec_splits_test_rmse_mean"] == pytest.approx(0.96)
    assert results["leanrec_K2_tau1_seed1_valid_rmse"] == pytest.approx(0.93)
    assert results["leanrec_K4_tau1_seeds"] == 0 and "leanrec_K4_tau1_splits" not in results
    assert line[:3] == [1, 2, 1] and len(line) == 3 + 4 + 1 + 1 + 1 + 1
    assert line[-1] == pytest.approx(0.92) and line[-2] == pytest.approx(0.96)


def test_a_leanrec_split_the_paper_preset_did_not_run_is_an_error() -> None:
    results: dict[str, Any] = {}
    stored = _stored((0, 1))
    preset_cells(results, stored, [_paper_row(0, 0.95)], DATASETS["ml-1m"])
    with pytest.raises(KeyError, match="paper_K2_tau1_seed1"):
        leanrec_cells(results, stored, [_paper_row(1, 0.92)], DATASETS["ml-1m"])


def test_leanrec_cells_refuse_a_stored_leanrec_column() -> None:
    """Beauty's stored DiPS column is the ``leanrec`` preset: a second one would overwrite it."""
    with pytest.raises(ValueError, match="already the leanrec preset"):
        leanrec_cells({}, {}, [_paper_row(0, 0.1)], DATASETS["beauty"])


def test_the_recency_prior_is_chosen_per_split_on_validation() -> None:
    """RMSE: the lower validation wins; the chosen column takes that run's test figure, not
    the better test figure (split 1's β = 0 run tests better but validates worse)."""

    def run(seed: int, valid: float, test: float) -> dict[str, Any]:
        row = _paper_row(seed, test)
        row["valid"] = {"rmse": valid}
        return row

    with_prior = [run(0, 0.95, 0.94), run(1, 0.93, 0.92), run(2, 0.97, 0.96), run(3, 0.9, 0.8)]
    without_prior = [run(0, 0.96, 0.90), run(1, 0.94, 0.91), run(2, 0.96, 0.99), run(3, 0.9, 0.7)]
    results: dict[str, Any] = {}
    (line,) = prior_chosen_cells(
        results, with_prior, without_prior, "no_recency_prior", DATASETS["ml-1m"]
    )
    # split 3 ties on validation: β = 1 is kept (its test is the worse one)
    assert [results[f"prior_chosen_K2_tau1_seed{s}_beta"] for s in range(4)] == [1, 1, 0, 1]
    assert results["prior_chosen_K2_tau1_seed2_test_rmse"] == 0.99
    mean = (0.94 + 0.92 + 0.99 + 0.8) / 4
    assert results["prior_chosen_K2_tau1_test_rmse_mean"] == pytest.approx(mean)
    assert results["prior_chosen_K2_tau1_beta1_count"] == 3
    assert line == [1, 2, 4, 3, pytest.approx(mean)]


def test_a_nan_validation_figure_is_an_error() -> None:
    row = _paper_row(0, 0.9)
    row["valid"] = {"rmse": float("nan")}
    with pytest.raises(ValueError, match="split 0: a validation figure is NaN"):
        prior_chosen_cells({}, [_paper_row(0, 0.9)], [row], "x", DATASETS["ml-1m"])


def test_recall_chooses_the_higher_validation_and_splits_must_match() -> None:
    def run(seed: int, valid: float, test: float) -> dict[str, Any]:
        row = _paper_row(seed, 0.0)
        row["valid"], row["test"] = {"recall@20": valid}, {"recall@20": test}
        return row

    results: dict[str, Any] = {}
    prior_chosen_cells(
        results, [run(0, 0.10, 0.2)], [run(0, 0.12, 0.1)], "no_recency_prior", DATASETS["beauty"]
    )
    assert results["prior_chosen_K2_tau1_seed0_beta"] == 0
    assert results["prior_chosen_K2_tau1_seed0_test_recall20"] == 0.1
    with pytest.raises(ValueError, match=r"K2_tau1: the leanrec runs have splits \[0\]"):
        prior_chosen_cells({}, [run(0, 0.1, 0.1)], [run(1, 0.1, 0.1)], "x", DATASETS["beauty"])


def test_the_record_rewrite_keeps_the_measured_keys_and_counts_the_sweep(tmp_path: Any) -> None:
    import json

    from benchmarks.paper import sketch_presets

    path = tmp_path / "sketch_presets--beauty.json"
    stale = {
        "stored": "results/sketch_table--beauty.json",
        "written": "2026-01-01T00:00:00",
        "cpu": "old machine",
        "paper_K2_tau1_test_recall20_mean": 0.1234,
        "fair_sweep_cpu_hours": 36.0,
        "fair_sweep_stale_note": "gone",
        "tuning_baselines_configurations": 0,
    }
    path.write_text(json.dumps(stale))
    sketch_presets.rewrite_record(path, "beauty")
    rewritten = json.loads(path.read_text())
    # measured keys, machine and time untouched; the record's stale keys gone or replaced
    for key in ("written", "cpu", "paper_K2_tau1_test_recall20_mean"):
        assert rewritten[key] == stale[key]
    assert "fair_sweep_stale_note" not in rewritten
    assert (
        rewritten["fair_sweep_cpu_hours"]
        == sketch_presets.BEAUTY_FAIR_SWEEP["fair_sweep_cpu_hours"]
    )
    sweep = json.loads(sketch_presets.results_path("sketch_baseline_sweep", "beauty").read_text())
    assert rewritten["tuning_baselines_configurations"] == sweep["configurations_per_baseline"]
    assert rewritten["tuning_baselines_configurations"] == 16
    assert "record_rewritten" in rewritten
    # the Beauty file is not ML-1M's, and ML-1M's record has no sweep of the static policies
    with pytest.raises(ValueError, match=r"not ml-1m's results/sketch_table\.json"):
        sketch_presets.rewrite_record(path, "ml-1m")
    path.write_text(json.dumps({**stale, "stored": "results/sketch_table.json"}))
    sketch_presets.rewrite_record(path, "ml-1m")
    again = json.loads(path.read_text())
    assert again["tuning_baselines_configurations"] == 0 and "fair_sweep" not in again
