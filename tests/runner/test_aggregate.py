"""Mean ± sd over seeds: numbers by hand."""

from __future__ import annotations

import pytest

from leanrec.runner.aggregate import format_mean_sd, mean_sd


def test_mean_sd_by_hand() -> None:
    # mean 0.715; sample sd = sqrt(2 · 0.005² / 1) = 0.0070711
    stat = mean_sd([0.71, 0.72, None])
    assert stat["mean"] == pytest.approx(0.715)
    assert stat["sd"] == pytest.approx(0.0070711, abs=1e-7)
    assert format_mean_sd(stat) == "0.7150 ± 0.0071"
    assert mean_sd([3.0]) == {"mean": 3.0, "sd": 0.0}
    assert format_mean_sd(mean_sd([3.0]), 1) == "3.0"
    assert mean_sd([None]) == {"mean": None, "sd": None}
    assert format_mean_sd(mean_sd([])) == "–"
