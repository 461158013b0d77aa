"""Real bytes of embedding tables in each storage format, counted from their shapes.

A table's *sparsity* counts non-zero weights; what a machine holds is bytes, and two masks with
the same non-zeros can cost different bytes. These functions price the formats leanrec compares
(all float32 values, int32 offsets / row pointers):

- **dense** ``(N, d_max)`` table: ``4 N d_max`` bytes (what an uncompressed model holds);
- **packed prefix** tables (one size ``d_n`` per row, a prefix of the row kept: CIESS and every
  row-size method; :class:`leanrec.embeddings.RaggedEmbedding`, what ``leanrec compress``
  stores): ``4 sum(d_n)`` bytes of values plus ``N + 1`` int32 offsets per table;
- **element masks** (single weights kept anywhere in a row: PEP, MagPrune), which leanrec does
  not export, at the best exact format they could use: CSR with uint8 column indices (``5``
  bytes per kept weight, valid for ``d_max <= 256``) or a ``d_max``-bit bitmap per row (``4``
  bytes per kept weight plus ``d_max / 8`` per row), with int32 row pointers either way.

``rows`` is the number of rows over all tables (``N_users + N_items`` for the two tables of a
collaborative-filtering model), ``tables`` how many tables they form (each has one offset more
than rows). At the same non-zero sparsity an element mask thus takes about 1.25x the bytes of a
prefix mask, and :func:`byte_matched_sparsity` gives the element-mask sparsity that costs what
the prefix tables cost, for comparisons at equal bytes.
"""

from __future__ import annotations

FLOAT32_BYTES = 4
"""Bytes of one stored value."""
INT32_BYTES = 4
"""Bytes of one offset / row pointer."""
CSR_UINT8_BYTES = FLOAT32_BYTES + 1
"""Bytes per kept weight in CSR with uint8 column indices (value + column)."""


def dense_table_bytes(rows: int, dim: int) -> int:
    """Bytes of a dense float32 ``(rows, dim)`` table: ``4 rows dim``."""
    return FLOAT32_BYTES * rows * dim


def offsets_bytes(rows: int, tables: int = 2) -> int:
    """Bytes of the int32 offsets (or row pointers) of ``tables`` tables holding ``rows`` rows in
    all: one per row plus one per table (``N_users + 1 + N_items + 1`` for two tables)."""
    return INT32_BYTES * (rows + tables)


def prefix_mask_bytes(kept: int, rows: int, tables: int = 2) -> int:
    """Bytes of packed prefix tables keeping ``kept = sum(d_n)`` values over ``rows`` rows:
    4 per kept value plus the int32 offsets (what ``leanrec compress`` stores)."""
    return FLOAT32_BYTES * kept + offsets_bytes(rows, tables)


def csr_mask_bytes(kept: int, rows: int, tables: int = 2) -> int:
    """Bytes of element-masked tables in CSR with uint8 column indices: 5 per kept weight plus
    the int32 row pointers."""
    return CSR_UINT8_BYTES * kept + offsets_bytes(rows, tables)


def bitmap_mask_bytes(kept: int, rows: int, max_dim: int, tables: int = 2) -> int:
    """Bytes of element-masked tables as a ``max_dim``-bit bitmap per row plus the kept values
    and the int32 row pointers: ``4 kept + rows max_dim / 8 + offsets``."""
    return FLOAT32_BYTES * kept + rows * max_dim // 8 + offsets_bytes(rows, tables)


def element_mask_bytes(kept: int, rows: int, max_dim: int, tables: int = 2) -> int:
    """Bytes of element-masked tables (PEP, MagPrune) in the cheaper of the two exact formats,
    CSR (:func:`csr_mask_bytes`) or bitmap (:func:`bitmap_mask_bytes`). leanrec does not export
    element masks: this is the best such a format can do, in the element masks' favour."""
    return min(csr_mask_bytes(kept, rows, tables), bitmap_mask_bytes(kept, rows, max_dim, tables))


def byte_matched_sparsity(c: float, rows: int, max_dim: int) -> float:
    """The element-mask sparsity ``c'`` that takes as many bytes as packed prefix tables at
    sparsity ``c`` (CIESS's target sparsity, Eq. 5): the most weights an element mask can keep
    within those bytes, in the cheaper of CSR and bitmap, as a share of ``rows max_dim``.

    Offsets and row pointers cost the same on both sides, so only the values' bytes are matched.
    """
    total = rows * max_dim
    budget = FLOAT32_BYTES * round((1.0 - c) * total)  # the prefix tables' values
    kept = max(budget // CSR_UINT8_BYTES, (budget - rows * max_dim // 8) // FLOAT32_BYTES)
    return 1.0 - kept / total
