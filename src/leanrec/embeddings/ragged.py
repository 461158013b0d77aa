"""Packed per-row sizes: one values buffer of ``sum(d_n)`` floats plus row offsets.

This is where memory savings become real bytes: a table whose rows keep ``d_n`` values holds
exactly ``sum(d_n)`` float32 values and ``N + 1`` offsets, nothing else. Lookups return rows
zero-padded to ``d_max``, so a model reading it scores exactly as it did with the
:class:`~leanrec.embeddings.masked.MaskedEmbedding` it was packed from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.masked import MaskedEmbedding, check_sizes

INT32_LIMIT = 2**31 - 1
SCORE_CHUNK_VALUES = 1 << 14
"""Most values :meth:`RaggedEmbedding.inner_products` gathers at once (unless one row alone
is wider): with their index and mask, at most 208 KB of scratch a chunk."""


def offsets_from_sizes(sizes: torch.Tensor) -> torch.Tensor:
    """Row starts ``(N + 1,)``: ``offsets[n] = sum(d_0..d_{n-1})``; int32 when it fits."""
    offsets = torch.zeros(sizes.numel() + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(sizes.to(torch.int64), 0)
    return offsets.to(torch.int32) if int(offsets[-1]) <= INT32_LIMIT else offsets


class RaggedEmbedding(EmbeddingTable):
    """Rows of varying length packed into one buffer.

    Storage: ``values (sum d_n,)`` float32 and ``offsets (N + 1,)`` int32 (int64 beyond 2^31
    values). Row ``n`` is ``values[offsets[n]:offsets[n+1]]``, read out zero-padded to
    ``max_dim``. Trainable: gradients flow into ``values``.

    Args:
        sizes: ``d_n`` per row, each in ``[0, max_dim]``.
        max_dim: width of looked-up vectors (``d_max``).
        values: the packed values (default: normal(0, 0.1)).

    Example:
        >>> table = RaggedEmbedding([2, 0, 3], max_dim=4)
        >>> table.num_parameters(), table.values.numel(), table.lookup(torch.tensor([2])).shape
        (5, 5, torch.Size([1, 4]))
    """

    offsets: torch.Tensor
    kind = "ragged"
    resized_on_load = ("values", "offsets")

    def __init__(self, sizes: Any, max_dim: int, values: torch.Tensor | None = None) -> None:
        super().__init__()
        sizes_tensor = torch.as_tensor(np.asarray(sizes), dtype=torch.int64).reshape(-1)
        if sizes_tensor.numel() == 0 or max_dim <= 0:
            raise ValueError("a table needs at least one row and max_dim > 0")
        sizes_tensor = check_sizes(sizes_tensor, sizes_tensor.numel(), max_dim)
        self.num_embeddings = int(sizes_tensor.numel())
        self.embedding_dim = max_dim
        offsets = offsets_from_sizes(sizes_tensor)
        total = int(offsets[-1])
        if values is None:
            values = torch.randn(total) * 0.1
        values = values.detach().to(torch.float32).reshape(-1)
        if values.numel() != total:
            raise ValueError(f"values must hold sum(sizes) = {total} floats, got {values.numel()}")
        self.values = nn.Parameter(values.clone())
        self.register_buffer("offsets", offsets)

    @classmethod
    def from_dense(cls, weight: torch.Tensor, sizes: Any) -> RaggedEmbedding:
        """Pack the first ``d_n`` values of each row of ``weight (N, d_max)``."""
        sizes_tensor = check_sizes(sizes, weight.shape[0], weight.shape[1])
        keep = torch.arange(weight.shape[1])[None, :] < sizes_tensor[:, None]
        # boolean indexing walks rows in order, so row n's kept prefix lands at offsets[n]
        return cls(sizes_tensor, weight.shape[1], values=weight.detach()[keep])

    @classmethod
    def from_masked(cls, table: MaskedEmbedding) -> RaggedEmbedding:
        """The packed equivalent of a masked table: identical lookups, ``sum(d_n)`` floats."""
        return cls.from_dense(table.weight, table.sizes)

    @property
    def sizes(self) -> torch.Tensor:
        """``d_n`` per row, int64 ``(N,)``."""
        return (self.offsets[1:] - self.offsets[:-1]).to(torch.int64)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows ``ids`` zero-padded to ``(len(ids), max_dim)``.

        Only the ``sum(d_ids)`` stored values are gathered and scattered into the zero output:
        no ``(len(ids), max_dim)`` index is built, so the work follows the kept sizes.
        """
        self._check_ids(ids)
        ids = ids.reshape(-1)
        start = self.offsets[ids].to(torch.int64)
        length = self.offsets[ids + 1].to(torch.int64) - start
        out = self.values.new_zeros(ids.numel(), self.embedding_dim)
        total = int(length.sum())
        if total == 0:
            return out
        rows = torch.repeat_interleave(
            torch.arange(ids.numel(), device=ids.device), length, output_size=total
        )
        column = torch.arange(total, device=ids.device) - (torch.cumsum(length, 0) - length)[rows]
        out[rows, column] = self._gather(self.values, start[rows] + column)
        return out

    def inner_products(self, queries: torch.Tensor) -> torch.Tensor:
        """``<q_b, e_n>`` of every query against every row, from the packed values.

        Equal to ``queries @ self.all().T`` (row ``n`` zero beyond ``d_n``) without ever holding
        the ``(N, max_dim)`` padded table. Rows are taken in order of size, in chunks of ``n``
        rows whose widest keeps ``w`` values with ``n * w <= SCORE_CHUNK_VALUES`` (one row when
        a row alone is wider); a chunk is gathered as ``E_chunk (n, w)`` (the values past a
        row's ``d_n`` zeroed) and scored as ``queries[:, :w] @ E_chunk.T``, so the work follows
        the kept sizes and rows of size 0 cost nothing. Beyond the tables, scoring holds the
        ``(B, N)`` output, the rows' sizes and their order by size (int64, 24 bytes a row,
        rebuilt per call rather than kept), one chunk's ``(B, n)`` scores, and its gathered
        values, index and mask (13 bytes a value: at most 208 KB).

        Args:
            queries: ``(B, max_dim)`` query vectors (a dot-product model's user vectors).

        Returns:
            ``(B, N)`` scores.
        """
        if queries.dim() != 2 or queries.shape[1] != self.embedding_dim:
            raise ValueError(
                f"queries must be (B, {self.embedding_dim}), got {tuple(queries.shape)}"
            )
        sizes = self.sizes
        out = queries.new_zeros(queries.shape[0], self.num_embeddings)
        order = torch.argsort(sizes, stable=True)
        sorted_sizes = sizes[order]  # ascending: a chunk's last row is its widest
        last_value = self.values.numel() - 1
        first = int(torch.searchsorted(sorted_sizes, 1))  # rows of size 0 score 0
        while first < self.num_embeddings:
            reach = first + max(1, SCORE_CHUNK_VALUES // int(sorted_sizes[first]))
            reach = min(self.num_embeddings, reach)
            last = first + max(1, SCORE_CHUNK_VALUES // int(sorted_sizes[reach - 1]))
            last = min(self.num_embeddings, last)
            width = int(sorted_sizes[last - 1])  # <= sorted_sizes[reach - 1]: n * w fits
            rows = order[first:last]
            columns = torch.arange(width, device=self.values.device)
            index = self.offsets[rows].to(torch.int64)[:, None] + columns  # (n, w)
            chunk = self.values[index.clamp_(max=last_value)]
            chunk.masked_fill_(columns >= sorted_sizes[first:last, None], 0.0)
            out.index_copy_(1, rows, queries[:, :width] @ chunk.T)
            first = last
        return out

    def kept_width(self) -> int:
        """``max(d_n)``: lookups are zero past it."""
        return int(self.sizes.max())

    def row_parameters(self) -> list[nn.Parameter]:
        """The packed ``values`` ``(sum d_n,)``: a row-wise optimiser sees each value as a row
        of width 1 (Adam is per value anyway; a row-wise Adagrad accumulator is per value)."""
        return [self.values]

    def num_parameters(self) -> int:
        return int(self.values.numel())

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "total": int(self.values.numel())}

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], num_embeddings: int, embedding_dim: int
    ) -> RaggedEmbedding:
        """A placeholder of ``num_embeddings`` empty rows: loading adopts the stored
        ``values`` and ``offsets`` (``resized_on_load``)."""
        sizes = torch.zeros(num_embeddings, dtype=torch.int64)
        return cls(sizes, embedding_dim, values=torch.zeros(0))

    def extra_repr(self) -> str:
        return (
            f"num_embeddings={self.num_embeddings}, max_dim={self.embedding_dim}, "
            f"values={self.values.numel()}"
        )
