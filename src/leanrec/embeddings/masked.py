"""Per-row embedding sizes over a dense table, by masking (CIESS Eq. 1-2).

Row ``n`` keeps its first ``d_n`` values and reads zeros after them. The table still *holds* the
dense ``(N, d_max)`` weights, so :meth:`MaskedEmbedding.nbytes` reports dense bytes while
:meth:`MaskedEmbedding.num_parameters` reports ``sum(d_n)``: a masked table is for training and
search; :class:`~leanrec.embeddings.ragged.RaggedEmbedding` is what saves memory.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from leanrec.embeddings.base import EmbeddingTable


def prefix_mask(sizes: torch.Tensor, max_dim: int) -> torch.Tensor:
    """Binary mask ``m_n(s) = 1 if s < d_n`` (CIESS Eq. 2, 0-based ``s``).

    Args:
        sizes: int tensor ``(B,)`` of sizes ``d_n`` in ``[0, max_dim]``.
        max_dim: ``d_max``.

    Returns:
        float32 tensor ``(B, max_dim)``.
    """
    columns = torch.arange(max_dim, device=sizes.device)
    return (columns[None, :] < sizes[:, None]).to(torch.float32)


def check_sizes(sizes: Any, num_embeddings: int, max_dim: int) -> torch.Tensor:
    """``sizes`` as an int64 tensor ``(num_embeddings,)``, each in ``[0, max_dim]``, or an error."""
    tensor = torch.as_tensor(np.asarray(sizes), dtype=torch.int64).reshape(-1)
    if tensor.numel() != num_embeddings:
        raise ValueError(f"need {num_embeddings} sizes, got {tensor.numel()}")
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) > max_dim):
        raise ValueError(
            f"sizes must lie in [0, {max_dim}]: got min {int(tensor.min())}, "
            f"max {int(tensor.max())}"
        )
    return tensor


class MaskedEmbedding(EmbeddingTable):
    """Dense ``(N, d_max)`` weights; row ``n`` reads its first ``d_n`` values, zeros after.

    ``E ⊙ M`` of CIESS Eq. 1: gradients reach only kept values, and the L2 penalty a trainer
    computes on looked-up vectors counts only kept values.

    Args:
        num_embeddings: ``N``.
        max_dim: ``d_max``, the width of every looked-up vector.
        sizes: initial ``d_n`` per row (default: all ``d_max``).
        init_std: normal initialisation std (``None``: Xavier-uniform over ``(N, d_max)``).
        prefix_dropout: in training mode, each lookup reads a random prefix ``s_n <= d_n``
            (log-uniform), so that every prefix of a row is trained to stand alone ("nested
            dropout"). Used to pretrain a warm start whose truncations are meaningful.

    Example:
        >>> table = MaskedEmbedding(3, 4, sizes=[4, 2, 1])
        >>> table.num_parameters()
        7
        >>> bool((table.all()[1, 2:] == 0).all())
        True
    """

    sizes: torch.Tensor
    kind = "masked"

    def __init__(
        self,
        num_embeddings: int,
        max_dim: int,
        sizes: Any = None,
        init_std: float | None = 0.1,
        prefix_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_embeddings <= 0 or max_dim <= 0:
            raise ValueError("a table needs num_embeddings > 0 and max_dim > 0")
        self.num_embeddings = num_embeddings
        self.embedding_dim = max_dim
        self.prefix_dropout = prefix_dropout
        self.weight = nn.Parameter(torch.empty(num_embeddings, max_dim))
        with torch.no_grad():
            if init_std is None:
                bound = math.sqrt(6.0 / (num_embeddings + max_dim))
                self.weight.uniform_(-bound, bound)
            else:
                self.weight.normal_(0.0, init_std)
        if sizes is None:
            sizes = torch.full((num_embeddings,), max_dim, dtype=torch.int64)
        self.register_buffer("sizes", check_sizes(sizes, num_embeddings, max_dim))

    @property
    def max_dim(self) -> int:
        return self.embedding_dim

    @classmethod
    def from_tensor(cls, weight: torch.Tensor, sizes: Any = None) -> MaskedEmbedding:
        """A masked table holding a copy of ``weight (N, d_max)``."""
        table = cls(weight.shape[0], weight.shape[1], sizes=sizes)
        with torch.no_grad():
            table.weight.copy_(weight)
        return table

    def set_sizes(self, sizes: Any) -> None:
        """Replace every ``d_n`` (the weights are kept; masked values are only hidden)."""
        self.sizes.copy_(check_sizes(sizes, self.num_embeddings, self.embedding_dim))

    def _effective_sizes(self, sizes: torch.Tensor) -> torch.Tensor:
        if not (self.prefix_dropout and self.training) or sizes.numel() == 0:
            return sizes
        # log-uniform prefix in [1, d_n]: small prefixes are trained as often as large ones
        u = torch.rand(sizes.shape, device=sizes.device)
        upper = sizes.clamp(min=1).to(torch.float32)
        drawn = torch.exp(u * torch.log(upper + 1.0)).floor().to(torch.int64)
        return torch.minimum(drawn.clamp(min=1), sizes)

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        self._check_ids(ids)
        sizes = self._effective_sizes(self.sizes[ids])
        return self._gather(self.weight, ids) * prefix_mask(sizes, self.embedding_dim)

    def row_parameters(self) -> list[nn.Parameter]:
        """``weight``: a masked value's gradient is exactly zero, so a row-wise step (whose
        state for it stays zero) leaves it as it is."""
        return [self.weight]

    def all(self) -> torch.Tensor:
        if self.prefix_dropout and self.training:  # a fresh prefix draw per call
            mask = prefix_mask(self._effective_sizes(self.sizes), self.embedding_dim)
        else:
            mask = self._full_mask()
        return self._stored(self.weight) * mask

    def _full_mask(self) -> torch.Tensor:
        """``M`` for every row ``(N, d_max)``, rebuilt only when ``sizes`` changed: any in-place
        change of the buffer (``set_sizes``, ``load_state_dict``, item assignment) moves its
        version counter, and a new tensor (``.to``, a reassigned buffer) is another object
        (the cache holds the tensor it was built from, so that object is never another's)."""
        sizes = self.sizes
        cached = self.__dict__.get("_mask_cache")
        if cached is None or cached[0] is not sizes or cached[1] != sizes._version:
            cached = (sizes, sizes._version, prefix_mask(sizes, self.embedding_dim))
            self.__dict__["_mask_cache"] = cached
        return cached[2]

    def kept_width(self) -> int:
        """``max(d_n)``: no row keeps a column past it (prefix dropout only shortens rows)."""
        return int(self.sizes.max()) if self.num_embeddings else 0

    def num_parameters(self) -> int:
        return int(self.sizes.sum())

    def extra_repr(self) -> str:
        return (
            f"num_embeddings={self.num_embeddings}, max_dim={self.embedding_dim}, "
            f"kept={self.num_parameters()}"
        )
