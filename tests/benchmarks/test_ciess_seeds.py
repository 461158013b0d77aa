"""The byte accounting and selection rules behind the CIESS searches-vs-baselines table
(`python -m benchmarks.paper.ciess_seeds`, docs/results/embedding-size.md)."""

from __future__ import annotations

import pytest
from benchmarks.paper.ciess_seeds import best_by_validation, wins

from leanrec.models.memory import byte_matched_sparsity, element_mask_bytes, prefix_mask_bytes

ROWS, D_MAX = 6040 + 3706, 128  # ML-1M users + items


def test_byte_matched_sparsity_by_hand() -> None:
    # c = 80%: 249,498 kept values, 997,992 bytes of values; a bitmap costs 16 bytes a row
    # (155,936), leaving 210,514 weights at 4 bytes; CSR would keep only 997,992 / 5 = 199,598
    assert byte_matched_sparsity(0.8, ROWS, D_MAX) == pytest.approx(1 - 210_514 / 1_247_488)
    # c = 90%: CSR is the cheaper format: 498,996 / 5 = 99,799 weights
    assert byte_matched_sparsity(0.9, ROWS, D_MAX) == pytest.approx(1 - 99_799 / 1_247_488)


@pytest.mark.parametrize("c", [0.8, 0.9, 0.95])
def test_the_matched_element_mask_is_the_largest_that_fits_the_bytes(c: float) -> None:
    budget = prefix_mask_bytes(round((1 - c) * ROWS * D_MAX), ROWS)
    kept = round((1 - byte_matched_sparsity(c, ROWS, D_MAX)) * ROWS * D_MAX)
    assert (
        element_mask_bytes(kept, ROWS, D_MAX) <= budget < element_mask_bytes(kept + 1, ROWS, D_MAX)
    )


def test_wins_are_strict_and_the_best_search_is_chosen_on_validation() -> None:
    base = {"recall@5": 0.1, "recall@20": 0.2, "ndcg@5": 0.3, "ndcg@20": 0.4}
    row = {"recall@5": 0.1, "recall@20": 0.25, "ndcg@5": 0.31, "ndcg@20": 0.39}
    assert wins(row, base) == 2  # a tie is not a win
    searches = {
        "a": {**row, "valid_recall@20": 0.17},
        "b": {**base, "recall@20": 0.9, "valid_recall@20": 0.16},  # best on test, not chosen
    }
    assert best_by_validation(searches) == "a"
