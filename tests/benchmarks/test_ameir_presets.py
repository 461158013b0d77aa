"""The AMEIR presets collector keeps stored per-seed rows for seeds its directories lack."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.paper.ameir_presets import METRICS, _stored_rows


def _stored(name: str, seeds: dict[int, float]) -> dict[str, Any]:
    previous: dict[str, Any] = {
        f"{name}_test_auc_by_seed": json.dumps({str(s): v for s, v in seeds.items()})
    }
    for seed, auc in seeds.items():
        for metric in METRICS:
            previous[f"{name}_seed{seed}_{metric}"] = auc if metric == "test_auc" else seed + 0.5
    return previous


def test_stored_rows_fill_only_the_missing_seeds() -> None:
    previous = _stored("paper", {0: 0.79, 1: 0.80})
    new = [{"method": "ameir", "seed": 1, "test_auc": 0.81}, {"method": "deepfm", "seed": 0}]
    kept = _stored_rows(previous, "paper", "ameir", new)
    assert [r["seed"] for r in kept] == [0]
    assert kept[0]["method"] == "ameir" and kept[0]["test_auc"] == 0.79
    assert kept[0]["valid_auc"] == 0.5 and set(METRICS) <= set(kept[0])


def test_stored_rows_of_an_absent_name_are_none() -> None:
    assert _stored_rows(_stored("paper", {0: 0.79}), "leanrec", "ameir", []) == []
