"""Element-level pruning: a learnable soft threshold (PEP) and a fixed binary mask.

- :class:`SoftThresholdEmbedding` is PEP's re-parameterisation (Liu et al., ICLR 2021)::

      Ê = sign(E) ⊙ ReLU(|E| - g(s)),   g = sigmoid,

  with one learnable threshold ``s_n`` per row (PEP's "feature-wise" granularity). Values
  below their threshold are exactly zero; training raises thresholds, pruning more.
- :class:`ElementMaskedEmbedding` holds a fixed ``{0, 1}`` mask of any pattern (what PEP or
  magnitude pruning leaves) for retraining. Like :class:`~leanrec.embeddings.MaskedEmbedding`
  it stores dense weights: it counts kept values but saves no memory.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from leanrec.embeddings.base import EmbeddingTable


class SoftThresholdEmbedding(EmbeddingTable):
    """PEP table: ``sign(w) * relu(|w| - sigmoid(s_n))`` per row.

    Args:
        weight: initial ``(N, d)`` values (copied).
        threshold_init: initial ``s`` (PEP uses a very negative value so nothing is pruned at
            first).
    """

    threshold: nn.Parameter
    kind = "soft_threshold"

    def __init__(self, weight: torch.Tensor, threshold_init: float = -8.0) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = weight.shape
        self.weight = nn.Parameter(weight.detach().clone())
        self.threshold = nn.Parameter(torch.full((self.num_embeddings, 1), threshold_init))

    def _prune(self, weight: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        return torch.sign(weight) * torch.relu(weight.abs() - torch.sigmoid(threshold))

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        self._check_ids(ids)
        return self._prune(self._gather(self.weight, ids), self._gather(self.threshold, ids))

    def row_parameters(self) -> list[nn.Parameter]:
        """``weight`` and the per-row thresholds ``s`` ``(N, 1)``: a row-wise step moves the
        threshold of a row the batch read only (dense Adam keeps moving every ``s_n`` on its
        momentum)."""
        return [self.weight, self.threshold]

    def all(self) -> torch.Tensor:
        return self._prune(self._stored(self.weight), self._stored(self.threshold))

    @torch.no_grad()
    def kept_mask(self) -> torch.Tensor:
        """``(N, d)`` bool: values above their row's threshold."""
        weight, threshold = self._stored(self.weight), self._stored(self.threshold)
        return weight.abs() > torch.sigmoid(threshold)

    def num_parameters(self) -> int:
        return int(self.kept_mask().sum())

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], num_embeddings: int, embedding_dim: int
    ) -> SoftThresholdEmbedding:
        return cls(torch.zeros(num_embeddings, embedding_dim))


class ElementMaskedEmbedding(EmbeddingTable):
    """Dense weights read through a fixed binary mask ``(N, d)``.

    Args:
        weight: ``(N, d)`` initial values (copied).
        mask: ``(N, d)`` bool/0-1, which values exist.
    """

    mask: torch.Tensor
    kind = "element_masked"

    def __init__(self, weight: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        if weight.shape != mask.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must match weight {tuple(weight.shape)}")
        self.num_embeddings, self.embedding_dim = weight.shape
        self.weight = nn.Parameter(weight.detach().clone())
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        self._check_ids(ids)
        return self._gather(self.weight, ids) * self.mask[ids]

    def row_parameters(self) -> list[nn.Parameter]:
        return [self.weight]

    def all(self) -> torch.Tensor:
        return self._stored(self.weight) * self.mask

    def num_parameters(self) -> int:
        return int(self.mask.sum())

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], num_embeddings: int, embedding_dim: int
    ) -> ElementMaskedEmbedding:
        return cls(
            torch.zeros(num_embeddings, embedding_dim),
            torch.ones(num_embeddings, embedding_dim, dtype=torch.bool),
        )
