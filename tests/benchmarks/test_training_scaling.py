"""The training-scaling benchmark's comparison of sparse_adam with and without its compiled row
kernel: both models take the same steps and end with the same bits."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.perf.training_scaling import compare_row_kernel

from leanrec.train import row_optim


@pytest.mark.usefixtures("one_torch_thread")
def test_the_row_kernel_comparison_times_both_and_finds_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if row_optim.checked_row_kernel() is None:
        pytest.skip("no row kernel here")
    calls: list[int] = []
    step = row_optim._kernel_adam_step

    def counted(*args: Any) -> None:
        calls.append(1)
        step(*args)

    monkeypatch.setattr(row_optim, "_kernel_adam_step", counted)
    # 1,000 users x 500 items, batches of 32: the steps take the row path, not the dense step
    table = compare_row_kernel([0.05], turns=2, steps=3, batch_size=32)
    row = table["0.05M"]
    assert row["bit_identical"] is True
    # two tables x three steps x three turns (one not timed), less each table's first step
    # (no row behind yet, so no lookup holds rows and the step runs the torch code)
    assert len(calls) == 2 * 3 * 3 - 2
    assert row["torch_us_per_interaction"] > 0 and row["kernel_us_per_interaction"] > 0
    assert row["kernel_over_torch"] == pytest.approx(
        row["kernel_us_per_interaction"] / row["torch_us_per_interaction"]
    )
