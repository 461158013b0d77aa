"""AMEIR Stage 2 and the SE shortcut of Stage 3 (Zhao et al., IJCAI 2021, Sec. 2.1-2.2): the
interaction parts of a searched model.

* :func:`hadamard_interactions` computes ``p = e_{i1} ⊙ ... ⊙ e_{ir}`` for many interactions of
  different orders in one vectorised call (interactions named by field names,
  :data:`~leanrec.models.ctr.ameir.architecture.Interaction`, map to the index rows it takes).
* :class:`SEShortcut`: ``a = σ(W2 ReLU(W1 Q v))``, ``h^se = Σ_i a_i q_i`` over
  ``Q = [e^b, p^b]``.

The search's evolution of interactions and its one-shot layer are in
:mod:`leanrec.search.architecture.interactions`.

Example:
    >>> fields = torch.randn(32, 3, 8)
    >>> hadamard_interactions(fields, [(0, 1), (0, 1, 2)]).shape
    torch.Size([32, 2, 8])
    >>> SEShortcut(5, 8)(torch.randn(32, 5, 8)).shape
    torch.Size([32, 8])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PAD", "SEShortcut", "hadamard_interactions", "index_table"]

PAD = -1
"""Padding value of an index table row shorter than ``r_max``."""


# ---------------------------------------------------------------------------------- products
def index_table(
    index_sets: torch.Tensor | Sequence[Sequence[int]], device: torch.device | None = None
) -> torch.Tensor:
    """``(M, r_max)`` int64 from a padded tensor or a list of index tuples (padded with -1)."""
    if isinstance(index_sets, torch.Tensor):
        return index_sets.to(device=device, dtype=torch.long)
    rows = [tuple(int(i) for i in row) for row in index_sets]
    r_max = max((len(row) for row in rows), default=1)
    table = torch.full((len(rows), r_max), PAD, dtype=torch.long)
    for m, row in enumerate(rows):  # over interactions (bookkeeping), not samples
        if row:
            table[m, : len(row)] = torch.tensor(row, dtype=torch.long)
    return table.to(device)


def hadamard_interactions(
    fields: torch.Tensor, index_sets: torch.Tensor | Sequence[Sequence[int]]
) -> torch.Tensor:
    """Hadamard products ``p_m = ⊙_{i in S_m} e_i`` of field subsets ``S_m`` (Sec. 2.2).

    Interactions of different orders are computed in one call: shorter rows are padded with
    :data:`PAD` (-1), which multiplies by one. The loop runs over the ``r_max`` columns of the
    index table (the largest order), never over samples or interactions.

    Args:
        fields: ``(B, F, d)`` field embeddings ``e^b``.
        index_sets: ``(M, r_max)`` int64 field indices padded with -1, or a list of ``M`` index
            tuples of any lengths >= 1.

    Returns:
        ``(B, M, d)``; ``(B, 0, d)`` when ``M = 0``.

    Raises:
        ValueError: an index outside ``[0, F)`` (other than padding) or an empty row.
    """
    if fields.dim() != 3:
        raise ValueError(f"fields must be (B, F, d), got shape {tuple(fields.shape)}")
    batch, n_fields, dim = fields.shape
    table = index_table(index_sets, fields.device)
    if table.dim() != 2:
        raise ValueError(f"index_sets must be (M, r_max), got shape {tuple(table.shape)}")
    if table.shape[0] == 0:
        return fields.new_zeros(batch, 0, dim)
    if bool(((table < PAD) | (table >= n_fields)).any()):
        raise ValueError(f"field indices must lie in [0, {n_fields}) or be {PAD} (padding)")
    if bool((table == PAD).all(dim=1).any()):
        raise ValueError("every interaction needs at least one field index")
    # index F selects an appended row of ones: padding multiplies by 1
    padded = torch.cat([fields, fields.new_ones(batch, 1, dim)], dim=1)
    table = torch.where(table == PAD, torch.full_like(table, n_fields), table)
    product = padded[:, table[:, 0], :]
    for column in range(1, table.shape[1]):
        product = product * padded[:, table[:, column], :]
    return product


class SEShortcut(nn.Module):
    """Squeeze-and-Excitation shortcut over ``Q^se = [e^b, p^b]`` (Sec. 2.1, Stage 3).

    With ``n = N + M`` inputs ``q_i`` of width ``d`` stacked as the rows of ``Q (n, d)``::

        s   = Q v                  (n,)      squeeze: v (d,) projects each q_i to a scalar
        a   = σ(W2 ReLU(W1 s))     (n,)      excitation: W1 (n_hidden, n), W2 (n, n_hidden)
        h   = Σ_i a_i q_i          (d,)

    with ``n_hidden = max(1, ceil(n / reduction))``. ``v`` starts at ``1/d`` (mean over the
    embedding, the original SE squeeze); ``W1``, ``W2`` have no bias, as in the formula. Each
    ``a_i`` lies in ``(0, 1)``; they do not sum to one (the paper's "weighted average" is a
    sigmoid-gated sum).

    Args:
        n_inputs: ``n = N + M``.
        dim: ``d``.
        reduction: SE reduction ratio (not given by AMEIR; 3 as in FiBiNET's SENET over fields).
        generator: RNG for the initialisation of ``W1``, ``W2`` (Xavier uniform).

    Shapes: ``Q (B, n, d)`` -> ``(B, d)``; :meth:`attention` gives ``a (B, n)``.
    """

    def __init__(
        self,
        n_inputs: int,
        dim: int,
        reduction: float = 3.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if n_inputs < 1 or dim < 1 or reduction <= 0:
            raise ValueError(
                f"need n_inputs >= 1, dim >= 1, reduction > 0; got {n_inputs}, {dim}, {reduction}"
            )
        self.n_inputs = n_inputs
        self.dim = dim
        self.n_hidden = max(1, math.ceil(n_inputs / reduction))
        self.v = nn.Parameter(torch.full((dim,), 1.0 / dim))
        """``v^se (d,)``."""
        self.W1 = nn.Parameter(
            nn.init.xavier_uniform_(torch.empty(self.n_hidden, n_inputs), generator=generator)
        )
        """``W1^se (n_hidden, n)``."""
        self.W2 = nn.Parameter(
            nn.init.xavier_uniform_(torch.empty(n_inputs, self.n_hidden), generator=generator)
        )
        """``W2^se (n, n_hidden)``."""

    def attention(self, Q: torch.Tensor) -> torch.Tensor:
        """``a = σ(W2 ReLU(W1 Q v))``, ``Q (B, n, d)`` -> ``(B, n)``."""
        if Q.dim() != 3 or Q.shape[1:] != (self.n_inputs, self.dim):
            raise ValueError(f"Q must be (B, {self.n_inputs}, {self.dim}), got {tuple(Q.shape)}")
        squeezed = Q @ self.v  # (B, n)
        return torch.sigmoid(torch.relu(squeezed @ self.W1.t()) @ self.W2.t())

    def forward(self, Q: torch.Tensor) -> torch.Tensor:
        """``h^se = Σ_i a_i q_i``, ``Q (B, n, d)`` -> ``(B, d)``."""
        return torch.einsum("bn,bnd->bd", self.attention(Q), Q)
