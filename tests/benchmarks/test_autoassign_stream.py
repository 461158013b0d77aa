"""The AutoAssign+ stream benchmark (`python -m benchmarks.paper.autoassign_stream`): the rule
for "above a baseline's curve", the goals computed from rows, and a quick run on a synthetic
stream that adds a second method group to the same run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmarks.paper import autoassign_stream as script
from benchmarks.paper.autoassign_stream import against_curve, summarise_dataset

CURVE = [(400.0, 0.76), (100.0, 0.70), (200.0, 0.74)]  # any order; sorted by bytes inside


def test_inside_the_byte_range_the_curve_is_interpolated_linearly_in_bytes() -> None:
    # at 300 bytes: halfway between (200, 0.74) and (400, 0.76) -> 0.75
    assert against_curve(CURVE, 300.0, 0.751, True) == {
        "where": "inside",
        "reference": pytest.approx(0.75),
        "better": True,
    }
    assert not against_curve(CURVE, 300.0, 0.749, True)["better"]
    assert not against_curve(CURVE, 300.0, 0.75, True)["better"]  # equal is not above
    # on a point: that point's value
    assert against_curve(CURVE, 200.0, 0.7401, True)["reference"] == pytest.approx(0.74)
    # log loss: lower is better; (100, 0.6)-(200, 0.5) at 150 -> 0.55
    verdict = against_curve([(100.0, 0.6), (200.0, 0.5)], 150.0, 0.54, False)
    assert verdict["reference"] == pytest.approx(0.55) and verdict["better"]


def test_outside_the_byte_range_the_row_says_so() -> None:
    # fewer bytes than every point: judged against the smallest point
    assert against_curve(CURVE, 50.0, 0.71, True) == {
        "where": "fewer",
        "reference": pytest.approx(0.70),
        "better": True,
    }
    # more bytes than every point: must beat the best point of the curve
    verdict = against_curve(CURVE, 500.0, 0.755, True)
    assert verdict["where"] == "more" and verdict["reference"] == pytest.approx(0.76)
    assert not verdict["better"]
    # two knobs at the same bytes: the best of them, (100, 0.72); at 150: 0.76 between 0.72
    # and 0.80; fewer bytes: 0.72 too; log loss: the lowest, 0.60 (at 100) and 0.55 at 150
    same = [(100.0, 0.70), (100.0, 0.72), (200.0, 0.8)]
    assert against_curve(same, 150.0, 0.0, True)["reference"] == pytest.approx(0.76)
    assert against_curve(same, 50.0, 0.0, True)["reference"] == pytest.approx(0.72)
    loss = [(100.0, 0.60), (100.0, 0.65), (200.0, 0.50)]
    assert against_curve(loss, 50.0, 0.0, False)["reference"] == pytest.approx(0.60)
    assert against_curve(loss, 150.0, 0.0, False)["reference"] == pytest.approx(0.55)


def _row(method: str, knob: float, seed: int, auc: float, nbytes: int, chosen: bool,
         cold: float = 0.6) -> dict[str, Any]:  # fmt: skip
    buckets = {b: {"n": 10, "auc": auc} for b in ("0", "1-4", "5-19", "20-99", "100+")}
    return {
        "objective": "bce", "method": method, "knob": knob, "seed": seed, "chosen": chosen,
        "knob_name": "" if method == "all_unique" else "n", "warmup_score": 0.5,
        "total": {"auc": auc, "log_loss": 1 - auc, "accuracy": auc, "mse": None},
        "cold": {"auc": cold, "n": 20}, "buckets": buckets,
        "buckets_by_view": {v: buckets for v in ("user", "item", "either")},
        "bytes": {"embedding": nbytes, "agent": 7 if method.startswith("auto") else 0},
        "max_embedding_bytes": nbytes, "events_per_second": 1000.0, "seconds": 1.0,
        "bytes_trace": {"events": [10, 20], "bytes": [nbytes // 2, nbytes]},
        "positions": {}, "evaluated_events": 50,
    }  # fmt: skip


def test_goals_by_hand() -> None:
    rows = [
        _row("all_unique", 0, 0, 0.70, 1000, True, cold=0.60),
        _row("all_unique", 0, 1, 0.72, 1000, True, cold=0.62),  # mean AUC 0.71, cold 0.61
        _row("threshold_hierarchy", 5, 0, 0.69, 900, True, cold=0.70),
        _row("threshold_hierarchy", 10, 0, 0.60, 500, False),
    ]
    for method in script.BOUNDED:  # bounded curves: (400, 0.60) to (1000, 0.70), QR's higher
        top = 0.80 if method == "qr" else 0.70
        rows += [_row(method, 1, 0, 0.60, 400, False), _row(method, 2, 0, top, 1000, True)]
    rows += [  # the paper preset: AUC 0.71 at 800 bytes (0.8x), cold 0.65
        _row("autoassign", 1, 0, 0.70, 800, True, cold=0.64),
        _row("autoassign", 2, 1, 0.72, 800, True, cold=0.66),
        _row("autoassign_leanrec", 1, 0, 0.705, 1200, True, cold=0.50),  # below, more bytes
    ]
    flat = summarise_dataset("d", rows, {})
    paper, lean = "d|bce|autoassign|goal", "d|bce|autoassign_leanrec|goal"
    assert flat["d|bce|autoassign|chosen|knobs"] == "1 / 2"
    assert flat["d|bce|all_unique|chosen|auc_sd"] == pytest.approx(0.0141421, abs=1e-6)
    # goal 1: AUC 0.71 >= 0.71 and 800 <= 0.8 x 1000
    assert flat[f"{paper}|1_bytes_ratio"] == pytest.approx(0.8) and flat[f"{paper}|1_met"]
    assert not flat[f"{lean}|1_met"]
    # goal 2: at 800 bytes the curves are at 0.60 + 0.10 * (800 - 400) / 600 = 0.6667, below
    # the preset's 0.71, and QR's at 0.60 + 0.20 * 400 / 600 = 0.7333, above it
    stem = f"{paper}|2|threshold|auc"
    assert flat[f"{stem}|where"] == "inside" and flat[f"{stem}|better"]
    assert flat[f"{stem}|reference"] == pytest.approx(0.60 + 0.1 * 400 / 600)
    assert flat[f"{paper}|2|qr|auc|reference"] == pytest.approx(0.60 + 0.2 * 400 / 600)
    assert not flat[f"{paper}|2|qr|auc|better"] and not flat[f"{paper}|2_met"]
    assert flat[f"{paper}|2_curves_judged"] == len(script.BOUNDED)
    # the leanrec preset has more bytes than every point: it must beat the best point
    assert flat[f"{lean}|2|lfu|auc|where"] == "more" and flat[f"{lean}|2|lfu|auc|better"]
    assert not flat[f"{lean}|2|qr|auc|better"]  # 0.705 < 0.80
    # log loss (1 - AUC here): the threshold curve is 0.3333 at 800 bytes, the preset 0.29
    assert flat[f"{paper}|2|threshold|log_loss|better"]
    # goal 3: cold 0.65 > 0.61; goal 4: AUC 0.71 > 0.69, bytes 800 / 900
    assert flat[f"{paper}|3_met"] and not flat[f"{lean}|3_met"]
    assert flat[f"{paper}|4_met"] and flat[f"{paper}|4_bytes_ratio"] == pytest.approx(8 / 9)
    assert flat[f"{paper}|4_cold_auc_difference"] == pytest.approx(-0.05)


def test_quick_run_adds_a_method_group_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    monkeypatch.setattr("benchmarks.common.RESULTS_DIR", tmp_path / "results")
    runs = tmp_path / "runs"
    common = ["--quick", "--seeds", "0", "--runs", str(runs), "--tag", "t"]
    script.main([*common, "--methods", "all_unique", "threshold"])
    first = json.loads((tmp_path / "results" / "autoassign_stream--t.json").read_text())
    assert "synthetic|bce|autoassign|chosen|auc_mean" not in first
    # the curve: both knobs of the quick grid run over the whole stream, one of them chosen
    knobs = [k for k in first if k.startswith("synthetic|bce|threshold|") and k.endswith("chosen")]
    assert len(knobs) == 2 and sum(first[k] for k in knobs) == 1
    script.main([*common, "--methods", "autoassign"])
    second = json.loads((tmp_path / "results" / "autoassign_stream--t.json").read_text())
    rows = json.loads((runs / "synthetic" / "rows.json").read_text())
    assert sorted({r["method"] for r in rows}) == ["all_unique", "autoassign", "threshold"]
    for key, value in first.items():  # the first group's figures are kept as they were
        if key.startswith("synthetic|bce|") and "seconds" not in key and "per_second" not in key:
            assert second[key] == value, key
    assert isinstance(second["synthetic|bce|autoassign|goal|1_met"], bool)
    events, nbytes = json.loads(second["synthetic|bce|autoassign|1|seed0|bytes_trace"])
    assert (
        len(events) == len(nbytes)
        and nbytes[-1] == second["synthetic|bce|autoassign|1|seed0|embedding_bytes"]
    )
    script.main([*common, "--methods", "autoassign"])  # everything is there: nothing reruns
    assert json.loads((runs / "synthetic" / "rows.json").read_text()) == rows
    for suffix in ("", "--buckets", "--trace"):
        assert (tmp_path / "results" / f"autoassign_stream--t{suffix}.png").stat().st_size > 0
