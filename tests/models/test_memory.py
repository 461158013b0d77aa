"""Byte accounting of embedding tables (leanrec.models.memory), checked against hand counts."""

from __future__ import annotations

import pytest
import torch

from leanrec.embeddings import FullEmbedding, RaggedEmbedding
from leanrec.models.memory import (
    bitmap_mask_bytes,
    byte_matched_sparsity,
    csr_mask_bytes,
    dense_table_bytes,
    element_mask_bytes,
    offsets_bytes,
    prefix_mask_bytes,
)

ML1M_ROWS, ML1M_D_MAX = 6040 + 3706, 128  # ML-1M users + items, CIESS's d_max


def test_small_tables_by_hand() -> None:
    # 3 user rows + 2 item rows, d_max = 8, 7 values kept.
    # offsets: (3 + 1) + (2 + 1) = 7 int32 = 28 bytes
    assert offsets_bytes(5) == 28
    assert offsets_bytes(5, tables=1) == 24
    assert dense_table_bytes(5, 8) == 160  # 5 * 8 * 4
    assert prefix_mask_bytes(7, 5) == 28 + 28  # 7 * 4 values + offsets
    assert csr_mask_bytes(7, 5) == 35 + 28  # 7 * (4 + 1)
    assert bitmap_mask_bytes(7, 5, 8) == 28 + 5 + 28  # one 8-bit byte per row
    assert element_mask_bytes(7, 5, 8) == 61  # the bitmap is the cheaper
    # with 2 values kept, CSR is the cheaper: 10 + 28 = 38 against 8 + 5 + 28 = 41
    assert element_mask_bytes(2, 5, 8) == 38


def test_ml1m_at_80_percent_by_hand() -> None:
    # c = 80%: (1 - 0.8) * 9746 * 128 = 249,497.6 -> 249,498 kept values
    kept = 249_498
    # offsets: 4 * (9746 + 2) = 38,992 bytes
    assert prefix_mask_bytes(kept, ML1M_ROWS) == 997_992 + 38_992
    assert csr_mask_bytes(kept, ML1M_ROWS) == 1_247_490 + 38_992
    # bitmap: 16 bytes a row = 155,936
    assert bitmap_mask_bytes(kept, ML1M_ROWS, ML1M_D_MAX) == 997_992 + 155_936 + 38_992
    assert element_mask_bytes(kept, ML1M_ROWS, ML1M_D_MAX) == 1_153_928 + 38_992
    assert dense_table_bytes(ML1M_ROWS, ML1M_D_MAX) == 4_989_952


def test_byte_matched_sparsity_by_hand() -> None:
    # c = 80%: 997,992 bytes of values; the bitmap leaves (997,992 - 155,936) / 4 = 210,514
    # weights, CSR only 997,992 // 5 = 199,598
    assert byte_matched_sparsity(0.8, ML1M_ROWS, ML1M_D_MAX) == pytest.approx(
        1 - 210_514 / 1_247_488
    )
    # c = 95%: 62,374 kept values, 249,496 bytes; after its 155,936 bytes of bitmap only
    # 23,390 weights fit, so CSR wins with 249,496 // 5 = 49,899
    assert byte_matched_sparsity(0.95, ML1M_ROWS, ML1M_D_MAX) == pytest.approx(
        1 - 49_899 / 1_247_488
    )


@pytest.mark.parametrize("c", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_the_matched_element_mask_is_the_largest_that_fits(c: float) -> None:
    budget = prefix_mask_bytes(round((1 - c) * ML1M_ROWS * ML1M_D_MAX), ML1M_ROWS)
    kept = round((1 - byte_matched_sparsity(c, ML1M_ROWS, ML1M_D_MAX)) * ML1M_ROWS * ML1M_D_MAX)
    assert (
        element_mask_bytes(kept, ML1M_ROWS, ML1M_D_MAX)
        <= budget
        < element_mask_bytes(kept + 1, ML1M_ROWS, ML1M_D_MAX)
    )


def test_the_counts_match_the_bytes_real_tables_hold() -> None:
    sizes = [3, 0, 8, 5]
    packed = RaggedEmbedding(sizes, max_dim=8)
    # 16 float32 values + 5 int32 offsets = 64 + 20 bytes
    assert packed.nbytes() == prefix_mask_bytes(sum(sizes), len(sizes), tables=1) == 84
    dense = FullEmbedding(4, 8)
    assert dense.nbytes() == dense_table_bytes(4, 8) == 128
    assert packed.values.dtype == torch.float32 and packed.offsets.dtype == torch.int32
